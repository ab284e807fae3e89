/** Health, readiness, version, models, metrics, tokenize and detokenize. */
import type { Request, Response } from 'express';
import {
  detokenizeResponse,
  parseDetokenizeRequest,
  parseTokenizeRequest,
  tokenizeResponse,
} from '../../protocol/index.ts';
import type { ServerContext } from '../context.ts';
import { requireModel } from './generation.ts';

/** 200 only when a request would be served now: 503 while loading, after a failed load, and while draining. */
export function health(ctx: ServerContext, _req: Request, res: Response): void {
  const ok = ctx.phase === 'ready' && ctx.model !== undefined;
  res.status(ok ? 200 : 503).json({
    status: ok ? 'ok' : ctx.phase,
    ...(ctx.loadError === undefined ? {} : { error: ctx.loadError }),
  });
}

export function version(ctx: ServerContext, _req: Request, res: Response): void {
  res.json({ version: ctx.version });
}

export function models(ctx: ServerContext, _req: Request, res: Response): void {
  const m = requireModel(ctx, undefined);
  res.json({
    object: 'list',
    data: [
      {
        id: ctx.servedName,
        object: 'model',
        created: m.created,
        owned_by: 'autoglm',
        root: m.dir,
        max_model_len: m.maxModelLen,
        // Which execution provider `--device auto` got: cuda, webgpu or cpu.
        device: m.device,
      },
    ],
  });
}

export async function metrics(ctx: ServerContext, _req: Request, res: Response): Promise<void> {
  res.type(ctx.metrics.contentType).send(await ctx.metrics.metrics());
}

export function tokenize(ctx: ServerContext, req: Request, res: Response): void {
  const m = requireModel(ctx, undefined);
  const r = parseTokenizeRequest(req.body);
  requireModel(ctx, r.model);
  const text =
    r.kind === 'prompt'
      ? r.prompt
      : m.tokenizer.applyChatTemplate(r.messages, {
          addGenerationPrompt: r.addGenerationPrompt,
          ...(r.tools === undefined ? {} : { tools: r.tools }),
        });
  const ids = m.tokenizer.encode(text, { addSpecialTokens: r.addSpecialTokens });
  const strs = r.returnTokenStrs ? ids.map((id) => m.tokenizer.tokenText(id)) : undefined;
  res.json(tokenizeResponse(ids, m.maxModelLen, strs));
}

export function detokenize(ctx: ServerContext, req: Request, res: Response): void {
  const m = requireModel(ctx, undefined);
  const r = parseDetokenizeRequest(req.body, { vocabSize: m.vocabSize });
  requireModel(ctx, r.model);
  res.json(detokenizeResponse(m.tokenizer.decode(r.tokens, { skipSpecialTokens: false })));
}
