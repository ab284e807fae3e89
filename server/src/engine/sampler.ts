/**
 * Token selection from one row of logits: penalties, temperature, top-k, top-p, min-p, and
 * log-probabilities. Pure functions over Float32Array so they are testable without a model;
 * randomness comes from a per-request seeded generator, so equal seeds give equal outputs.
 */
import type { SamplingOptions, TokenLogprob } from './types.ts';

export const GREEDY: SamplingOptions = {
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
};

export function argmax(row: Float32Array): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i] ?? -Infinity;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/**
 * Applies penalties in place. Repetition penalty (as in transformers) covers prompt and
 * output; presence and frequency penalties (as in OpenAI) cover the output only.
 */
export function applyPenalties(
  row: Float32Array,
  o: SamplingOptions,
  promptIds: readonly number[],
  outputCounts: ReadonlyMap<number, number>,
): void {
  if (o.repetitionPenalty !== 1) {
    const seen = new Set<number>(promptIds);
    for (const id of outputCounts.keys()) seen.add(id);
    for (const id of seen) {
      const v = row[id] ?? 0;
      row[id] = v > 0 ? v / o.repetitionPenalty : v * o.repetitionPenalty;
    }
  }
  if (o.presencePenalty === 0 && o.frequencyPenalty === 0) return;
  for (const [id, count] of outputCounts) {
    row[id] = (row[id] ?? 0) - o.presencePenalty - o.frequencyPenalty * count;
  }
}

/** The candidates left after top-k, top-p and min-p, most likely first, with their weights. */
function candidates(row: Float32Array, o: SamplingOptions): { ids: number[]; weights: number[] } {
  let ids = Array.from(row.keys()).sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0));
  if (o.topK > 0) ids = ids.slice(0, o.topK);
  const max = row[ids[0] ?? 0] ?? 0;
  let weights = ids.map((i) => Math.exp(((row[i] ?? 0) - max) / o.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let kept = 0;
  let mass = 0;
  while (kept < weights.length && mass < o.topP) mass += (weights[kept++] ?? 0) / total;
  if (o.minP > 0) {
    // weights[0] is the most likely token's; keep those at least minP of it.
    const floor = o.minP * (weights[0] ?? 0);
    while (kept > 1 && (weights[kept - 1] ?? 0) < floor) kept--;
  }
  ids = ids.slice(0, Math.max(1, kept));
  weights = weights.slice(0, ids.length);
  return { ids, weights };
}

export function sample(row: Float32Array, o: SamplingOptions, random: () => number): number {
  if (o.temperature <= 0) return argmax(row);
  const { ids, weights } = candidates(row, o);
  let r = random() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < ids.length; i++) {
    r -= weights[i] ?? 0;
    if (r <= 0) return ids[i] ?? 0;
  }
  return ids[ids.length - 1] ?? 0;
}

/** log-softmax of the model's raw logits for the chosen token and the `top` most likely. */
export function logprobs(
  row: Float32Array,
  chosen: number,
  top: number,
): { chosen: TokenLogprob; top: TokenLogprob[] } {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  const lp = (id: number): TokenLogprob => ({ id, logprob: (row[id] ?? -Infinity) - logZ });
  if (top <= 0) return { chosen: lp(chosen), top: [] };
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length < top || (row[i] ?? 0) > (row[best[best.length - 1] ?? 0] ?? 0)) {
      best.push(i);
      best.sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0));
      if (best.length > top) best.pop();
    }
  }
  return { chosen: lp(chosen), top: best.map(lp) };
}
