/**
 * The clients' paths as this process sees them: how long response bytes wait for a socket to
 * take them, measured so that the process's own work does not read as a slow path, and summed
 * over the node so that the loop sees the path's bandwidth, not one response's share of it.
 *
 * A write the socket cannot take at once waits in user space until the kernel has sent enough.
 * The event loop sees the socket free again only when it next polls, so a wait's wall time
 * includes whatever busy spell (a decode step, another response's JSON) was running then. On a
 * fast path the kernel empties the socket at once and the whole wait is that spell; on a slow
 * one the kernel keeps sending through every spell and only the last one delays what is seen.
 * So a wait counts its wall time less the longest single busy spell within it (bounded from
 * above by the gaps of a 10 ms timer, and by the loop's total busy time). Counting the loop's
 * idle time only would be the other error: a busy node would read a 2 Mbit/s path as tens of
 * MB/s, since its loop is idle for a few per cent of each wait.
 *
 * Not every wait is on the path. A write that the kernel takes whole still holds the stream
 * until its completion runs on the next loop iteration, and the chunks written meanwhile wait
 * for that: on any path, every 64 KiB or so. So a wait counts only if the kernel was seen
 * refusing bytes during it (libuv's write queue non-empty, sampled at its start and by the
 * timer). Waits that count add their bytes and the time at least one of them was waiting, so
 * that increase(bytes) / increase(seconds) is the path's rate while it was the limit. The others
 * add nothing: they say nothing about the path, and their bytes, with next to no time, would
 * keep a path that has just slowed reading fast.
 */
import { performance } from 'node:perf_hooks';

/** The gaps of this timer bound the loop's busy spells while any response waits. */
const TICK_MS = 10;
/** What is left of a wait below this is the two clocks' disagreement, not the path. */
const NOISE_MS = 1;

/** What a wait needs of a response: an HTTP response or any writable. */
export interface Waitable {
  readonly writableLength: number;
  readonly destroyed: boolean;
  readonly socket?: object | null;
  once(event: 'drain' | 'finish' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'finish' | 'close', listener: () => void): unknown;
}

/** Bytes that waited on the path, and the seconds (of the node's clock) they were waiting. */
export type PathObserver = (bytes: number, seconds: number) => void;

interface Wait {
  readonly start: number;
  readonly res: Waitable;
  /** The longest timer gap seen within the wait, ms: at least its longest busy spell so far. */
  longestGapMs: number;
  /** Whether the kernel was seen refusing bytes: the wait is on the path. */
  refused: boolean;
}

/**
 * Whether the kernel is refusing bytes of this response now: libuv's write queue for its socket
 * is not empty. Node keeps that on the socket's handle, which it does not document; where it is
 * not there, every wait is taken as on the path.
 */
function kernelRefusing(res: Waitable): boolean {
  const handle = (res.socket as { _handle?: { writeQueueSize?: unknown } } | null | undefined)?._handle;
  const queued = handle?.writeQueueSize;
  return typeof queued === 'number' ? queued > 0 : true;
}

export class PathMeter {
  readonly #observe: PathObserver;
  readonly #waits = new Set<Wait>();
  #timer: NodeJS.Timeout | undefined;
  #lastTick = 0;
  /**
   * The node's waiting time counted so far, as disjoint [from, to] stretches in ms, kept back to
   * the oldest wait still open: waits overlap, and the path they wait on is one.
   */
  #counted: (readonly [number, number])[] = [];

  constructor(observe: PathObserver) {
    this.#observe = observe;
  }

  /**
   * Waits until `res` has handed what it holds to the kernel (`drain`), or all of it (`finish`),
   * or is closed; resolves with the seconds of that wait spent on the client's path.
   */
  async wait(res: Waitable, until: 'drain' | 'finish'): Promise<number> {
    const bytes = res.writableLength;
    const w: Wait = { start: performance.now(), res, longestGapMs: 0, refused: kernelRefusing(res) };
    const loop = performance.eventLoopUtilization();
    this.#track(w);
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off(until, done);
        res.off('close', done);
        resolve();
      };
      res.once(until, done);
      res.once('close', done);
    });
    this.#untrack(w);
    const end = performance.now();
    // A client that went away took nothing, and nothing held back is no wait on the path.
    if (res.destroyed || bytes === 0 || !w.refused) return 0;
    const busyMs = performance.eventLoopUtilization(loop).active;
    const spellMs = Math.max(w.longestGapMs, end - Math.max(this.#lastTick, w.start));
    const pathMs = end - w.start - Math.min(busyMs, spellMs);
    if (!(pathMs > NOISE_MS)) return 0;
    this.#count(bytes, w.start, w.start + pathMs);
    return pathMs / 1000;
  }

  /** Adds [from, to] to the node's waiting time: the part of it not counted already. */
  #count(bytes: number, from: number, to: number): void {
    let ms = to - from;
    let merged = [from, to] as const;
    const kept = [];
    for (const c of this.#counted) {
      if (c[1] < from || c[0] > to) {
        kept.push(c);
        continue;
      }
      ms -= Math.min(c[1], to) - Math.max(c[0], from);
      merged = [Math.min(merged[0], c[0]), Math.max(merged[1], c[1])];
    }
    // Later waits start no earlier than the oldest one open now.
    const horizon = Math.min(performance.now(), ...[...this.#waits].map((w) => w.start));
    this.#counted = [...kept, merged].filter((c) => c[1] >= horizon);
    this.#observe(bytes, ms / 1000);
  }

  #track(w: Wait): void {
    this.#waits.add(w);
    if (this.#timer !== undefined) return;
    this.#lastTick = w.start;
    this.#timer = setInterval(this.#tick, TICK_MS).unref();
  }

  #untrack(w: Wait): void {
    this.#waits.delete(w);
    if (this.#waits.size > 0 || this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = (): void => {
    const now = performance.now();
    for (const w of this.#waits) {
      w.longestGapMs = Math.max(w.longestGapMs, now - Math.max(this.#lastTick, w.start));
      w.refused ||= kernelRefusing(w.res);
    }
    this.#lastTick = now;
  };
}
