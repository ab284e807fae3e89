/**
 * GGUF tokenizer metadata → the Hugging Face files a model folder carries (tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json), so that transformers, transformers.js and
 * our own server tokenize as the original model did.
 */
import { AutoGLMError } from '../../errors.ts';
import type { GgufMetadata } from '../gguf/types.ts';
import { byteLevelFamily, byteLevelTokenizerJson } from './byteLevel.ts';
import type { SpecialIds, VocabInput } from './common.ts';
import {
  optionalBool,
  optionalIndex,
  optionalNumberArray,
  optionalString,
  optionalStringArray,
  requireStringArray,
} from './metadata.ts';
import { sentencePieceTokenizerJson } from './sentencePiece.ts';
import type {
  GenerationTokenIds,
  NamedChatTemplate,
  SpecialTokensMapJson,
  TokenizerConfigJson,
  TokenizerFiles,
  TokenizerJson,
} from './types.ts';

export const SUPPORTED_TOKENIZER_MODELS = ['gpt2', 'llama'] as const;

function specialIds(md: GgufMetadata, vocabSize: number): SpecialIds {
  const keys = {
    bos: 'tokenizer.ggml.bos_token_id',
    eos: 'tokenizer.ggml.eos_token_id',
    unk: 'tokenizer.ggml.unknown_token_id',
    pad: 'tokenizer.ggml.padding_token_id',
    eot: 'tokenizer.ggml.eot_token_id',
    eom: 'tokenizer.ggml.eom_token_id',
  } as const;
  const out: Record<string, number> = {};
  for (const [role, key] of Object.entries(keys)) {
    const id = optionalIndex(md, key);
    if (id === undefined) continue;
    if (id >= vocabSize) {
      throw new AutoGLMError('gguf_corrupt', `GGUF ${key} = ${id} is outside the vocabulary of ${vocabSize}`);
    }
    out[role] = id;
  }
  return out;
}

function vocabInput(md: GgufMetadata, addBosDefault: boolean): VocabInput {
  const tokens = requireStringArray(md, 'tokenizer.ggml.tokens');
  const types = optionalNumberArray(md, 'tokenizer.ggml.token_type');
  if (types !== undefined && types.length !== tokens.length) {
    throw new AutoGLMError(
      'gguf_corrupt',
      `GGUF has ${types.length} token types for ${tokens.length} tokens`,
    );
  }
  return {
    tokens,
    types,
    special: specialIds(md, tokens.length),
    addBos: optionalBool(md, 'tokenizer.ggml.add_bos_token') ?? addBosDefault,
    addEos: optionalBool(md, 'tokenizer.ggml.add_eos_token') ?? false,
  };
}

function chatTemplate(md: GgufMetadata): string | readonly NamedChatTemplate[] | undefined {
  const main = optionalString(md, 'tokenizer.chat_template');
  const names = optionalStringArray(md, 'tokenizer.chat_templates') ?? [];
  const named = names.flatMap((name) => {
    const template = optionalString(md, `tokenizer.chat_template.${name}`);
    return template === undefined ? [] : [{ name, template }];
  });
  if (named.length === 0) return main;
  return main === undefined ? named : [{ name: 'default', template: main }, ...named];
}

function contextLength(md: GgufMetadata): number | undefined {
  const arch = optionalString(md, 'general.architecture');
  return arch === undefined ? undefined : optionalIndex(md, `${arch}.context_length`);
}

interface Built {
  readonly json: TokenizerJson;
  readonly tokenizerClass: string;
  readonly input: VocabInput;
}

function buildByteLevel(md: GgufMetadata): Built {
  const family = byteLevelFamily(optionalString(md, 'tokenizer.ggml.pre'));
  const input = vocabInput(md, family.addBosDefault);
  const merges = requireStringArray(md, 'tokenizer.ggml.merges');
  const addsTokens = input.addBos || input.addEos;
  const tokenizerClass =
    addsTokens && family.tokenizerClass === 'GPT2Tokenizer'
      ? 'PreTrainedTokenizerFast'
      : family.tokenizerClass;
  return { json: byteLevelTokenizerJson(input, merges, family), tokenizerClass, input };
}

