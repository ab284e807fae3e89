/**
 * `text_completion` objects, whole and streamed (both share one shape). A stream sends
 * completionChunk per piece of text, a chunk with the finish_reason to end each choice,
 * and with stream_options.include_usage a last completionUsageChunk (`choices: []`).
 */
import type { CompletionFinishReason, PositionLogprobs, ResponseMeta, UsageCounts } from './types.ts';
import { metaFields, wireLogprob, wireUsage, type WireUsage } from './wire.ts';

/** The legacy logprobs format; `top_logprobs` maps token text to its logprob. */
export interface WireCompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export interface WireCompletionChoice {
  index: number;
  text: string;
  logprobs: WireCompletionLogprobs | null;
  /** Null on stream chunks before the last one of a choice. */
  finish_reason: CompletionFinishReason | null;
}

export interface WireCompletion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  system_fingerprint?: string;
  choices: WireCompletionChoice[];
  /** On a whole completion always; on chunks only with include_usage (null until the last). */
  usage?: WireUsage | null;
}

/** Whole completions carry usage and final finish reasons. */
export type WireFinalCompletion = WireCompletion & {
  choices: (WireCompletionChoice & { finish_reason: CompletionFinishReason })[];
  usage: WireUsage;
};

export interface CompletionChoiceOutput {
  readonly text: string;
  readonly finishReason: CompletionFinishReason;
  readonly logprobs?: readonly PositionLogprobs[];
}

/**
 * The legacy format. `top_logprobs` holds the alternatives and the chosen token (OpenAI
 * returns "up to logprobs+1" entries); tokens with the same text keep the first (likeliest).
 * `text_offset` counts code points, as Python's len does, from `textOffset` (the length of
 * the text this choice has already sent).
 */
export function completionLogprobs(
  positions: readonly PositionLogprobs[],
  textOffset = 0,
): WireCompletionLogprobs {
  const wire: WireCompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = textOffset;
  for (const { chosen, top } of positions) {
    wire.tokens.push(chosen.token);
    wire.token_logprobs.push(wireLogprob(chosen.logprob));
    const alternatives = new Map<string, number>();
    for (const token of [...top, chosen]) {
      if (!alternatives.has(token.token)) alternatives.set(token.token, wireLogprob(token.logprob));
    }
    // fromEntries defines own properties, so a token such as "__proto__" stays a plain key.
    wire.top_logprobs.push(Object.fromEntries(alternatives));
    wire.text_offset.push(offset);
    offset += Array.from(chosen.token).length; // code points, not UTF-16 units
  }
  return wire;
}

/** A whole `text_completion`; choice i gets index i (with several prompts: prompt * n + sample). */
export function textCompletion(
  meta: ResponseMeta,
  choices: readonly CompletionChoiceOutput[],
  usage: UsageCounts,
): WireFinalCompletion {
  return {
    ...metaFields(meta, 'text_completion'),
    choices: choices.map((choice, index) => ({
      index,
      text: choice.text,
      logprobs: choice.logprobs === undefined ? null : completionLogprobs(choice.logprobs),
      finish_reason: choice.finishReason,
    })),
    usage: wireUsage(usage),
  };
}

/** The index of a choice when a request has several prompts, as OpenAI orders them. */
export function completionChoiceIndex(promptIndex: number, sample: number, n: number): number {
  return promptIndex * n + sample;
}

export interface CompletionStreamMeta extends ResponseMeta {
  readonly includeUsage: boolean;
}

export interface CompletionPiece {
  readonly index: number;
  readonly text: string;
  /** Set on the last chunk of a choice. */
  readonly finishReason?: CompletionFinishReason;
  readonly logprobs?: readonly PositionLogprobs[];
  /** How much text (in code points) this choice sent before this piece, for text_offset. */
  readonly textOffset?: number;
}

/** One streamed piece of one choice. */
export function completionChunk(meta: CompletionStreamMeta, piece: CompletionPiece): WireCompletion {
  const choice: WireCompletionChoice = {
    index: piece.index,
    text: piece.text,
    logprobs: piece.logprobs === undefined ? null : completionLogprobs(piece.logprobs, piece.textOffset),
    finish_reason: piece.finishReason ?? null,
  };
  const chunk: WireCompletion = { ...metaFields(meta, 'text_completion'), choices: [choice] };
  if (meta.includeUsage) chunk.usage = null;
  return chunk;
}

/** The extra last chunk of an include_usage stream. */
export function completionUsageChunk(meta: CompletionStreamMeta, usage: UsageCounts): WireCompletion {
  return { ...metaFields(meta, 'text_completion'), choices: [], usage: wireUsage(usage) };
}
