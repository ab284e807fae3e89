/**
 * Byte-level BPE (`tokenizer.ggml.model == "gpt2"`: GPT-2, SmolLM, Llama 3, Qwen2): the GGUF
 * vocabulary and merges are already in byte-level form, so the work is choosing the
 * pre-tokenizer that `tokenizer.ggml.pre` names. Each family's Split regex is the one in the
 * original tokenizer.json, which llama.cpp's per-type regexes reproduce.
 */
import { AutoGLMError } from '../../errors.ts';
import { addedTokens, bosEosPostProcessor, vocabObject, type VocabInput } from './common.ts';
import type { JsonObject, TokenizerJson } from './types.ts';

/** GPT-2's map from bytes to printable characters: byte b is written as BYTE_TO_CHAR[b]. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : 256 + extra++));
  return out;
})();

const utf8 = new TextEncoder();

/** Text → its byte-level form (each UTF-8 byte as one printable character). */
export function byteLevelEncode(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b] ?? '';
  return out;
}

export const GPT2_SPLIT_REGEX =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const split = (regex: string): JsonObject => ({
  type: 'Split',
  pattern: { Regex: regex },
  behavior: 'Isolated',
  invert: false,
});
const byteLevel = (useRegex: boolean): JsonObject => ({
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: useRegex,
});

interface PreTokenizerFamily {
  readonly normalizer: JsonObject | null;
  readonly preTokenizer: JsonObject;
  /** Whole pre-tokens found in the vocabulary skip the merges (Llama 3's `ignore_merges`). */
  readonly ignoreMerges: boolean;
  /** llama.cpp's add_bos default when the GGUF does not say. */
  readonly addBosDefault: boolean;
  readonly tokenizerClass: string;
}

const GPT2_FAMILY: PreTokenizerFamily = {
  normalizer: null,
  preTokenizer: byteLevel(true),
  ignoreMerges: false,
  addBosDefault: false,
  tokenizerClass: 'GPT2Tokenizer',
};
/**
 * StarCoder / SmolLM: every digit alone, then GPT-2's split. The original file writes the
 * first step as `Digits(individual_digits)`, which `tokenizers` (Rust) applies to every
 * Unicode number; transformers.js's Digits only knows ASCII digits, so we write the same
 * step as a Split on \p{N}, which both read alike (and which is llama.cpp's first regex).
 */
const STARCODER_FAMILY: PreTokenizerFamily = {
  ...GPT2_FAMILY,
  preTokenizer: { type: 'Sequence', pretokenizers: [split('\\p{N}'), byteLevel(true)] },
};
const LLAMA3_FAMILY: PreTokenizerFamily = {
  normalizer: null,
  preTokenizer: { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT_REGEX), byteLevel(false)] },
  ignoreMerges: true,
  addBosDefault: true,
  tokenizerClass: 'PreTrainedTokenizerFast',
};
const QWEN2_FAMILY: PreTokenizerFamily = {
  normalizer: { type: 'NFC' },
  preTokenizer: { type: 'Sequence', pretokenizers: [split(QWEN2_SPLIT_REGEX), byteLevel(false)] },
  ignoreMerges: false,
  addBosDefault: false,
  tokenizerClass: 'Qwen2Tokenizer',
};

/** `tokenizer.ggml.pre` values (llama.cpp's names) → family. */
const FAMILIES: ReadonlyMap<string, PreTokenizerFamily> = new Map([
  ['default', GPT2_FAMILY],
  ['gpt2', GPT2_FAMILY],
  ['gpt-2', GPT2_FAMILY],
  ['mpt', GPT2_FAMILY],
  ['olmo', GPT2_FAMILY],
  ['smollm', STARCODER_FAMILY],
  ['starcoder', STARCODER_FAMILY],
  ['refact', STARCODER_FAMILY],
  ['codeshell', STARCODER_FAMILY],
  ['llama3', LLAMA3_FAMILY],
  ['llama-v3', LLAMA3_FAMILY],
  ['llama-bpe', LLAMA3_FAMILY],
  ['falcon3', LLAMA3_FAMILY],
  ['dbrx', LLAMA3_FAMILY],
  ['smaug-bpe', LLAMA3_FAMILY],
  ['qwen2', QWEN2_FAMILY],
  ['deepseek-r1-qwen', QWEN2_FAMILY],
]);

export const BYTE_LEVEL_PRE_TYPES: readonly string[] = [...FAMILIES.keys()];

export function byteLevelFamily(pre: string | undefined): PreTokenizerFamily {
  const family = FAMILIES.get(pre ?? 'default');
  if (family === undefined) {
    throw new AutoGLMError('unsupported_tokenizer', `unsupported GGUF pre-tokenizer "${pre ?? ''}"`, {
      hint: `byte-level BPE models with tokenizer.ggml.pre in ${BYTE_LEVEL_PRE_TYPES.join(', ')} are supported`,
    });
  }
  return family;
}

/** Parses "left right" merges and checks that both halves and the result are tokens. */
export function parseMerges(
  merges: readonly string[],
  vocab: { readonly [token: string]: number },
): [string, string][] {
  return merges.map((merge, i) => {
    const parts = merge.split(' ');
    const [left, right] = parts;
    if (parts.length !== 2 || left === undefined || right === undefined) {
      throw new AutoGLMError('gguf_corrupt', `GGUF merge ${i} "${merge}" is not "left right"`);
    }
    for (const token of [left, right, left + right]) {
      if (!Object.hasOwn(vocab, token)) {
        throw new AutoGLMError(
          'gguf_corrupt',
          `GGUF merge ${i} "${merge}" uses "${token}", not in the vocabulary`,
        );
      }
    }
    return [left, right];
  });
}

export function byteLevelTokenizerJson(
  input: VocabInput,
  merges: readonly string[],
  family: PreTokenizerFamily,
): TokenizerJson {
  const vocab = vocabObject(input.tokens);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(input),
    normalizer: family.normalizer,
    pre_tokenizer: family.preTokenizer,
    post_processor: bosEosPostProcessor(input) ?? {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: false,
      use_regex: true,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: family.ignoreMerges,
      vocab,
      merges: parseMerges(merges, vocab),
    },
  };
}
