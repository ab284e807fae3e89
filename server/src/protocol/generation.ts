/**
 * The fields chat and completion requests share: sampling, stopping, logit_bias, n,
 * streaming, and the parameters this server refuses rather than silently ignore.
 */
import { InvalidRequestError, throwIfIssues } from './errors.ts';
import {
  checkEach,
  checkNumber,
  checkString,
  FieldReader,
  isRecord,
  Issues,
  type NumberRule,
} from './fields.ts';
import type { GenerationParams, LogitBias, ParseOptions, SamplingParams, StopParams } from './types.ts';

/** OpenAI allows 4 stop sequences; vLLM any number. We allow 16. */
export const MAX_STOP_SEQUENCES = 16;
export const MAX_N = 16;
export const MAX_TOP_LOGPROBS = 20;

/** A reader over a request body, which must be a JSON object. */
export function bodyReader(body: unknown): FieldReader {
  if (isRecord(body)) return new FieldReader(body, new Issues());
  const message = 'The request body must be a JSON object.';
  throw new InvalidRequestError([{ param: null, code: 'invalid_type', message }]);
}

/** Throws every problem found at once; otherwise returns the fields nobody read. */
export function finishBody(r: FieldReader): string[] {
  throwIfIssues(r.issues.list);
  return r.unread();
}

export function tokenIdRule(options: ParseOptions): NumberRule {
  return options.vocabSize === undefined
    ? { integer: true, min: 0 }
    : { integer: true, min: 0, max: options.vocabSize - 1 };
}

/** An array of token ids; undefined (with an issue) when it is not an array. */
export function checkTokenIds(
  issues: Issues,
  param: string,
  value: unknown,
  options: ParseOptions,
): number[] | undefined {
  if (!Array.isArray(value)) {
    issues.type(param, 'an array of token ids (integers)', value);
    return undefined;
  }
  const rule = tokenIdRule(options);
  return checkEach(value, param, (item, itemParam) => checkNumber(issues, itemParam, item, rule));
}

export function parseSampling(r: FieldReader): SamplingParams {
  const temperature = r.numberOr('temperature', { min: 0, max: 2 }, 1);
  const topP = r.numberOr('top_p', { min: 0, max: 1 }, 1);
  const seed = r.number('seed', { integer: true });
  const sampling: SamplingParams = {
    // top_p 0 keeps only the most likely token: that is greedy decoding.
    temperature: topP === 0 ? 0 : temperature,
    topK: Math.max(0, r.numberOr('top_k', { integer: true, min: -1 }, 0)),
    topP: topP === 0 ? 1 : topP,
    minP: r.numberOr('min_p', { min: 0, max: 1 }, 0),
    presencePenalty: r.numberOr('presence_penalty', { min: -2, max: 2 }, 0),
    frequencyPenalty: r.numberOr('frequency_penalty', { min: -2, max: 2 }, 0),
    repetitionPenalty: r.numberOr('repetition_penalty', { min: 0, minExclusive: true }, 1),
  };
  return seed === undefined ? sampling : { ...sampling, seed };
}

/** `stop`: a string or up to 16 strings. Empty strings stop nothing and are dropped. */
function parseStop(r: FieldReader): string[] {
  const value = r.raw('stop');
  const param = r.param('stop');
  if (value === undefined) return [];
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (!Array.isArray(value)) {
    r.issues.type(param, 'a string or an array of strings', value);
    return [];
  }
  if (value.length > MAX_STOP_SEQUENCES) {
    r.issues.value(
      param,
      `at most ${MAX_STOP_SEQUENCES} stop sequences are allowed, but got ${value.length}.`,
    );
  }
  const strings = checkEach(value, param, (item, itemParam) => checkString(r.issues, itemParam, item));
  return strings.filter((s) => s !== '');
}

export function parseStopping(
  r: FieldReader,
  maxTokens: number | undefined,
  options: ParseOptions,
): StopParams {
  const ids = r.raw('stop_token_ids');
  return {
    maxTokens,
    stopStrings: parseStop(r),
    stopTokenIds:
      ids === undefined ? [] : (checkTokenIds(r.issues, r.param('stop_token_ids'), ids, options) ?? []),
    ignoreEos: r.booleanOr('ignore_eos', false),
  };
}

