import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../server/src/util/seeded-random.ts';
import { percentile, percentileSorted, poissonSchedule, summarize } from './stats.ts';

test('percentiles interpolate linearly between closest ranks, as numpy does', () => {
  const xs = [15, 20, 35, 40, 50];
  assert.equal(percentile(xs, 0), 15);
  assert.equal(percentile(xs, 50), 35);
  assert.equal(percentile(xs, 100), 50);
  // numpy.percentile([15, 20, 35, 40, 50], 90) == 46.0; 40 → 0.4 of the way from 35 to 40.
  assert.equal(percentile(xs, 90), 46);
  assert.equal(percentile(xs, 40), 29);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentileSorted([], 50)));
});

test('percentile sorts its input and leaves it unchanged', () => {
  const xs = [3, 1, 2];
  assert.equal(percentile(xs, 50), 2);
  assert.deepEqual(xs, [3, 1, 2]);
});

test('percentile rejects p outside 0..100', () => {
  assert.throws(() => percentile([1], 101), RangeError);
  assert.throws(() => percentile([1], -1), RangeError);
  assert.throws(() => percentile([1], NaN), RangeError);
});

test('p99 of 1..100 is 99.01', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.ok(Math.abs(percentile(xs, 99) - 99.01) < 1e-9);
  assert.equal(percentile(xs, 50), 50.5);
});

test('summarize gives count, mean, extremes and percentiles, null when empty', () => {
  const s = summarize([4, 1, 3, 2, NaN]);
  assert.equal(s.n, 4);
  assert.equal(s.mean, 2.5);
  assert.equal(s.min, 1);
  assert.equal(s.max, 4);
  assert.equal(s.p50, 2.5);
  const empty = summarize([]);
  assert.deepEqual(empty, { n: 0, mean: null, min: null, p50: null, p90: null, p99: null, max: null });
});

test('the seeded generator repeats for a seed, differs across seeds, stays in [0, 1)', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const c = seededRandom(43);
  const xa = Array.from({ length: 1000 }, a);
  assert.deepEqual(
    xa,
    Array.from({ length: 1000 }, () => b()),
  );
  assert.notDeepEqual(
    xa.slice(0, 10),
    Array.from({ length: 10 }, () => c()),
  );
  assert.ok(xa.every((x) => x >= 0 && x < 1));
  const mean = xa.reduce((s, x) => s + x, 0) / xa.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('a Poisson schedule is seeded, increasing, and has the asked mean gap', () => {
  const s1 = poissonSchedule(4, 20_000, 7);
  assert.deepEqual(poissonSchedule(4, 20_000, 7), s1);
  assert.notDeepEqual(poissonSchedule(4, 10, 8), s1.slice(0, 10));
  assert.equal(s1.length, 20_000);
  let prev = 0;
  const gaps: number[] = [];
  for (const t of s1) {
    assert.ok(t > prev);
    gaps.push(t - prev);
    prev = t;
  }
  const meanGap = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  assert.ok(Math.abs(meanGap - 250) < 250 * 0.03, `mean gap ${meanGap} ms, expected 250`);
  // Exponential gaps: the coefficient of variation is 1, and the median is ln 2 × mean.
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - meanGap) ** 2, 0) / gaps.length);
  assert.ok(Math.abs(sd / meanGap - 1) < 0.05, `cv ${sd / meanGap}`);
  assert.ok(Math.abs(percentile(gaps, 50) / meanGap - Math.LN2) < 0.05);
});

test('a Poisson schedule rejects a rate that is not positive', () => {
  assert.throws(() => poissonSchedule(0, 3, 1), RangeError);
  assert.throws(() => poissonSchedule(Infinity, 3, 1), RangeError);
  assert.deepEqual(poissonSchedule(1, 0, 1), []);
});
