/**
 * SentencePiece BPE with byte fallback (`tokenizer.ggml.model == "llama"`: Llama 2,
 * TinyLlama, Mistral). GGUF keeps pieces and scores but no merges, so the merges are derived
 * from them the way transformers' SentencePiece converter does, and the file takes the layout
 * of LlamaTokenizerFast's tokenizer.json: "▁" for spaces in a normalizer, byte fallback in
 * the model, and a decoder that undoes both and strips the added leading space.
 */
import { AutoGLMError } from '../../errors.ts';
import { addedTokens, bosEosPostProcessor, vocabObject, type VocabInput } from './common.ts';
import { TOKEN_TYPE } from './metadata.ts';
import type { JsonObject, TokenizerJson } from './types.ts';

export const SPIECE_SPACE = '\u2581';

interface Candidate {
  readonly left: string;
  readonly right: string;
  readonly score: number;
  readonly leftLength: number;
  readonly rightLength: number;
}

/**
 * Every way to split a normal piece into two normal pieces is a merge ranked by the whole
 * piece's score (higher first), then by longer left and right halves; ties keep vocabulary
 * order. Control, byte and unused pieces take no part: SentencePiece never builds them from text.
 */
export function mergesFromScores(
  tokens: readonly string[],
  scores: readonly number[],
  types: readonly number[] | undefined,
): [string, string][] {
  const isNormal = (id: number): boolean => (types?.[id] ?? TOKEN_TYPE.normal) === TOKEN_TYPE.normal;
  const normalIds = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (isNormal(id) && !normalIds.has(token)) normalIds.set(token, id);
  });
  const candidates: Candidate[] = [];
  for (const [piece, id] of normalIds) {
    const chars = Array.from(piece);
    const local: (Candidate & { readonly order: readonly [number, number] })[] = [];
    for (let cut = 1; cut < chars.length; cut++) {
      const left = chars.slice(0, cut).join('');
      const right = chars.slice(cut).join('');
      const leftId = normalIds.get(left);
      const rightId = normalIds.get(right);
      if (leftId === undefined || rightId === undefined) continue;
      const score = scores[id] ?? 0;
      local.push({
        left,
        right,
        score,
        leftLength: cut,
        rightLength: chars.length - cut,
        order: [leftId, rightId],
      });
    }
    local.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1]);
    candidates.push(...local);
  }
  candidates.sort(
    (a, b) => b.score - a.score || b.leftLength - a.leftLength || b.rightLength - a.rightLength,
  );
  return candidates.map((c) => [c.left, c.right]);
}

const replace = (from: string, to: string): JsonObject => ({
  type: 'Replace',
  pattern: { String: from },
  content: to,
});

export function sentencePieceTokenizerJson(
  input: VocabInput,
  scores: readonly number[],
  addSpacePrefix: boolean,
): TokenizerJson {
  const unkId = input.special.unk;
  const unkToken = unkId === undefined ? null : (input.tokens[unkId] ?? null);
  if (unkToken === null) {
    throw new AutoGLMError('gguf_corrupt', 'SentencePiece GGUF has no tokenizer.ggml.unknown_token_id');
  }
  const spaceToPiece = replace(' ', SPIECE_SPACE);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(input),
    normalizer: {
      type: 'Sequence',
      normalizers: addSpacePrefix
        ? [{ type: 'Prepend', prepend: SPIECE_SPACE }, spaceToPiece]
        : [spaceToPiece],
    },
    pre_tokenizer: null,
    post_processor: bosEosPostProcessor(input),
    decoder: {
      type: 'Sequence',
      decoders: [
        replace(SPIECE_SPACE, ' '),
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkToken,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject(input.tokens),
      merges: mergesFromScores(input.tokens, scores, input.types),
    },
  };
}
