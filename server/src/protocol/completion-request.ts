/** POST /v1/completions: the body, parsed strictly into a frozen CompletionRequest. */
import { checkEach, checkString, deepFreeze, type FieldReader } from './fields.ts';
import {
  bodyReader,
  checkTokenIds,
  finishBody,
  MAX_TOP_LOGPROBS,
  parseGeneration,
  refuse,
  type Refused,
} from './generation.ts';
import type { CompletionRequest, ParseOptions, Prompt } from './types.ts';

/** OpenAI's default for the legacy completions endpoint (and vLLM's). */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

const COMPLETION_REFUSED: readonly Refused[] = [
  { key: 'echo', accepts: (v) => v === false, why: 'is not supported: only the completion is returned.' },
  { key: 'suffix', accepts: (v) => v === '', why: 'is not supported: there is no fill-in-the-middle.' },
];

function textPrompt(text: string): Prompt {
  return { kind: 'text', text };
}

function tokenPrompt(
  r: FieldReader,
  param: string,
  value: readonly unknown[],
  options: ParseOptions,
): Prompt | undefined {
  if (value.length === 0) r.issues.value(param, 'a token prompt must not be empty.');
  const tokenIds = checkTokenIds(r.issues, param, value, options);
  return tokenIds === undefined ? undefined : { kind: 'tokens', tokenIds };
}

/** An array prompt: strings, token ids, or arrays of token ids, not mixed. */
function arrayPrompts(
  r: FieldReader,
  param: string,
  value: readonly unknown[],
  options: ParseOptions,
): Prompt[] {
  if (value.length === 0) {
    r.issues.value(param, 'expected at least one prompt.');
    return [];
  }
  if (typeof value[0] === 'number') {
    const prompt = tokenPrompt(r, param, value, options);
    return prompt === undefined ? [] : [prompt];
  }
  if (Array.isArray(value[0])) {
    return checkEach(value, param, (item, itemParam) => {
      if (Array.isArray(item)) return tokenPrompt(r, itemParam, item, options);
      r.issues.type(itemParam, 'an array of token ids', item);
      return undefined;
    });
  }
  return checkEach(value, param, (item, itemParam) => {
    const text = checkString(r.issues, itemParam, item);
    return text === undefined ? undefined : textPrompt(text);
  });
}

/**
 * `prompt`: string | string[] | number[] | number[][]. A null prompt is OpenAI's "generate as
 * from the start of a document": one empty text prompt.
 */
function parsePrompts(r: FieldReader, options: ParseOptions): Prompt[] {
  const param = r.param('prompt');
  if (!r.present('prompt')) {
    r.issues.missing(param);
    return [];
  }
  const value = r.raw('prompt');
  if (value === undefined) return [textPrompt('')];
  if (typeof value === 'string') return [textPrompt(value)];
  if (Array.isArray(value)) return arrayPrompts(r, param, value, options);
  r.issues.type(param, 'a string, an array of strings, or an array of token ids', value);
  return [];
}

/** `logprobs`: an integer 0..20, the alternatives per position; absent means none. */
function parseCompletionLogprobs(r: FieldReader): { logprobs: boolean; topLogprobs: number } {
  const top = r.number('logprobs', { integer: true, min: 0, max: MAX_TOP_LOGPROBS });
  return { logprobs: top !== undefined, topLogprobs: top ?? 0 };
}

/** `best_of` only as a no-op: 1 or equal to n (there is no ranking of candidates). */
function checkBestOf(r: FieldReader, n: number): void {
  const bestOf = r.number('best_of', { integer: true, min: 1 });
  if (bestOf !== undefined && bestOf !== 1 && bestOf !== n) {
    r.issues.unsupportedValue(
      r.param('best_of'),
      `only 1 or the value of 'n' (${n}) is supported, but got ${bestOf}.`,
    );
  }
}

/**
 * Parses a completion request. Throws InvalidRequestError listing every problem, each with
 * its `param` (such as `prompt[2][0]`). Unknown fields are ignored and listed in `ignoredFields`.
 */
export function parseCompletionRequest(body: unknown, options: ParseOptions = {}): CompletionRequest {
  const r = bodyReader(body);
  const maxTokens = r.numberOr('max_tokens', { integer: true, min: 1 }, DEFAULT_COMPLETION_MAX_TOKENS);
  const generation = parseGeneration(r, maxTokens, options);
  const prompts = parsePrompts(r, options);
  const logprobs = parseCompletionLogprobs(r);
  checkBestOf(r, generation.n);
  const addSpecialTokens = r.booleanOr('add_special_tokens', true);
  refuse(r, COMPLETION_REFUSED);
  const ignoredFields = finishBody(r);
  return deepFreeze({
    kind: 'completion',
    ...generation,
    ...logprobs,
    prompts,
    addSpecialTokens,
    ignoredFields,
  });
}