function logitBiasKey(issues: Issues, param: string, key: string, rule: NumberRule): number | undefined {
  if (/^\d+$/.test(key)) return checkNumber(issues, param, Number(key), rule);
  issues.value(param, `the keys of 'logit_bias' are token ids (integers as strings), but got '${key}'.`);
  return undefined;
}

/** `logit_bias`: `{"<token id>": bias}` with bias in -100..100, as OpenAI defines it. */
export function parseLogitBias(r: FieldReader, options: ParseOptions): LogitBias[] {
  const map = r.object('logit_bias');
  if (map === undefined) return [];
  const idRule = tokenIdRule(options);
  const out: LogitBias[] = [];
  for (const key of map.keys()) {
    const param = map.param(key);
    const tokenId = logitBiasKey(r.issues, param, key, idRule);
    const bias = checkNumber(r.issues, param, map.raw(key), { min: -100, max: 100 });
    if (tokenId !== undefined && bias !== undefined) out.push({ tokenId, bias });
  }
  return out;
}

/** `stream` and `stream_options`, which OpenAI only allows with `stream: true`. */
export function parseStreaming(r: FieldReader): { stream: boolean; includeUsage: boolean } {
  const stream = r.booleanOr('stream', false);
  const options = r.object('stream_options');
  if (options === undefined) return { stream, includeUsage: false };
  if (!stream) r.issues.value(r.param('stream_options'), "only allowed when 'stream' is true.");
  // include_obfuscation is accepted and has no effect: this server never pads chunks.
  options.boolean('include_obfuscation');
  return { stream, includeUsage: options.booleanOr('include_usage', false) };
}

/** `response_format`: plain text only; JSON modes need constrained decoding, which is not here. */
function parseResponseFormat(r: FieldReader): void {
  const format = r.object('response_format');
  if (format === undefined) return;
  const type = format.required('type');
  if (type === undefined || type === 'text') return;
  if (typeof type !== 'string') {
    r.issues.type(format.param('type'), 'a string', type);
    return;
  }
  r.issues.unsupportedValue(
    format.param('type'),
    `'${type}' is not supported: this server does not constrain output to JSON; only 'text' is.`,
  );
}

/**
 * A parameter that would change the result in a way this server cannot honour. Any value
 * but null and the accepted ones is a 400 rather than being ignored.
 */
export interface Refused {
  readonly key: string;
  readonly accepts?: (value: unknown) => boolean;
  readonly why: string;
}

const STRUCTURED = 'is not supported: this server has no constrained (structured) decoding.';

/** vLLM extensions that clients send through `extra_body`. */
const REFUSED_EVERYWHERE: readonly Refused[] = [
  ...['guided_json', 'guided_regex', 'guided_choice', 'guided_grammar', 'structured_outputs'].map((key) => ({
    key,
    why: STRUCTURED,
  })),
  { key: 'use_beam_search', accepts: (v) => v === false, why: 'is not supported: there is no beam search.' },
  { key: 'min_tokens', accepts: (v) => v === 0, why: 'is not supported.' },
  {
    key: 'include_stop_str_in_output',
    accepts: (v) => v === false,
    why: 'is not supported: stop strings are never part of the output.',
  },
  { key: 'prompt_logprobs', why: 'is not supported: log-probabilities are returned for output tokens only.' },
];

export function refuse(r: FieldReader, refused: readonly Refused[]): void {
  for (const { key, accepts, why } of [...REFUSED_EVERYWHERE, ...refused]) {
    const value = r.raw(key);
    if (value !== undefined && accepts?.(value) !== true) r.issues.unsupported(r.param(key), why);
  }
}

/** Everything but the endpoint's own fields (messages or prompt, logprobs) and max_tokens. */
export function parseGeneration(
  r: FieldReader,
  maxTokens: number | undefined,
  options: ParseOptions,
): Omit<GenerationParams, 'logprobs' | 'topLogprobs' | 'ignoredFields'> {
  const model = r.string('model');
  const user = r.string('user');
  parseResponseFormat(r);
  return {
    model,
    sampling: parseSampling(r),
    stopping: parseStopping(r, maxTokens, options),
    logitBias: parseLogitBias(r, options),
    n: r.numberOr('n', { integer: true, min: 1, max: MAX_N }, 1),
    ...parseStreaming(r),
    user,
  };
}

/** A JSON-compatible deep copy (for tool schemas), so freezing never touches the caller's body. */
export function cloneJson(value: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const copy: unknown = structuredClone(value);
  return isRecord(copy) ? copy : {};
}
