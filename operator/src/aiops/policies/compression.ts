/**
 * Response compression per node, by one rule: compress only when the time the saved bytes would
 * take on that node's path exceeds the time spent compressing.
 *
 * Each setting (arm) has properties of its own that hold on any path: the bytes it sends per
 * byte of response, and the CPU seconds it spends per byte. The path has one property shared by
 * every arm: its bandwidth, measured from how long responses take to drain. So the expected
 * seconds per response byte of an arm is  cpu/byte + (sent/byte) / bandwidth,  and arms are
 * compared under the node's current path, not under whatever the path was when each was last
 * tried (comparing raw delivered throughput across time chases noise and load shifts).
 *
 * An arm's ratio and CPU cost come from the responses served with it or, failing enough of those,
 * from the servers' probe: bodies sent with another setting, compressed again with this one and
 * thrown away. With every arm probed, the loop moves to the best arm for the path in one step.
 *
 * An arm known neither way is not a candidate, and is not served to find out: whenever the loop
 * tunes compression the servers probe every compressed arm within the bounds, which measures it
 * within seconds at a small share of a core, where serving it would spend the node's CPU (or its
 * path) on a setting that may not pay.
 */
export interface Arm {
  readonly algorithm: 'none' | 'gzip' | 'br';
  readonly level: number;
}

export interface ArmStats {
  readonly arm: Arm;
  /** Responses measured with this setting in the window. */
  readonly responses: number;
  /** Window totals for this setting. */
  readonly uncompressedBytes: number;
  readonly sentBytes: number;
  readonly compressSeconds: number;
  readonly drainSeconds: number;
}

/** The least relative saving in expected time per byte that justifies leaving the current setting. */
export const HYSTERESIS = 0.1;

/** Probe measurements of an arm that stand in for served responses. */
export const MIN_PROBES = 2;

export const armKey = (a: Arm) => (a.algorithm === 'none' ? 'none' : `${a.algorithm}:${String(a.level)}`);

/** The settings the bounds allow: each algorithm's levels clamped to its own range. */
export function armsWithin(
  algorithms: readonly Arm['algorithm'][],
  minLevel: number,
  maxLevel: number,
): Arm[] {
  const arms: Arm[] = [];
  const range = { gzip: [1, 9], br: [0, 11] } as const;
  for (const algorithm of algorithms) {
    if (algorithm === 'none') {
      arms.push({ algorithm, level: 0 });
      continue;
    }
    const [lo, hi] = range[algorithm];
    for (let level = Math.max(lo, minLevel); level <= Math.min(hi, maxLevel); level++)
      arms.push({ algorithm, level });
  }
  return arms;
}

/** The node's path bandwidth, bytes/s: everything sent over the time it took to drain. */
export function pathBytesPerS(stats: readonly ArmStats[]): number {
  const sent = stats.reduce((n, s) => n + s.sentBytes, 0);
  const drain = stats.reduce((n, s) => n + s.drainSeconds, 0);
  return drain > 0 ? sent / drain : Infinity;
}

/** Expected seconds per uncompressed response byte with this arm on a path of `bw` bytes/s. */
export function secondsPerByte(s: ArmStats, bw: number): number {
  if (s.arm.algorithm === 'none') return 1 / bw;
  if (s.uncompressedBytes <= 0) return Infinity;
  return (s.compressSeconds + s.sentBytes / bw) / s.uncompressedBytes;
}

const sPerMB = (x: number) => (x * 1e6).toFixed(3);

const NONE: ArmStats = {
  arm: { algorithm: 'none', level: 0 },
  responses: 0,
  uncompressedBytes: 1,
  sentBytes: 1,
  compressSeconds: 0,
  drainSeconds: 0,
};

/**
 * Each arm's best-known stats: served (at least `min` responses), else probed. None needs no
 * measuring of its own (it sends every byte at no CPU), only a path to be judged on.
 */
function measuredArms(
  served: readonly ArmStats[],
  probed: readonly ArmStats[],
  pathKnown: boolean,
): Map<string, ArmStats> {
  const measured = new Map(probed.filter((s) => s.responses >= MIN_PROBES).map((s) => [armKey(s.arm), s]));
  for (const s of served) measured.set(armKey(s.arm), s);
  if (pathKnown) measured.set('none', NONE);
  return measured;
}

/**
 * Where a setting the bounds leave out goes (none, where they require compression; a level
 * outside a narrowed range): at once, whatever it costs, to the best measured setting they
 * allow, or to the first they allow while none of them is measured.
 */
function intoBounds(
  arms: readonly Arm[],
  current: Arm,
  known: readonly ArmStats[],
  cost: (s: ArmStats) => number,
): { arm: Arm; reason: string } | undefined {
  const [first] = known;
  const [allowed] = arms;
  if (allowed === undefined || arms.some((a) => armKey(a) === armKey(current))) return undefined;
  const out = `${armKey(current)} is outside the bounds`;
  if (first === undefined)
    return { arm: allowed, reason: `${out}; ${armKey(allowed)} is the first they allow, none measured yet` };
  const inside = known.reduce((b, s) => (cost(s) < cost(b) ? s : b), first);
  return { arm: inside.arm, reason: `${out}; ${armKey(inside.arm)} is best within` };
}

export interface ChooseOptions {
  /** Served responses an arm needs before they count: a few noisy ones should not decide. */
  readonly minResponses?: number;
  /** The path's recent bandwidth: a path changes faster than arms need re-measuring. */
  readonly pathBytesPerS?: number;
  /** The arms measured without serving them. */
  readonly probes?: readonly ArmStats[];
}

/**
 * The arm to use next. A measured arm replaces the current one only when it is expected to be
 * faster by more than the hysteresis.
 */
export function chooseArm(
  arms: readonly Arm[],
  stats: readonly ArmStats[],
  current: Arm,
  opts: ChooseOptions = {},
): { arm: Arm; reason: string } {
  const served = stats.filter((s) => s.responses >= (opts.minResponses ?? 5));
  const pathKnown = opts.pathBytesPerS !== undefined || served.length > 0;
  const measured = measuredArms(served, opts.probes ?? [], pathKnown);
  // The recent path when the caller measured it, else the whole window's served responses.
  const bw = opts.pathBytesPerS ?? pathBytesPerS(served);
  const cost = (s: ArmStats) => secondsPerByte(s, bw);
  const candidates = arms.map((a) => measured.get(armKey(a)));
  const known = candidates.filter((s): s is ArmStats => s !== undefined);
  const back = intoBounds(arms, current, known, cost);
  if (back !== undefined) return back;
  const now = measured.get(armKey(current));
  // Measure where we are first.
  if (now === undefined) return { arm: current, reason: 'measuring the current setting' };
  const best = known.reduce((b, s) => (cost(s) < cost(b) ? s : b), now);
  const path = `path ${(bw / 1e6).toFixed(2)} MB/s`;
  if (armKey(best.arm) === armKey(current) || cost(best) > cost(now) * (1 - HYSTERESIS)) {
    return {
      arm: current,
      reason: `${armKey(current)} stays: ${sPerMB(cost(now))} s/MB on ${path}, nothing ${String(HYSTERESIS * 100)} % faster`,
    };
  }
  return {
    arm: best.arm,
    reason: `${armKey(best.arm)} takes ${sPerMB(cost(best))} s/MB vs ${sPerMB(cost(now))} s/MB now on ${path}`,
  };
}
