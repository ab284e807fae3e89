/** POST /v1/chat/completions and POST /v1/completions. */
import type { Request, Response } from 'express';
import { randomBytes } from 'node:crypto';
import { AutoGLMError } from '../../errors.ts';
import type { EngineEvent } from '../../engine/sequence.ts';
import type { GenerationResult } from '../../engine/types.ts';
import {
  chatCompletion,
  chatDeltaChunk,
  chatFinishChunk,
  chatRoleChunk,
  chatUsageChunk,
  completionChunk,
  completionUsageChunk,
  contextLengthCheck,
  parseChatRequest,
  parseCompletionRequest,
  textCompletion,
  type ChatRequest,
  type CompletionRequest,
  type GenerationParams,
  type ResponseMeta,
} from '../../protocol/index.ts';
import type { LoadedModel, ServerContext } from '../context.ts';
import { RequestSpan } from '../observability/tracing.ts';
import { ResponseWriter } from '../transport.ts';
import { collectChoice, engineRequest, positions, submitAll, usageOf, type ChoicePlan } from './choices.ts';
import { failIfCutShort, streamChoices } from './stream.ts';

export function requireModel(ctx: ServerContext, requested: string | undefined): LoadedModel {
  const m = ctx.model;
  if (m === undefined || ctx.phase !== 'ready')
    throw new AutoGLMError('unavailable', 'the model is still loading; retry shortly');
  if (requested !== undefined && requested !== ctx.servedName) {
    throw new AutoGLMError(
      'not_found',
      `The model \`${requested}\` does not exist. This server serves \`${ctx.servedName}\`.`,
    );
  }
  return m;
}

function meta(ctx: ServerContext, prefix: string): ResponseMeta {
  return {
    id: `${prefix}-${randomBytes(12).toString('hex')}`,
    created: Math.floor(Date.now() / 1000),
    model: ctx.servedName,
  };
}

function writerFor(ctx: ServerContext, req: Request, res: Response, route: string): ResponseWriter {
  const c = ctx.live.get().compression;
  return new ResponseWriter(
    res,
    req.headers['accept-encoding'],
    { algorithm: c.algorithm, level: c.level ?? 0 },
    {
      done: (s) => {
        ctx.metrics.observeResponse({ route, ...s });
      },
      path: ctx.path,
      probe: ctx.probe,
    },
  );
}

/** Aborted when the client goes away before the response is finished. */
function clientGone(res: Response): AbortController {
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  return abort;
}

interface Job {
  readonly ctx: ServerContext;
  readonly model: LoadedModel;
  readonly params: GenerationParams;
  readonly plans: readonly ChoicePlan[];
  readonly operation: 'chat' | 'text_completion';
  readonly requestId: string;
}

function start(job: Job, req: Request, res: Response) {
  const abort = clientGone(res);
  const requests = job.plans.map((plan) =>
    engineRequest(job.requestId, job.params, plan, plan.index % job.params.n, abort.signal),
  );
  const span = RequestSpan.start({
    operation: job.operation,
    model: job.ctx.servedName,
    requestId: job.requestId,
    maxTokens: job.params.stopping.maxTokens,
    temperature: job.params.sampling.temperature,
    topP: job.params.sampling.topP,
    topK: job.params.sampling.topK,
    seed: job.params.sampling.seed,
    choiceCount: job.params.n,
    headers: req.headers,
  });
  try {
    return { events: submitAll(job.model.engine, requests), span, abort };
  } catch (err) {
    abort.abort();
    span.fail(err);
    throw err;
  }
}

function promptTokens(plans: readonly ChoicePlan[], n: number): number {
  return plans.filter((p) => p.index % n === 0).reduce((t, p) => t + p.promptIds.length, 0);
}

