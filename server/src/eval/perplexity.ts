/**
 * Perplexity of a text under a model and its sparsity settings, computed through the same
 * KV cache the engine serves from: the text goes in chunks, as prompts do, so KV eviction
 * and head gating act exactly as they would while serving.
 */
import type { KvCache } from '../runtime/kv.ts';

export interface TextScore {
  /** Tokens predicted (the text's length minus one). */
  readonly tokens: number;
  /** Mean negative log-likelihood per predicted token, in nats. */
  readonly nll: number;
  readonly perplexity: number;
  readonly seconds: number;
  /** Most tokens the cache held for the text at once. */
  readonly peakCachedTokens: number;
  /** Attention head work over the text (both 0 without head gating). */
  readonly attention: { readonly computed: number; readonly total: number };
}

/** −log softmax(logits)[target], in float64. */
export function tokenNll(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Math.log(sum) + max - (logits[target] ?? Number.NaN);
}

export async function scoreText(kv: KvCache, ids: readonly number[], chunk = 16): Promise<TextScore> {
  if (ids.length < 2) throw new Error('scoring needs at least two tokens');
  const seqId = `score-${Math.random().toString(36).slice(2)}`;
  const before = kv.attentionWork();
  const started = performance.now();
  let nll = 0;
  let peak = 0;
  kv.allocate(seqId);
  try {
    for (let at = 0; at < ids.length - 1; at += chunk) {
      const piece = ids.slice(at, Math.min(at + chunk, ids.length - 1));
      const rows = await kv.score(seqId, piece);
      rows.forEach((row, i) => {
        nll += tokenNll(row, ids[at + i + 1] ?? 0);
      });
      peak = Math.max(peak, kv.length(seqId));
    }
  } finally {
    kv.free(seqId);
  }
  const after = kv.attentionWork();
  const tokens = ids.length - 1;
  return {
    tokens,
    nll: nll / tokens,
    perplexity: Math.exp(nll / tokens),
    seconds: (performance.now() - started) / 1000,
    peakCachedTokens: peak,
    attention: { computed: after.computed - before.computed, total: after.total - before.total },
  };
}
