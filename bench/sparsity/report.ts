/** The sparsity benchmark's analysis: Pareto front and safe ranges, pure functions of its rows. */
import type { SparsityParams } from '../../server/src/runtime/open-kv.ts';

export type Knob = 'precision' | 'kvWindowTokens' | 'headEntropyThreshold';

export interface Row {
  readonly knob: Knob;
  readonly setting: string;
  readonly variant: string;
  readonly params: SparsityParams;
  readonly perplexity: number;
  readonly decodeTokensPerSecond: number;
  readonly kvMiB: number;
  readonly weightsMiB: number;
  /** Share of attention head computations skipped; undefined without head gating. */
  readonly attentionSkipped: number | undefined;
}

export interface SafeRange {
  readonly knob: Knob;
  /** The knob's first row: its dense or full-precision setting. */
  readonly baseline: string;
  readonly baselinePerplexity: number;
  /** The largest perplexity allowed: baseline × (1 + maxIncrease). */
  readonly limit: number;
  /** Settings within the limit, in the benchmark's order. */
  readonly safe: readonly string[];
  /** The safe setting that saves the most: least memory, then most speed. */
  readonly recommended: string | undefined;
}

/** Whether `a` is at least as good as `b` on perplexity, speed and memory, and better on one. */
function dominates(a: Row, b: Row): boolean {
  const kv = (r: Row) => r.kvMiB + r.weightsMiB;
  const noWorse =
    a.perplexity <= b.perplexity && a.decodeTokensPerSecond >= b.decodeTokensPerSecond && kv(a) <= kv(b);
  const better =
    a.perplexity < b.perplexity || a.decodeTokensPerSecond > b.decodeTokensPerSecond || kv(a) < kv(b);
  return noWorse && better;
}

/** The settings no other setting beats on perplexity, decode speed and memory at once. */
export function paretoFront(rows: readonly Row[]): string[] {
  return rows
    .filter((r) => !rows.some((o) => o !== r && dominates(o, r)))
    .map((r) => `${r.knob}: ${r.setting}`);
}

export function safeRange(rows: readonly Row[], knob: Knob, maxIncrease: number): SafeRange {
  const mine = rows.filter((r) => r.knob === knob);
  const base = mine[0];
  if (base === undefined) throw new Error(`no rows for ${knob}`);
  const limit = base.perplexity * (1 + maxIncrease);
  const safe = mine.filter((r) => r.perplexity <= limit);
  const saving = [...safe].sort(
    (a, b) =>
      a.kvMiB + a.weightsMiB - (b.kvMiB + b.weightsMiB) ||
      1 - (a.attentionSkipped ?? 0) - (1 - (b.attentionSkipped ?? 0)) ||
      b.decodeTokensPerSecond - a.decodeTokensPerSecond,
  );
  return {
    knob,
    baseline: base.setting,
    baselinePerplexity: base.perplexity,
    limit,
    safe: safe.map((r) => r.setting),
    recommended: saving[0]?.setting,
  };
}

export interface QualityPrice {
  readonly knob: 'kvWindowTokens' | 'headEntropyThreshold' | 'precision';
  /** As spec.tuning.qualityPrices holds it: '512', '0.05', 'int8'. */
  readonly value: string;
  readonly perplexityIncrease: number;
}

const SPEC_PRECISIONS = new Set(['fp32', 'fp16', 'int8', 'int4']);

/**
 * The measured prices in the shape `spec.tuning.qualityPrices` takes: each live knob's
 * settings that differ from its baseline in that knob alone, with the relative perplexity
 * increase against the baseline.
 */
export function qualityPrices(rows: readonly Row[]): QualityPrice[] {
  const out: QualityPrice[] = [];
  const increase = (r: Row, base: Row) =>
    Math.round(((r.perplexity - base.perplexity) / base.perplexity) * 1e4) / 1e4;
  // Precision prices are against the first (most exact) rung; only variants spec.model.precision can name.
  const ladder = rows.filter((r) => r.knob === 'precision');
  const exact = ladder[0];
  for (const r of ladder.slice(1)) {
    if (exact !== undefined && SPEC_PRECISIONS.has(r.variant))
      out.push({ knob: 'precision', value: r.variant, perplexityIncrease: increase(r, exact) });
  }
  for (const knob of ['kvWindowTokens', 'headEntropyThreshold'] as const) {
    const mine = rows.filter((r) => r.knob === knob);
    const base = mine[0];
    if (base === undefined) continue;
    const others = (r: Row) =>
      (Object.keys(base.params) as (keyof Row['params'])[]).every(
        (k) => k === knob || r.params[k] === base.params[k],
      );
    for (const r of mine.slice(1)) {
      if (!others(r) || r.params[knob] === base.params[knob]) continue;
      out.push({ knob, value: String(r.params[knob]), perplexityIncrease: increase(r, base) });
    }
  }
  return out;
}
