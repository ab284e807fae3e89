/**
 * The Hugging Face tokenizer files we write, typed as far as we fill them. Field names are
 * the files' own (snake_case), so objects serialize with JSON.stringify as they are.
 */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
export type JsonObject = { readonly [key: string]: Json };

export type AddedTokenJson = {
  readonly id: number;
  readonly content: string;
  readonly single_word: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly normalized: boolean;
  readonly special: boolean;
};

export type BpeModelJson = {
  readonly type: 'BPE';
  readonly dropout: null;
  readonly unk_token: string | null;
  readonly continuing_subword_prefix: null;
  readonly end_of_word_suffix: null;
  readonly fuse_unk: boolean;
  readonly byte_fallback: boolean;
  readonly ignore_merges: boolean;
  readonly vocab: { readonly [token: string]: number };
  readonly merges: readonly (readonly [string, string])[];
};

/** tokenizer.json, format version 1.0 as written by `tokenizers` (Rust) and read by transformers.js. */
export type TokenizerJson = {
  readonly version: '1.0';
  readonly truncation: null;
  readonly padding: null;
  readonly added_tokens: readonly AddedTokenJson[];
  readonly normalizer: JsonObject | null;
  readonly pre_tokenizer: JsonObject | null;
  readonly post_processor: JsonObject | null;
  readonly decoder: JsonObject | null;
  readonly model: BpeModelJson;
};

export type NamedChatTemplate = { readonly name: string; readonly template: string };

/** tokenizer_config.json: what transformers (Python) and transformers.js read. */
export type TokenizerConfigJson = {
  readonly tokenizer_class: string;
  readonly add_bos_token: boolean;
  readonly add_eos_token: boolean;
  readonly bos_token: string | null;
  readonly eos_token: string | null;
  readonly unk_token: string | null;
  readonly pad_token: string | null;
  readonly added_tokens_decoder: { readonly [id: string]: Omit<AddedTokenJson, 'id'> };
  readonly clean_up_tokenization_spaces: false;
  readonly model_max_length?: number;
  readonly chat_template?: string | readonly NamedChatTemplate[];
  readonly legacy?: boolean;
};

export type SpecialTokensMapJson = {
  readonly bos_token?: string;
  readonly eos_token?: string;
  readonly unk_token?: string;
  readonly pad_token?: string;
};

/** The token ids generation needs, for config.json / generation_config.json. */
export interface GenerationTokenIds {
  readonly bosTokenId?: number;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId?: number;
}

export interface TokenizerFiles {
  readonly tokenizerJson: TokenizerJson;
  readonly tokenizerConfig: TokenizerConfigJson;
  readonly specialTokensMap: SpecialTokensMapJson;
  readonly generation?: GenerationTokenIds;
}
