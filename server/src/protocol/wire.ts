/** What chat and text completion responses share: ids, usage, log-probability values. */
import { randomUUID } from 'node:crypto';
import type { ResponseMeta, TokenText, UsageCounts } from './types.ts';

export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

/** OpenAI's stand-in for "very unlikely": JSON has no -Infinity. */
export const MIN_LOGPROB = -9999;

/** A log-probability as JSON can carry it: -Infinity and NaN become -9999, as in OpenAI's API. */
export function wireLogprob(logprob: number): number {
  return Number.isNaN(logprob) || logprob < MIN_LOGPROB ? MIN_LOGPROB : logprob;
}

const utf8 = new TextEncoder();

/** The token's bytes as given, else the UTF-8 of its text. */
export function tokenBytes(token: TokenText): number[] | null {
  if (token.bytes === null) return null;
  return token.bytes === undefined ? Array.from(utf8.encode(token.token)) : [...token.bytes];
}

export function wireUsage(usage: UsageCounts): WireUsage {
  const wire: WireUsage = {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
  if (usage.cachedTokens !== undefined) wire.prompt_tokens_details = { cached_tokens: usage.cachedTokens };
  return wire;
}

/** The fields every object of a response carries, in OpenAI's order. */
export function metaFields<O extends string>(
  meta: ResponseMeta,
  object: O,
): { id: string; object: O; created: number; model: string; system_fingerprint?: string } {
  const fields = { id: meta.id, object, created: meta.created, model: meta.model };
  return meta.systemFingerprint === undefined
    ? fields
    : { ...fields, system_fingerprint: meta.systemFingerprint };
}

/**
 * A fresh id and timestamp for one response: `chatcmpl-…` for chat, `cmpl-…` for text
 * completions. The only impure function here; the builders take its result.
 */
export function responseMeta(
  kind: 'chat' | 'completion',
  model: string,
  options: { readonly systemFingerprint?: string; readonly now?: number } = {},
): ResponseMeta {
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor((options.now ?? Date.now()) / 1000);
  const meta = { id, created, model };
  return options.systemFingerprint === undefined
    ? meta
    : { ...meta, systemFingerprint: options.systemFingerprint };
}
