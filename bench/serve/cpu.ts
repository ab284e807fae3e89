/**
 * How much of the machine's CPU went to work other than the benchmark while a level ran:
 * the busy time of all CPUs (/proc/stat) less the time of the benchmark's own process tree
 * (/proc/<pid>/stat of this process and its descendants: the load generator and the server
 * under test). On a shared 2-core
 * machine a few percent of other work already slows llama.cpp's spinning threads, so each
 * level reports it. Linux only; null elsewhere.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Clock ticks: busy time of every CPU, and of the given processes. */
export interface CpuSample {
  readonly at: number;
  readonly busyTicks: number;
  readonly ownTicks: number;
}

// USER_HZ: /proc reports times in these; 100 on every mainstream Linux.
const TICKS_PER_SEC = 100;

/** user + nice + system + irq + softirq + steal of the "cpu" line: idle and iowait excluded. */
export function parseProcStat(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('no cpu line in /proc/stat');
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number): number => f[i] ?? 0;
  return at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
}

export interface PidStat {
  readonly ppid: number;
  /** utime + stime. */
  readonly ticks: number;
}

/** ppid (field 4) and utime + stime (fields 14, 15) of a /proc/<pid>/stat line; the name may hold spaces. */
export function parsePidStat(text: string): PidStat {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return { ppid: Number(rest[1] ?? 0), ticks: Number(rest[11] ?? 0) + Number(rest[12] ?? 0) };
}

/** The summed ticks of `root` and every process descending from it, given each pid's stat. */
export function treeTicks(stats: ReadonlyMap<number, PidStat>, root: number): number {
  const children = new Map<number, number[]>();
  for (const [pid, st] of stats) children.set(st.ppid, [...(children.get(st.ppid) ?? []), pid]);
  let total = 0;
  const stack = [root];
  for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
    total += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

function allPidStats(): Map<number, PidStat> {
  const stats = new Map<number, PidStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      stats.set(Number(name), parsePidStat(readFileSync(`/proc/${name}/stat`, 'utf8')));
    } catch {
      // exited meanwhile
    }
  }
  return stats;
}

export function sampleCpu(root = process.pid): CpuSample | null {
  try {
    const busyTicks = parseProcStat(readFileSync('/proc/stat', 'utf8'));
    return { at: performance.now(), busyTicks, ownTicks: treeTicks(allPidStats(), root) };
  } catch {
    return null;
  }
}

/** Percent of all CPUs' capacity that other processes used between two samples. */
export function otherCpuPercent(
  a: CpuSample | null,
  b: CpuSample | null,
  cpus = availableParallelism(),
): number | null {
  if (a === null || b === null || b.at <= a.at) return null;
  const capacity = ((b.at - a.at) / 1000) * TICKS_PER_SEC * cpus;
  const other = b.busyTicks - a.busyTicks - (b.ownTicks - a.ownTicks);
  return Math.max(0, (100 * other) / capacity);
}
