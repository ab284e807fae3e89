/**
 * Pieces shared by the byte-level and SentencePiece builders: the vocabulary object, the
 * added-token list and the post-processor that adds BOS/EOS.
 */
import { TOKEN_TYPE } from './metadata.ts';
import type { AddedTokenJson, JsonObject } from './types.ts';

/** The ids GGUF names for special roles; any of them may be absent. */
export interface SpecialIds {
  readonly bos?: number;
  readonly eos?: number;
  readonly unk?: number;
  readonly pad?: number;
  readonly eot?: number;
  readonly eom?: number;
}

/** The vocabulary GGUF carries, already checked for consistent lengths. */
export interface VocabInput {
  readonly tokens: readonly string[];
  /** `tokenizer.ggml.token_type`, one per token; undefined means all normal. */
  readonly types: readonly number[] | undefined;
  readonly special: SpecialIds;
  readonly addBos: boolean;
  readonly addEos: boolean;
}

/** token → id; a token listed twice keeps its first id, as llama.cpp's lookup does. */
export function vocabObject(tokens: readonly string[]): { readonly [token: string]: number } {
  const seen = new Set<string>();
  const entries: [string, number][] = [];
  tokens.forEach((token, id) => {
    if (seen.has(token)) return;
    seen.add(token);
    entries.push([token, id]);
  });
  // fromEntries defines own properties, so a token such as "__proto__" stays a plain key.
  return Object.fromEntries(entries);
}

export function specialIdSet(special: SpecialIds): ReadonlySet<number> {
  return new Set(Object.values(special).filter((id): id is number => id !== undefined));
}

/**
 * Control and unknown tokens, and the tokens GGUF names as BOS/EOS/UNK/PAD, become special
 * added tokens; user-defined tokens become non-special added tokens. GGUF stores both
 * pre-normalized (llama.cpp's converter does that), so neither is normalized again.
 */
export function addedTokens(input: VocabInput): AddedTokenJson[] {
  const specials = specialIdSet(input.special);
  const out: AddedTokenJson[] = [];
  input.tokens.forEach((content, id) => {
    const type = input.types?.[id] ?? TOKEN_TYPE.normal;
    const special = specials.has(id) || type === TOKEN_TYPE.control || type === TOKEN_TYPE.unknown;
    if (!special && type !== TOKEN_TYPE.userDefined) return;
    out.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  });
  return out;
}

function specialToken(token: string, typeId: number): JsonObject {
  return { SpecialToken: { id: token, type_id: typeId } };
}

/**
 * A TemplateProcessing post-processor that adds BOS and/or EOS around each sequence, in the
 * layout transformers' LlamaTokenizerFast writes; null when nothing is added.
 */
export function bosEosPostProcessor(input: VocabInput): JsonObject | null {
  const bosId = input.addBos ? input.special.bos : undefined;
  const eosId = input.addEos ? input.special.eos : undefined;
  const bos = bosId === undefined ? undefined : input.tokens[bosId];
  const eos = eosId === undefined ? undefined : input.tokens[eosId];
  if (bos === undefined && eos === undefined) return null;
  const seq = (id: 'A' | 'B', typeId: number): JsonObject[] => [
    ...(bos === undefined ? [] : [specialToken(bos, typeId)]),
    { Sequence: { id, type_id: typeId } },
    ...(eos === undefined ? [] : [specialToken(eos, typeId)]),
  ];
  const specialTokens: Record<string, JsonObject> = {};
  for (const [token, id] of [
    [bos, bosId],
    [eos, eosId],
  ] as const) {
    if (token !== undefined && id !== undefined)
      specialTokens[token] = { id: token, ids: [id], tokens: [token] };
  }
  return {
    type: 'TemplateProcessing',
    single: seq('A', 0),
    pair: [...seq('A', 0), ...seq('B', 1)],
    special_tokens: specialTokens,
  };
}
