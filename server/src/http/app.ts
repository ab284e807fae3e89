/**
 * The express application: request ids, authentication, body limits, the routes, and one
 * error handler that answers in OpenAI's error shape.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { AutoGLMError } from '../errors.ts';
import { openAIError } from '../protocol/index.ts';
import type { ServerContext } from './context.ts';
import { chat, completions } from './routes/generation.ts';
import { detokenize, health, metrics, models, tokenize, version } from './routes/info.ts';

/** Large enough for long prompts, small enough that a runaway client cannot exhaust memory. */
export const BODY_LIMIT = '4mb';
const PUBLIC_PATHS = new Set(['/health', '/ready', '/metrics', '/version']);
const REQUEST_ID = /^[\w.:-]{1,128}$/;

type Handler = (ctx: ServerContext, req: Request, res: Response) => void | Promise<void>;

export function createApp(ctx: ServerContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const given = req.header('x-request-id');
    const id = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals['requestId'] = id;
    res.setHeader('x-request-id', id);
    const started = performance.now();
    ctx.inFlight++;
    res.on('close', () => {
      ctx.inFlight--;
    });
    res.on('finish', () => {
      const matched = (req as { route?: { path?: unknown } }).route?.path;
      const route = typeof matched === 'string' ? matched : 'unmatched';
      ctx.metrics.countHttpRequest(route, res.statusCode);
      ctx.logger.forRequest(id).info('request', {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      });
    });
    next();
  });

  app.use((req, res, next) => {
    const auth = req.header('authorization') ?? '';
    const key = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    if (ctx.apiKeys.size === 0 || PUBLIC_PATHS.has(req.path) || (key !== undefined && ctx.apiKeys.has(key))) {
      next();
      return;
    }
    next(
      new AutoGLMError(
        'unauthorized',
        'Incorrect API key provided. Pass it as "Authorization: Bearer <key>".',
      ),
    );
  });

  app.use(express.json({ limit: BODY_LIMIT, type: () => true }));

  const on = (h: Handler) => (req: Request, res: Response) => h(ctx, req, res);
  app.get('/health', on(health));
  app.get('/ready', on(health));
  app.get('/version', on(version));
  app.get('/metrics', on(metrics));
  app.get('/v1/models', on(models));
  app.post('/v1/chat/completions', on(chat));
  app.post('/v1/completions', on(completions));
  app.post('/tokenize', on(tokenize));
  app.post('/detokenize', on(detokenize));

  app.use((req, _res, next) => {
    next(new AutoGLMError('not_found', `Unknown route: ${req.method} ${req.path}`));
  });

  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const { status, body } = openAIError(err);
    ctx.metrics.countError(body.error.code ?? body.error.type);
    const log = ctx.logger.forRequest(String(res.locals['requestId']));
    // 503 (loading, draining) is an expected state, not a failure worth a stack trace.
    if (status === 503) log.warn('unavailable', { error: body.error.message });
    else if (status >= 500)
      log.error('request failed', { error: err instanceof Error ? err.stack : String(err) });
    if (res.headersSent) {
      next(err);
      return;
    }
    if (status === 429) res.setHeader('Retry-After', '1');
    if (status === 503) res.setHeader('Retry-After', '5');
    res.status(status).json(body);
  });
  return app;
}
