/**
 * The benchmark's statistics: percentiles as numpy computes them by default (linear
 * interpolation between the closest ranks), and a seeded Poisson arrival schedule, so an
 * open-loop run offers the same load to every server.
 */

import { seededRandom } from '../../server/src/util/seeded-random.ts';

export interface Summary {
  readonly n: number;
  readonly mean: number | null;
  readonly min: number | null;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** The p-th percentile (0 ≤ p ≤ 100) of ascending `sorted`; NaN when it is empty. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo] ?? NaN;
  const b = sorted[hi] ?? NaN;
  return a + (b - a) * (rank - lo);
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(
    [...values].sort((x, y) => x - y),
    p,
  );
}

const orNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Count, mean, min, p50, p90, p99 and max; null where there are no values. */
export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  const n = sorted.length;
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    n,
    mean: n === 0 ? null : sum / n,
    min: orNull(sorted[0] ?? NaN),
    p50: orNull(percentileSorted(sorted, 50)),
    p90: orNull(percentileSorted(sorted, 90)),
    p99: orNull(percentileSorted(sorted, 99)),
    max: orNull(sorted[n - 1] ?? NaN),
  };
}

/**
 * Arrival times in milliseconds from the start of a run, for `count` requests arriving as
 * a Poisson process of `ratePerSec`: exponential gaps of mean 1000/rate ms. The first
 * request arrives after one gap, as in a process that was already running.
 */
export function poissonSchedule(ratePerSec: number, count: number, seed: number): number[] {
  if (!(ratePerSec > 0 && Number.isFinite(ratePerSec)))
    throw new RangeError(`rate must be a positive number, not ${ratePerSec}`);
  const random = seededRandom(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += (-Math.log(1 - random()) / ratePerSec) * 1000;
    out.push(t);
  }
  return out;
}
