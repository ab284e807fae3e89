/**
 * Typed reads of the `tokenizer.*` GGUF keys. A key of the wrong type is a corrupt file,
 * reported with the key's name; a missing optional key is `undefined`.
 */
import { AutoGLMError } from '../../errors.ts';
import type { GgufMetadata, GgufValue } from '../gguf/types.ts';

/** llama.cpp's token attributes as stored in `tokenizer.ggml.token_type` (llama.h). */
export const TOKEN_TYPE = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

function corrupt(key: string, expected: string): AutoGLMError {
  return new AutoGLMError('gguf_corrupt', `GGUF metadata ${key} is not ${expected}`, {
    hint: 'the file was written by a broken converter; download or convert it again',
  });
}

function asNumber(value: GgufValue): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= 0n)
    return Number(value);
  return undefined;
}

export function optionalString(md: GgufMetadata, key: string): string | undefined {
  const value = md.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw corrupt(key, 'a string');
  return value;
}

export function optionalBool(md: GgufMetadata, key: string): boolean | undefined {
  const value = md.get(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw corrupt(key, 'a boolean');
  return value;
}

/** A token id or a count: a non-negative integer. */
export function optionalIndex(md: GgufMetadata, key: string): number | undefined {
  const value = md.get(key);
  if (value === undefined) return undefined;
  const n = asNumber(value);
  if (n === undefined || !Number.isInteger(n) || n < 0) throw corrupt(key, 'a non-negative integer');
  return n;
}

export function optionalStringArray(md: GgufMetadata, key: string): readonly string[] | undefined {
  const value = md.get(key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw corrupt(key, 'an array of strings');
  }
  return value;
}

export function requireStringArray(md: GgufMetadata, key: string): readonly string[] {
  const value = optionalStringArray(md, key);
  if (value === undefined) throw new AutoGLMError('gguf_corrupt', `GGUF metadata has no ${key}`);
  return value;
}

export function optionalNumberArray(md: GgufMetadata, key: string): readonly number[] | undefined {
  const value = md.get(key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw corrupt(key, 'an array of numbers');
  return value.map((v: GgufValue) => {
    const n = asNumber(v);
    if (n === undefined) throw corrupt(key, 'an array of numbers');
    return n;
  });
}
