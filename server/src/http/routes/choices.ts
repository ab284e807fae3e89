/**
 * Running a request's choices on the engine and turning engine events into what the
 * OpenAI builders take. Shared by chat and completions; n choices are n engine sequences
 * (seeds seed, seed+1, … so a seeded request is reproducible).
 */
import type { Engine } from '../../engine/engine.ts';
import type { EngineEvent } from '../../engine/sequence.ts';
import type { GenerationRequest, GenerationResult, TokenLogprob } from '../../engine/types.ts';
import type { Tokenizer } from '../../model/tokenizer/tokenizer.ts';
import type { GenerationParams, PositionLogprobs, TokenText } from '../../protocol/index.ts';

export interface ChoicePlan {
  readonly index: number;
  readonly promptIds: readonly number[];
  readonly maxTokens: number;
}

export function engineRequest(
  requestId: string,
  p: GenerationParams,
  plan: ChoicePlan,
  sample: number,
  signal: AbortSignal,
): GenerationRequest {
  const seed = p.sampling.seed === undefined ? undefined : p.sampling.seed + sample;
  return {
    requestId,
    promptIds: plan.promptIds,
    sampling: { ...p.sampling, ...(seed === undefined ? {} : { seed }) },
    stopping: { ...p.stopping, maxTokens: plan.maxTokens },
    logprobs: p.logprobs,
    ...(p.logprobs ? { topLogprobs: p.topLogprobs } : {}),
    ...(p.logitBias.length > 0 ? { logitBias: p.logitBias } : {}),
    signal,
  };
}

function tokenText(tokenizer: Tokenizer, lp: TokenLogprob): TokenText {
  return { token: tokenizer.decode([lp.id], { skipSpecialTokens: false }), logprob: lp.logprob };
}

export function positions(tokenizer: Tokenizer, ev: EngineEvent): PositionLogprobs[] | undefined {
  if (ev.type !== 'delta' || ev.delta.logprobs === undefined) return undefined;
  return ev.delta.logprobs.map((p) => ({
    chosen: tokenText(tokenizer, p.chosen),
    top: p.top.map((t) => tokenText(tokenizer, t)),
  }));
}

export interface ChoiceOutcome {
  readonly index: number;
  readonly text: string;
  readonly logprobs: PositionLogprobs[] | undefined;
  readonly result: GenerationResult;
}

/** Drains one choice's events into its full text. */
export async function collectChoice(
  tokenizer: Tokenizer,
  index: number,
  events: AsyncIterable<EngineEvent>,
  wantLogprobs: boolean,
): Promise<ChoiceOutcome> {
  let text = '';
  const lps: PositionLogprobs[] = [];
  for await (const ev of events) {
    if (ev.type === 'done')
      return { index, text, logprobs: wantLogprobs ? lps : undefined, result: ev.result };
    text += ev.delta.text;
    lps.push(...(positions(tokenizer, ev) ?? []));
  }
  throw new Error('generation ended without a result');
}

/** A choice's stream regrouped into pieces of at least `tokens()` tokens (live-tunable). */
export async function* chunked(
  events: AsyncIterable<EngineEvent>,
  tokens: () => number,
): AsyncGenerator<{ text: string; events: EngineEvent[]; done?: GenerationResult }> {
  let buffered: EngineEvent[] = [];
  let count = 0;
  for await (const ev of events) {
    if (ev.type === 'done') {
      yield { text: joinText(buffered), events: buffered, done: ev.result };
      return;
    }
    buffered.push(ev);
    count += Math.max(1, ev.delta.tokenIds.length);
    if (count >= tokens()) {
      yield { text: joinText(buffered), events: buffered };
      buffered = [];
      count = 0;
    }
  }
}

function joinText(events: readonly EngineEvent[]): string {
  return events.map((e) => (e.type === 'delta' ? e.delta.text : '')).join('');
}

export function usageOf(outcomes: readonly { result: GenerationResult }[], promptTokens: number) {
  return { promptTokens, completionTokens: outcomes.reduce((n, o) => n + o.result.completionTokens, 0) };
}

/** Submits every choice up front, so a full queue refuses the whole request before any output. */
export function submitAll(
  engine: Engine,
  requests: readonly GenerationRequest[],
): AsyncIterable<EngineEvent>[] {
  return requests.map((r) => engine.submit(r));
}
