/**
 * Response compression per node, chosen on measured delivered throughput: uncompressed bytes
 * per second of (compressing + draining to the client). Compression pays only when the time the
 * saved bytes would take on that node's path exceeds the time spent compressing; measuring the
 * throughput of each setting captures exactly that. Settings never tried yet are explored (UCB1),
 * so a node whose path slows down discovers that a higher level now pays.
 */
export interface Arm {
  readonly algorithm: 'none' | 'gzip' | 'br';
  readonly level: number;
}

export interface ArmStats {
  readonly arm: Arm;
  /** Responses measured with this setting in the window. */
  readonly responses: number;
  /** Uncompressed bytes per second of compress + drain time. */
  readonly deliveredBytesPerS: number;
}

/** The least relative gain in delivered throughput that justifies leaving the current setting. */
export const HYSTERESIS = 0.05;

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

/** The measured arm with the best UCB1 score: normalized throughput plus an exploration bonus. */
function ucb(arms: readonly Arm[], measured: ReadonlyMap<string, ArmStats>, c: number): ArmStats | undefined {
  const all = [...measured.values()];
  const best = Math.max(...all.map((s) => s.deliveredBytesPerS));
  const total = all.reduce((n, s) => n + s.responses, 0);
  let choice: ArmStats | undefined;
  let score = -Infinity;
  for (const a of arms) {
    const s = measured.get(armKey(a));
    if (s === undefined) continue;
    const v = s.deliveredBytesPerS / best + c * Math.sqrt((2 * Math.log(total)) / s.responses);
    if (v > score) {
      score = v;
      choice = s;
    }
  }
  return choice;
}

const mbps = (s: ArmStats) => (s.deliveredBytesPerS / 1e6).toFixed(2);

/**
 * UCB1 over normalized throughput. `minResponses` keeps one noisy response from deciding;
 * `explore` scales the exploration bonus (0 = exploit only). A measured setting replaces the
 * current one only for a gain above the hysteresis: otherwise the exploration bonus alone would
 * swap near-equal levels back and forth.
 */
export function chooseArm(
  arms: readonly Arm[],
  stats: readonly ArmStats[],
  current: Arm,
  opts: { minResponses?: number; explore?: number } = {},
): { arm: Arm; reason: string } {
  const min = opts.minResponses ?? 5;
  const measured = new Map(stats.filter((s) => s.responses >= min).map((s) => [armKey(s.arm), s]));
  const untried = arms.find((a) => !measured.has(armKey(a)));
  const now = measured.get(armKey(current));
  // Measure where we are first; then try what has never been measured.
  if (now === undefined) return { arm: current, reason: 'measuring the current setting' };
  if (untried !== undefined) return { arm: untried, reason: `exploring ${armKey(untried)}: never measured` };
  const pick = ucb(arms, measured, opts.explore ?? 0.5) ?? now;
  if (
    armKey(pick.arm) === armKey(current) ||
    pick.deliveredBytesPerS < now.deliveredBytesPerS * (1 + HYSTERESIS)
  )
    return {
      arm: current,
      reason: `${armKey(current)} stays at ${mbps(now)} MB/s: nothing measured is ${String(HYSTERESIS * 100)} % better`,
    };
  return {
    arm: pick.arm,
    reason: `${armKey(pick.arm)} delivers ${mbps(pick)} MB/s vs ${mbps(now)} MB/s now`,
  };
}