function buildSentencePiece(md: GgufMetadata): Built {
  // llama.cpp adds BOS to SentencePiece prompts unless the file says otherwise.
  const input = vocabInput(md, true);
  const scores = optionalNumberArray(md, 'tokenizer.ggml.scores');
  if (scores?.length !== input.tokens.length) {
    throw new AutoGLMError(
      'gguf_corrupt',
      'SentencePiece GGUF needs one tokenizer.ggml.scores entry per token',
    );
  }
  const addSpacePrefix = optionalBool(md, 'tokenizer.ggml.add_space_prefix') ?? true;
  return {
    json: sentencePieceTokenizerJson(input, scores, addSpacePrefix),
    tokenizerClass: 'LlamaTokenizer',
    input,
  };
}

function tokenizerConfig(md: GgufMetadata, built: Built): TokenizerConfigJson {
  const { input } = built;
  const token = (id: number | undefined): string | null =>
    id === undefined ? null : (input.tokens[id] ?? null);
  const template = chatTemplate(md);
  const maxLength = contextLength(md);
  const addedTokensDecoder = Object.fromEntries(
    built.json.added_tokens.map(({ id, ...rest }) => [String(id), rest]),
  );
  return {
    tokenizer_class: built.tokenizerClass,
    add_bos_token: input.addBos,
    add_eos_token: input.addEos,
    bos_token: token(input.special.bos),
    eos_token: token(input.special.eos),
    unk_token: token(input.special.unk),
    pad_token: token(input.special.pad),
    added_tokens_decoder: addedTokensDecoder,
    clean_up_tokenization_spaces: false,
    ...(maxLength === undefined ? {} : { model_max_length: maxLength }),
    ...(template === undefined ? {} : { chat_template: template }),
    ...(built.tokenizerClass === 'LlamaTokenizer' ? { legacy: true } : {}),
  };
}

function specialTokensMap(config: TokenizerConfigJson): SpecialTokensMapJson {
  const entries = (['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const).flatMap((key) => {
    const value = config[key];
    return value === null ? [] : [[key, value] as const];
  });
  return Object.fromEntries(entries);
}

/** EOS, then end-of-turn and end-of-message: generation stops at any of them. */
function generationIds(special: SpecialIds): GenerationTokenIds | undefined {
  const eos = [special.eos, special.eot, special.eom].filter((id): id is number => id !== undefined);
  if (eos.length === 0 && special.bos === undefined) return undefined;
  return {
    ...(special.bos === undefined ? {} : { bosTokenId: special.bos }),
    eosTokenIds: [...new Set(eos)],
    ...(special.pad === undefined ? {} : { padTokenId: special.pad }),
  };
}

export function tokenizerFilesFromGguf(md: GgufMetadata): TokenizerFiles {
  const model = optionalString(md, 'tokenizer.ggml.model');
  let built: Built;
  if (model === 'gpt2') built = buildByteLevel(md);
  else if (model === 'llama') built = buildSentencePiece(md);
  else {
    throw new AutoGLMError(
      'unsupported_tokenizer',
      model === undefined
        ? 'the GGUF file has no tokenizer (tokenizer.ggml.model is missing)'
        : `unsupported GGUF tokenizer model "${model}"`,
      { hint: `supported tokenizer.ggml.model values: ${SUPPORTED_TOKENIZER_MODELS.join(', ')}` },
    );
  }
  const config = tokenizerConfig(md, built);
  const generation = generationIds(built.input.special);
  return {
    tokenizerJson: built.json,
    tokenizerConfig: config,
    specialTokensMap: specialTokensMap(config),
    ...(generation === undefined ? {} : { generation }),
  };
}