export async function chat(ctx: ServerContext, req: Request, res: Response): Promise<void> {
  const model = requireModel(ctx, undefined);
  const r: ChatRequest = parseChatRequest(req.body, { vocabSize: model.vocabSize });
  requireModel(ctx, r.model);
  if (r.continueFinalMessage) {
    throw new AutoGLMError('unsupported_parameter', 'continue_final_message is not supported by this server');
  }
  const text = model.tokenizer.applyChatTemplate(r.messages, {
    addGenerationPrompt: r.addGenerationPrompt,
    ...(r.tools === undefined ? {} : { tools: r.tools }),
  });
  const ids = model.tokenizer.encode(text, { addSpecialTokens: r.addSpecialTokens });
  const maxTokens = contextLengthCheck(ids.length, r.stopping.maxTokens, model.maxModelLen, 'messages');
  const plans = Array.from({ length: r.n }, (_, i) => ({ index: i, promptIds: ids, maxTokens }));
  const job: Job = {
    ctx,
    model,
    params: r,
    plans,
    operation: 'chat',
    requestId: String(res.locals['requestId']),
  };
  const { events, span } = start(job, req, res);
  const m = { ...meta(ctx, 'chatcmpl'), includeUsage: r.includeUsage };
  const writer = writerFor(ctx, req, res, 'chat');
  let results: GenerationResult[];
  if (r.stream) {
    results = await streamChoices(writer, events, () => ctx.live.get().streamChunkTokens, {
      begin: (i) => [chatRoleChunk(m, i)],
      piece: (i, t, evs) => {
        const lps = r.logprobs ? evs.flatMap((e) => positions(model.tokenizer, e) ?? []) : undefined;
        return chatDeltaChunk(m, i, { text: t, ...(lps === undefined ? {} : { logprobs: lps }) });
      },
      finish: (i, res2) => [chatFinishChunk(m, i, res2.finishReason === 'length' ? 'length' : 'stop')],
      end: (all) =>
        r.includeUsage
          ? [
              chatUsageChunk(
                m,
                usageOf(
                  all.map((x) => ({ result: x })),
                  ids.length,
                ),
              ),
            ]
          : [],
    });
  } else {
    const { choices, outcomes } = await collectAll(model, events, r.logprobs);
    results = outcomes.map((o) => o.result);
    await writer.json(200, chatCompletion(m, choices, usageOf(outcomes, ids.length)));
  }
  span.end(m.id, ...results);
}

/**
 * Every choice of a non-streamed response, in the builders' shape. A choice that ended in
 * error (not a client abort) fails the whole response.
 */
async function collectAll(
  model: LoadedModel,
  events: readonly AsyncIterable<EngineEvent>[],
  logprobs: boolean,
) {
  const outcomes = await Promise.all(events.map((e, i) => collectChoice(model.tokenizer, i, e, logprobs)));
  for (const o of outcomes) failIfCutShort(o.result.finishReason);
  const choices = outcomes.map((o) => ({
    text: o.text,
    finishReason: o.result.finishReason === 'length' ? ('length' as const) : ('stop' as const),
    ...(o.logprobs === undefined ? {} : { logprobs: o.logprobs }),
  }));
  return { choices, outcomes };
}

function completionPlans(model: LoadedModel, r: CompletionRequest): ChoicePlan[] {
  return r.prompts.flatMap((p, promptIndex) => {
    const ids =
      p.kind === 'tokens'
        ? [...p.tokenIds]
        : model.tokenizer.encode(p.text, { addSpecialTokens: r.addSpecialTokens });
    const maxTokens = contextLengthCheck(ids.length, r.stopping.maxTokens, model.maxModelLen, 'prompt');
    return Array.from({ length: r.n }, (_, s) => ({
      index: promptIndex * r.n + s,
      promptIds: ids,
      maxTokens,
    }));
  });
}

export async function completions(ctx: ServerContext, req: Request, res: Response): Promise<void> {
  const model = requireModel(ctx, undefined);
  const r = parseCompletionRequest(req.body, { vocabSize: model.vocabSize });
  requireModel(ctx, r.model);
  const plans = completionPlans(model, r);
  const job: Job = {
    ctx,
    model,
    params: r,
    plans,
    operation: 'text_completion',
    requestId: String(res.locals['requestId']),
  };
  const { events, span } = start(job, req, res);
  const m = { ...meta(ctx, 'cmpl'), includeUsage: r.includeUsage };
  const writer = writerFor(ctx, req, res, 'completions');
  const prompt = promptTokens(plans, r.n);
  let results: GenerationResult[];
  if (r.stream) {
    const sent = plans.map(() => 0);
    results = await streamChoices(writer, events, () => ctx.live.get().streamChunkTokens, {
      begin: () => [],
      piece: (i, t, evs) => {
        const lps = r.logprobs ? evs.flatMap((e) => positions(model.tokenizer, e) ?? []) : undefined;
        const chunk = completionChunk(m, {
          index: i,
          text: t,
          textOffset: sent[i] ?? 0,
          ...(lps === undefined ? {} : { logprobs: lps }),
        });
        sent[i] = (sent[i] ?? 0) + Array.from(t).length;
        return chunk;
      },
      finish: (i, res2) => [
        completionChunk(m, {
          index: i,
          text: '',
          finishReason: res2.finishReason === 'length' ? 'length' : 'stop',
        }),
      ],
      end: (all) =>
        r.includeUsage
          ? [
              completionUsageChunk(
                m,
                usageOf(
                  all.map((x) => ({ result: x })),
                  prompt,
                ),
              ),
            ]
          : [],
    });
  } else {
    const { choices, outcomes } = await collectAll(model, events, r.logprobs);
    results = outcomes.map((o) => o.result);
    await writer.json(200, textCompletion(m, choices, usageOf(outcomes, prompt)));
  }
  span.end(m.id, ...results);
}
