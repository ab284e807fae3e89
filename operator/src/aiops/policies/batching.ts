/**
 * Batching parameters by additive increase, multiplicative decrease: grow while both p99
 * inter-token latency and p99 TTFT are comfortably inside their SLOs (below 0.9×) and there is
 * demand to batch; cut by 10 % on a breach. Between 0.9× and 1× nothing moves (the dead band).
 */
export interface LatencySignals {
  readonly ttftP99Ms: number;
  readonly itlP99Ms: number;
  /** Requests waiting, peak over the last minute: no queue, no reason to batch more. */
  readonly peakQueue: number;
  /** Sequences per step, p90 over the last minute: growing a cap nobody reaches does nothing. */
  readonly batchP90: number;
}

export interface Slo {
  readonly ttftP99Ms: number;
  readonly itlP99Ms: number;
}

export interface Range {
  readonly min: number;
  readonly max: number;
}

export interface Step {
  readonly value: number;
  readonly reason: string;
}

export function breached(s: LatencySignals, slo: Slo): boolean {
  return s.ttftP99Ms > slo.ttftP99Ms || s.itlP99Ms > slo.itlP99Ms;
}

function comfortable(s: LatencySignals, slo: Slo): boolean {
  return s.ttftP99Ms < 0.9 * slo.ttftP99Ms && s.itlP99Ms < 0.9 * slo.itlP99Ms;
}

/** The next value of a batching knob; `additive` is its increase step. */
export function aimd(
  current: number,
  s: LatencySignals,
  slo: Slo,
  r: Range,
  additive: number,
  integer = true,
): Step {
  const round = (n: number) => (integer ? Math.round(n) : Math.round(n * 100) / 100);
  const clamp = (n: number) => Math.min(r.max, Math.max(r.min, n));
  if (breached(s, slo)) {
    const cut = clamp(round(current * 0.9));
    return {
      value: integer && cut === current && current > r.min ? current - 1 : cut,
      reason: `SLO breach: TTFT p99 ${s.ttftP99Ms.toFixed(0)} ms, ITL p99 ${s.itlP99Ms.toFixed(0)} ms`,
    };
  }
  if (comfortable(s, slo) && s.peakQueue > 0)
    return {
      value: clamp(round(current + additive)),
      reason: 'latency below 0.9 × SLO with requests waiting',
    };
  return { value: current, reason: 'in the dead band' };
}

/** maxBatchSize grows only while batches actually fill it. */
export function nextBatchSize(current: number, s: LatencySignals, slo: Slo, r: Range): Step {
  if (!breached(s, slo) && s.batchP90 < 0.8 * current)
    return { value: current, reason: 'batches do not fill the cap' };
  return aimd(current, s, slo, r, Math.max(1, Math.round(current / 8)));
}
