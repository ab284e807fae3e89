/**
 * The server's tokenizer: a Hugging Face model folder's tokenizer.json run by
 * @huggingface/tokenizers, its chat template, and the ids generation needs (BOS, every EOS).
 * Decoding never applies transformers' "clean up tokenization spaces": it rewrites text
 * (" ." → "."), which a server must not do to what the model wrote.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoGLMError } from '../../errors.ts';
import { ChatTemplate, configToken, type ChatMessage, type ChatTemplateOptions } from './chatTemplate.ts';
import { createHfTokenizer, type HfTokenizer } from './hfTokenizers.ts';
import { IncrementalDecoder } from './incremental.ts';

export type { ChatMessage, ChatTemplateOptions } from './chatTemplate.ts';
export { IncrementalDecoder } from './incremental.ts';

export interface EncodeOptions {
  /** Add what the post-processor adds (BOS for Llama-style models); default true, as in transformers. */
  readonly addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  readonly skipSpecialTokens?: boolean;
}

/** The parsed JSON files of a model folder; only tokenizer.json is required. */
export interface TokenizerSources {
  readonly tokenizerJson: object;
  readonly tokenizerConfig?: object;
  readonly generationConfig?: object;
  readonly modelConfig?: object;
}

type JsonRecord = Readonly<Record<string, unknown>>;

async function readJson(file: string, required: boolean): Promise<object | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined;
    throw new AutoGLMError('unsupported_tokenizer', `cannot read ${file}`, {
      hint: 'a model folder needs a tokenizer.json (the Hugging Face "fast" tokenizer format)',
      cause: err,
    });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) throw new Error('not a JSON object');
    return value;
  } catch (err) {
    throw new AutoGLMError('unsupported_tokenizer', `${file} is not valid JSON`, { cause: err });
  }
}

function idList(value: unknown): number[] {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.filter((id): id is number => typeof id === 'number' && Number.isInteger(id) && id >= 0);
}

export class Tokenizer {
  readonly bosTokenId: number | undefined;
  /** Every id that ends generation: tokenizer EOS, generation_config's and config.json's. */
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | undefined;
  /** One past the largest token id, added tokens included. */
  readonly vocabSize: number;
  readonly specialTokenIds: ReadonlySet<number>;
  readonly #hf: HfTokenizer;
  readonly #chat: ChatTemplate;

  private constructor(sources: TokenizerSources) {
    const config = (sources.tokenizerConfig ?? {}) as JsonRecord;
    const generation = (sources.generationConfig ?? {}) as JsonRecord;
    const model = (sources.modelConfig ?? {}) as JsonRecord;
    try {
      this.#hf = createHfTokenizer(sources.tokenizerJson, config);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new AutoGLMError('unsupported_tokenizer', `cannot build the tokenizer: ${reason}`, {
        cause: err,
      });
    }
    this.#chat = new ChatTemplate(config);
    const idOf = (key: string): number | undefined => {
      const token = configToken(config[key]);
      return token === undefined ? undefined : this.#hf.token_to_id(token);
    };
    const firstId = (...values: unknown[]): number | undefined => values.flatMap(idList)[0];
    this.bosTokenId = idOf('bos_token') ?? firstId(generation['bos_token_id'], model['bos_token_id']);
    this.padTokenId = idOf('pad_token') ?? firstId(generation['pad_token_id'], model['pad_token_id']);
    const eos = [
      ...idList(generation['eos_token_id']),
      ...idList(idOf('eos_token')),
      ...idList(model['eos_token_id']),
    ];
    this.eosTokenIds = [...new Set(eos)];
    let maxId = -1;
    for (const id of this.#hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialTokenIds = new Set(
      [...this.#hf.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id),
    );
  }

  /** Loads tokenizer.json, and tokenizer_config.json, generation_config.json, config.json when present. */
  static async load(dir: string): Promise<Tokenizer> {
    const [tokenizerJson, tokenizerConfig, generationConfig, modelConfig] = await Promise.all([
      readJson(path.join(dir, 'tokenizer.json'), true),
      readJson(path.join(dir, 'tokenizer_config.json'), false),
      readJson(path.join(dir, 'generation_config.json'), false),
      readJson(path.join(dir, 'config.json'), false),
    ]);
    return Tokenizer.fromSources({
      tokenizerJson: tokenizerJson ?? {},
      ...(tokenizerConfig === undefined ? {} : { tokenizerConfig }),
      ...(generationConfig === undefined ? {} : { generationConfig }),
      ...(modelConfig === undefined ? {} : { modelConfig }),
    });
  }

  static fromSources(sources: TokenizerSources): Tokenizer {
    return new Tokenizer(sources);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.#hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Ids with no token (a model's padded embedding rows) decode to nothing, as in `tokenizers`. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const known: number[] = ids.filter((id) => this.#hf.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.#hf.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /**
   * The text one token adds after other text (U+FFFD where it holds part of a character).
   * Decoding it twice and dropping the first copy keeps the leading space that SentencePiece
   * decoders strip from the start of a text: "▁the" reads " the", not "the".
   */
  tokenText(id: number): string {
    return this.decode([id, id]).slice(this.decode([id]).length);
  }

  /** The vocabulary entry for a token string, e.g. "<|im_end|>". */
  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  /**
   * A streaming decoder for one generation. `context`, the prompt's ids, lets the first
   * generated token decode as it reads after the prompt (its leading space kept).
   */
  incrementalDecoder(
    options: DecodeOptions & { readonly context?: readonly number[] } = {},
  ): IncrementalDecoder {
    return new IncrementalDecoder((ids) => this.decode(ids, options), options.context);
  }

  get hasChatTemplate(): boolean {
    return this.#chat.available;
  }

  /**
   * The prompt text for a conversation. Templates write their own BOS where the model wants
   * one, so encode the result with `addSpecialTokens: false`.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.#chat.render(messages, options);
  }
}
