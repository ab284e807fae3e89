/**
 * Errors on the wire: every failure becomes an HTTP status and OpenAI's body
 * `{"error":{"message","type","param","code"}}`.
 *
 * `type` follows what api.openai.com sends, not a class name per status: 400, 401, 403, 404
 * and 413 are all `invalid_request_error` (401 with code `invalid_api_key`, an unknown model
 * 404 with code `model_not_found`), 429 is `requests` (OpenAI's rate-limit type), and every
 * 5xx is `server_error`. The SDKs choose their error class from the status alone.
 * `code` is the catalog code (server/src/errors.ts), or OpenAI's issue code for validation
 * failures, so clients can key on it.
 */
import { AutoGLMError, type ErrorCode } from '../errors.ts';
import type { RequestIssue } from './fields.ts';

export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export interface OpenAIErrorResponse {
  readonly status: number;
  readonly body: OpenAIErrorBody;
}

/** A request that failed validation: every problem found, each naming its field. */
export class InvalidRequestError extends AutoGLMError {
  readonly issues: readonly RequestIssue[];

  constructor(issues: readonly RequestIssue[], code: ErrorCode = defaultCode(issues)) {
    super(code, issuesMessage(issues));
    this.name = 'InvalidRequestError';
    this.issues = issues;
  }
}

/** context_length_exceeded, carrying the param like a validation failure. */
export class ContextLengthError extends InvalidRequestError {
  constructor(issue: RequestIssue) {
    super([issue], 'context_length_exceeded');
    this.name = 'ContextLengthError';
  }
}

function defaultCode(issues: readonly RequestIssue[]): ErrorCode {
  const unsupported = issues.every(
    (issue) => issue.code === 'unsupported_parameter' || issue.code === 'unsupported_value',
  );
  return issues.length > 0 && unsupported ? 'unsupported_parameter' : 'invalid_request';
}

/** One issue reads as itself; several are numbered in one message. */
function issuesMessage(issues: readonly RequestIssue[]): string {
  const [first] = issues;
  if (first === undefined) return 'Invalid request.';
  if (issues.length === 1) return first.message;
  const listed = issues.map((issue, i) => `(${i + 1}) ${issue.message}`).join(' ');
  return `${issues.length} problems with the request: ${listed}`;
}

/** Throws one InvalidRequestError holding every issue, if there are any. */
export function throwIfIssues(issues: readonly RequestIssue[]): void {
  if (issues.length > 0) throw new InvalidRequestError(issues);
}

const WIRE_CODE: Partial<Record<ErrorCode, string>> = { unauthorized: 'invalid_api_key' };

function errorType(status: number): string {
  if (status === 429) return 'requests';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

function body(status: number, message: string, param: string | null, code: string | null): OpenAIErrorBody {
  return { error: { message, type: errorType(status), param, code } };
}

function fromAutoGLM(err: AutoGLMError): OpenAIErrorResponse {
  const status = err.httpStatus;
  const message = err.hint === undefined ? err.message : `${err.message} (${err.hint})`;
  if (err instanceof InvalidRequestError && err.issues[0] !== undefined) {
    const first = err.issues[0];
    const code = err.code === 'context_length_exceeded' ? err.code : first.code;
    return { status, body: body(status, message, first.param, code) };
  }
  return { status, body: body(status, message, null, WIRE_CODE[err.code] ?? err.code) };
}

const INTERNAL_MESSAGE = 'The server had an error while processing your request.';

/** The http-errors shape that express's body parser throws (bad JSON, body too large, …). */
interface HttpError {
  readonly status: number;
  readonly expose: boolean;
  readonly message: string;
  readonly type?: unknown;
}

function isHttpError(err: unknown): err is HttpError {
  if (!(err instanceof Error)) return false;
  const { status, expose } = err as Partial<HttpError>;
  return typeof status === 'number' && status >= 400 && status < 600 && typeof expose === 'boolean';
}

function fromHttpError(err: HttpError): OpenAIErrorResponse {
  const { status } = err;
  if (!err.expose) return fromAutoGLM(new AutoGLMError('internal', INTERNAL_MESSAGE));
  if (err.type === 'entity.parse.failed') {
    const message = `We could not parse the JSON body of your request: ${err.message}. The API expects a JSON object.`;
    return { status, body: body(status, message, null, 'invalid_request') };
  }
  const code = status === 413 ? 'payload_too_large' : null;
  return { status, body: body(status, err.message, null, code) };
}

/**
 * Maps anything thrown while serving a request to a status and OpenAI's error body.
 * Errors the server does not know (plain Errors, bugs) become a 500 whose message does not
 * leak internals; the caller should log the original.
 */
export function openAIError(err: unknown): OpenAIErrorResponse {
  if (err instanceof AutoGLMError) return fromAutoGLM(err);
  if (isHttpError(err)) return fromHttpError(err);
  return fromAutoGLM(new AutoGLMError('internal', INTERNAL_MESSAGE));
}

/**
 * The effective max_tokens: the request's own, or all the context the prompt leaves. Throws
 * context_length_exceeded (400, param `messages` or `prompt`, as OpenAI does) when the prompt
 * and the completion do not fit, or the prompt leaves no room for a single token.
 */
export function contextLengthCheck(
  promptTokens: number,
  maxTokens: number | undefined,
  maxModelLen: number,
  param: 'messages' | 'prompt' = 'messages',
): number {
  const room = maxModelLen - promptTokens;
  if (maxTokens === undefined ? room >= 1 : maxTokens <= room) return maxTokens ?? room;
  const where = param === 'messages' ? 'in the messages' : 'in the prompt';
  const requested =
    maxTokens === undefined
      ? `However, your ${param} resulted in ${promptTokens} tokens.`
      : `However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} ${where}, ${maxTokens} in the completion).`;
  const message = `This model's maximum context length is ${maxModelLen} tokens. ${requested} Please reduce the length of the ${param} or completion.`;
  const issue: RequestIssue = { param, code: 'invalid_value', message };
  throw new ContextLengthError(issue);
}
