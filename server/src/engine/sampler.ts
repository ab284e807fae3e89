/**
 * Token selection from one row of logits. Pure functions over Float32Array so they are
 * testable without a model; randomness comes from a seeded generator so equal seeds give
 * equal outputs.
 */

export interface SamplingParams {
  /** 0 means greedy. */
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed?: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1 };

/** mulberry32: small, fast, and good enough for sampling. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

/** How many of the sorted weights make up the top-p mass (at least one). */
function nucleusSize(weights: readonly number[], total: number, topP: number): number {
  let kept = 0;
  let mass = 0;
  while (kept < weights.length && mass < topP) mass += (weights[kept++] ?? 0) / total;
  return kept;
}

export function sample(row: Float32Array, p: SamplingParams, random: () => number): number {
  if (p.temperature <= 0) return argmax(row);
  const ids = Array.from(row.keys()).sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0));
  const top = p.topK > 0 ? ids.slice(0, p.topK) : ids;
  const max = row[top[0] ?? 0] ?? 0;
  const weights = top.map((i) => Math.exp(((row[i] ?? 0) - max) / p.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  const kept = nucleusSize(weights, total, p.topP);
  const mass = weights.slice(0, kept).reduce((a, b) => a + b, 0) / total;
  let r = random() * mass * total;
  for (let i = 0; i < kept; i++) {
    r -= weights[i] ?? 0;
    if (r <= 0) return top[i] ?? 0;
  }
  return top[kept - 1] ?? 0;
}
