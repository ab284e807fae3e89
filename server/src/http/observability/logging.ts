/**
 * Structured logs: one JSON object per line on stdout, `{"time","level","msg",…fields}`.
 * The level comes from LOG_LEVEL (debug, info, warn, error, silent; default info). A child
 * logger binds fields, and `forRequest(id)` binds `request_id` (the x-request-id) so
 * every line about a request can be found with one filter. Nothing beyond Node.
 */
import { AutoGLMError } from '../../errors.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** The levels a line can have (silent only turns logging off). */
export type LineLevel = Exclude<LogLevel, 'silent'>;
export type LogFields = Readonly<Record<string, unknown>>;

/** Where lines go; process.stdout, or anything with write(string). */
export interface LogSink {
  write(line: string): unknown;
}

export interface LoggerOptions {
  readonly level?: LogLevel | undefined;
  readonly sink?: LogSink | undefined;
  /** Bound to every line. */
  readonly fields?: LogFields | undefined;
  /** For tests. */
  readonly now?: (() => Date) | undefined;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const RESERVED = new Set(['time', 'level', 'msg']);

export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  const v = value?.trim().toLowerCase();
  return LOG_LEVELS.find((l) => l === v);
}

/** Errors are not enumerable, so JSON.stringify would print `{}`; spell them out. */
function errorFields(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  if (err instanceof AutoGLMError) {
    out['code'] = err.code;
    if (err.hint !== undefined) out['hint'] = err.hint;
  } else {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') out['code'] = code;
  }
  if (err.stack !== undefined) out['stack'] = err.stack;
  if (err.cause !== undefined) out['cause'] = err.cause;
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return errorFields(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export class Logger {
  readonly level: LogLevel;
  readonly #sink: LogSink;
  readonly #fields: LogFields;
  readonly #now: () => Date;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? 'info';
    this.#sink = options.sink ?? process.stdout;
    this.#fields = options.fields ?? {};
    this.#now = options.now ?? (() => new Date());
  }

  enabled(level: LineLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }

  log(level: LineLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    this.#sink.write(this.#format(level, msg, fields) + '\n');
  }

  /** A logger that adds `fields` to every line (later fields win). */
  child(fields: LogFields): Logger {
    return new Logger({
      level: this.level,
      sink: this.#sink,
      fields: { ...this.#fields, ...fields },
      now: this.#now,
    });
  }

  /** A child carrying `request_id`, for everything logged about one request. */
  forRequest(requestId: string, fields?: LogFields): Logger {
    return this.child({ request_id: requestId, ...fields });
  }

  #format(level: LineLevel, msg: string, fields: LogFields | undefined): string {
    const time = this.#now().toISOString();
    const record: Record<string, unknown> = { time, level, msg };
    for (const source of [this.#fields, fields ?? {}]) {
      for (const [k, v] of Object.entries(source)) {
        if (!RESERVED.has(k) && v !== undefined) record[k] = v;
      }
    }
    try {
      return JSON.stringify(record, replacer);
    } catch (err) {
      // A cycle or a throwing toJSON in the fields must not lose the line itself.
      const fieldsError = err instanceof Error ? err.message : String(err);
      const rid = record['request_id'];
      const requestId = typeof rid === 'string' ? rid : undefined;
      return JSON.stringify({ time, level, msg, request_id: requestId, fields_error: fieldsError });
    }
  }
}

/** The process logger: LOG_LEVEL from the environment, lines on stdout. */
export function createLogger(env: NodeJS.ProcessEnv = process.env, sink?: LogSink): Logger {
  const raw = env['LOG_LEVEL'];
  const level = parseLogLevel(raw);
  const logger = new Logger({ level: level ?? 'info', sink });
  if (raw !== undefined && raw.trim() !== '' && level === undefined) {
    logger.warn('LOG_LEVEL is not a known level; logging at info', {
      value: raw,
      allowed: LOG_LEVELS,
    });
  }
  return logger;
}

export const log: Logger = createLogger();
