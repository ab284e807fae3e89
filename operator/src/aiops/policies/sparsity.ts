/**
 * The sparsity knobs, behind the quality gate. A setting is admitted only if it lies within
 * the bounds and its measured perplexity increase (`spec.tuning.qualityPrices`, from
 * `npm run bench:sparsity` or the user's own text) is within `slo.maxPerplexityIncrease`; the
 * dense setting costs nothing and is admitted whenever the bounds hold it. A setting nobody
 * measured is never chosen. Within the admitted ladder the loop moves one rung at a time:
 * - kvWindowTokens (smaller is sparser; 0 keeps every token) answers KV-cache pressure: a
 *   rung sparser when the peak usage reaches the saturation threshold, a rung denser when it
 *   stays under half of it.
 * - headEntropyThreshold (larger is sparser; 0 gates nothing) answers compute pressure: a
 *   rung sparser when p99 inter-token latency reaches 0.9 × its SLO, a rung denser under half.
 * A current setting the gate no longer admits (bounds or prices changed) steps at once to the
 * sparsest admitted rung that is denser than it.
 */
export type SparsityKnob = 'kvWindowTokens' | 'headEntropyThreshold';

export interface QualityPrice {
  readonly knob: SparsityKnob | 'precision';
  /** The setting as text, as spec.tuning.qualityPrices holds it. */
  readonly value: string;
  /** Relative perplexity increase measured at this setting, against the dense one. */
  readonly perplexityIncrease: number;
}

export interface SparsitySignals {
  readonly peakKvUsage: number;
  readonly kvThreshold: number;
  readonly itlP99Ms: number;
  readonly itlSloMs: number;
}

const DENSE: Record<SparsityKnob, number> = { kvWindowTokens: 0, headEntropyThreshold: 0 };

/** How sparse a setting is: larger is sparser. A window of 0 keeps everything. */
function sparseness(knob: SparsityKnob, v: number): number {
  if (knob === 'headEntropyThreshold') return v;
  return v === 0 ? -Infinity : -v;
}

/** The settings the gate admits, densest first. */
export function admitted(
  knob: SparsityKnob,
  range: { min: number; max: number },
  prices: readonly QualityPrice[],
  maxIncrease: number,
): number[] {
  const inRange = (v: number) => v >= range.min && v <= range.max;
  const values = new Set<number>();
  if (inRange(DENSE[knob])) values.add(DENSE[knob]);
  for (const p of prices) {
    const v = Number(p.value);
    if (p.knob === knob && Number.isFinite(v) && inRange(v) && p.perplexityIncrease <= maxIncrease)
      values.add(v);
  }
  return [...values].sort((a, b) => sparseness(knob, a) - sparseness(knob, b));
}

type Pressure = 'up' | 'down' | 'hold';

/** Up at the limit, down under half of it: the dead band between keeps a knob from flapping. */
function pressureOf(load: number, limit: number): Pressure {
  if (load >= limit) return 'up';
  return load < limit / 2 ? 'down' : 'hold';
}

/** p99 inter-token latency against 0.9 × its SLO: the compute pressure. */
const latencyPressure = (s: SparsitySignals) => pressureOf(s.itlP99Ms, 0.9 * s.itlSloMs);

function pressure(knob: SparsityKnob, s: SparsitySignals): Pressure {
  return knob === 'kvWindowTokens' ? pressureOf(s.peakKvUsage, s.kvThreshold) : latencyPressure(s);
}

export function nextSparsity(
  knob: SparsityKnob,
  current: number,
  ladder: readonly number[],
  s: SparsitySignals,
): { value: number; reason: string } {
  if (ladder.length === 0)
    return { value: current, reason: 'no setting passes the bounds and the quality gate' };
  const at = ladder.indexOf(current);
  if (at < 0) {
    const denser = ladder.filter((v) => sparseness(knob, v) < sparseness(knob, current));
    return {
      value: denser.at(-1) ?? (ladder[0] as number),
      reason: 'the current setting is outside the bounds or past the quality gate',
    };
  }
  const what = knob === 'kvWindowTokens' ? 'KV-cache usage' : 'p99 inter-token latency';
  const p = pressure(knob, s);
  if (p === 'up' && at + 1 < ladder.length)
    return { value: ladder[at + 1] as number, reason: `${what} at its limit: one setting sparser` };
  if (p === 'down' && at > 0)
    return { value: ladder[at - 1] as number, reason: `${what} under half its limit: one setting denser` };
  return { value: current, reason: 'in the dead band' };
}

/** Weight precisions from the most exact to the cheapest. */
export const PRECISION_LADDER = ['fp32', 'fp16', 'int8', 'int4'] as const;
export type Precision = (typeof PRECISION_LADDER)[number];

/**
 * The precisions the gate admits, most exact first: the spec's own (whatever its price: it is
 * what the user chose), and those the bounds allow with a price within the gate.
 */
export function admittedPrecisions(
  base: Precision,
  allowed: readonly Precision[],
  prices: readonly QualityPrice[],
  maxIncrease: number,
): Precision[] {
  const priced = (p: Precision) =>
    prices.some((q) => q.knob === 'precision' && q.value === p && q.perplexityIncrease <= maxIncrease);
  return PRECISION_LADDER.filter((p) => p === base || (allowed.includes(p) && priced(p)));
}

/**
 * A rollout to a cheaper precision when p99 inter-token latency reaches 0.9 × its SLO, back to a
 * more exact one under half of it; one rung at a time. A current precision the gate no longer
 * admits goes back to the spec's.
 */
export function nextPrecision(
  current: Precision,
  base: Precision,
  ladder: readonly Precision[],
  s: SparsitySignals,
): { value: Precision; reason: string } {
  const at = ladder.indexOf(current);
  if (at < 0)
    return { value: base, reason: 'the current precision is outside the bounds or past the quality gate' };
  const p = latencyPressure(s);
  const cheaper = ladder[at + 1];
  const exacter = ladder[at - 1];
  if (p === 'up' && cheaper !== undefined)
    return { value: cheaper, reason: 'p99 inter-token latency at its limit: a cheaper precision' };
  if (p === 'down' && exacter !== undefined)
    return { value: exacter, reason: 'p99 inter-token latency under half its limit: a more exact precision' };
  return { value: current, reason: 'in the dead band' };
}
