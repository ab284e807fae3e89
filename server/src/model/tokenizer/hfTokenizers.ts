/**
 * The part of @huggingface/tokenizers we use, typed here: the package's own declarations use
 * extensionless relative imports, which `moduleResolution: nodenext` cannot follow, so its
 * `Tokenizer` reaches us untyped.
 */
import * as tokenizers from '@huggingface/tokenizers';

export interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(
    ids: number[],
    options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean },
  ): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  get_added_tokens_decoder(): Map<number, { readonly content: string; readonly special: boolean }>;
}

type HfTokenizerClass = new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;

const HfTokenizerImpl = (tokenizers as unknown as { Tokenizer: HfTokenizerClass }).Tokenizer;

/**
 * The ByteFallback decoder turns each run of <0xNN> tokens into text with a default
 * TextDecoder, which drops a byte-order mark at the start of the run: "\uFEFFx" would decode
 * to "x" (the Rust `tokenizers` keeps it). Give such decoders one that keeps it.
 */
function keepByteOrderMarks(decoder: unknown): void {
  // Decoders are callable objects: functions with the decoder's prototype.
  if ((typeof decoder !== 'object' && typeof decoder !== 'function') || decoder === null) return;
  const d = decoder as { text_decoder?: unknown; decoders?: unknown };
  if (d.text_decoder instanceof TextDecoder && !d.text_decoder.ignoreBOM) {
    d.text_decoder = new TextDecoder(d.text_decoder.encoding, {
      fatal: d.text_decoder.fatal,
      ignoreBOM: true,
    });
  }
  if (Array.isArray(d.decoders)) for (const inner of d.decoders as unknown[]) keepByteOrderMarks(inner);
}

export function createHfTokenizer(tokenizerJson: object, tokenizerConfig: object): HfTokenizer {
  const tokenizer = new HfTokenizerImpl(tokenizerJson, tokenizerConfig);
  keepByteOrderMarks((tokenizer as { decoder?: unknown }).decoder);
  return tokenizer;
}
