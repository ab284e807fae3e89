/**
 * The load generator: a closed loop (N clients, each sending its next request when the last
 * one ends) and an open loop (requests arrive on a seeded Poisson schedule, whether or not
 * earlier ones have finished). Every run is bounded twice: a request count and a time limit;
 * at the limit, requests still in flight are cut and counted as failed.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { streamRequest, type Endpoint, type RequestOutcome } from './client.ts';
import { poissonSchedule, summarize, type Summary } from './stats.ts';

export interface LevelResult {
  readonly mode: 'closed' | 'open';
  /** Closed loop: the number of clients. */
  readonly concurrency?: number;
  /** Open loop: the offered arrival rate, requests per second. */
  readonly ratePerSec?: number;
  readonly requests: number;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** Successful requests that produced a number of tokens other than max_tokens. */
  readonly offLength: number;
  readonly timedOut: boolean;
  readonly wallSec: number;
  /** Every token streamed, by requests that finished and by requests cut at the time limit. */
  readonly outputTokens: number;
  readonly outputTokensPerSec: number;
  readonly requestsPerSec: number;
  readonly ttftMs: Summary;
  readonly tpotMs: Summary;
  readonly itlMs: Summary;
  readonly e2eMs: Summary;
  /** The distinct prompt lengths the server reported in usage. */
  readonly promptTokens: readonly number[];
  /** The first few distinct errors. */
  readonly errors: readonly string[];
  /** Share of all CPUs that processes other than the benchmark's used meanwhile (cpu.ts). */
  readonly otherCpuPct?: number | null;
}

export interface RunOptions {
  readonly requests: number;
  readonly maxTokens: number;
  readonly timeLimitMs: number;
  /** The prompt of request i. */
  readonly prompt: (i: number) => string;
}

export function summarizeLevel(
  outcomes: readonly RequestOutcome[],
  opts: { mode: 'closed' | 'open'; requests: number; maxTokens: number; timedOut: boolean },
  extra: { concurrency?: number; ratePerSec?: number },
): LevelResult {
  const ok = outcomes.filter((o) => o.ok);
  const ends = outcomes.map((o) => o.startMs + o.e2eMs);
  const wallSec = ends.length === 0 ? 0 : Math.max(...ends) / 1000;
  // Tokens that requests cut at the time limit streamed count too: throughput is the rate
  // at which the server produced tokens while the level ran, finished or not.
  const tokens = outcomes.reduce((s, o) => s + o.outputTokens, 0);
  const perSec = (x: number): number => (wallSec > 0 ? x / wallSec : 0);
  const values = (pick: (o: RequestOutcome) => number | null): number[] =>
    ok.map(pick).filter((v): v is number => v !== null);
  return {
    mode: opts.mode,
    ...extra,
    requests: opts.requests,
    sent: outcomes.length,
    ok: ok.length,
    failed: outcomes.length - ok.length,
    offLength: ok.filter((o) => o.outputTokens !== opts.maxTokens).length,
    timedOut: opts.timedOut,
    wallSec,
    outputTokens: tokens,
    outputTokensPerSec: perSec(tokens),
    requestsPerSec: perSec(ok.length),
    ttftMs: summarize(values((o) => o.ttftMs)),
    tpotMs: summarize(values((o) => o.tpotMs)),
    itlMs: summarize(ok.flatMap((o) => o.itlMs)),
    e2eMs: summarize(values((o) => o.e2eMs)),
    promptTokens: [...new Set(values((o) => o.promptTokens))].sort((a, b) => a - b),
    errors: [...new Set(outcomes.flatMap((o) => (o.error === undefined ? [] : [o.error])))].slice(0, 5),
  };
}

function deadline(ms: number): { signal: AbortSignal; cancel: () => void; fired: () => boolean } {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort();
  }, ms);
  return {
    signal: controller.signal,
    cancel: () => {
      clearTimeout(timer);
    },
    fired: () => controller.signal.aborted,
  };
}

/** `concurrency` clients, each sending its next request as soon as its last one ends. */
export async function runClosedLoop(
  ep: Endpoint,
  concurrency: number,
  opts: RunOptions,
): Promise<LevelResult> {
  const limit = deadline(opts.timeLimitMs);
  const outcomes: RequestOutcome[] = [];
  const start = performance.now();
  let next = 0;
  const client = async (): Promise<void> => {
    while (!limit.signal.aborted && next < opts.requests) {
      const i = next++;
      outcomes.push(await streamRequest(ep, opts.prompt(i), opts.maxTokens, start, limit.signal));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, opts.requests) }, client));
  } finally {
    limit.cancel();
  }
  return summarizeLevel(
    outcomes,
    { mode: 'closed', requests: opts.requests, maxTokens: opts.maxTokens, timedOut: limit.fired() },
    { concurrency },
  );
}

/** Requests sent at seeded Poisson arrival times of `ratePerSec`, not waiting for replies. */
export async function runOpenLoop(
  ep: Endpoint,
  ratePerSec: number,
  seed: number,
  opts: RunOptions,
): Promise<LevelResult> {
  const schedule = poissonSchedule(ratePerSec, opts.requests, seed);
  const limit = deadline(opts.timeLimitMs);
  const inFlight: Promise<RequestOutcome>[] = [];
  const start = performance.now();
  try {
    for (const [i, at] of schedule.entries()) {
      const wait = at - (performance.now() - start);
      if (wait > 0) await sleep(wait, undefined, { signal: limit.signal }).catch(() => undefined);
      if (limit.signal.aborted) break;
      inFlight.push(streamRequest(ep, opts.prompt(i), opts.maxTokens, start, limit.signal));
    }
    const outcomes = await Promise.all(inFlight);
    return summarizeLevel(
      outcomes,
      { mode: 'open', requests: opts.requests, maxTokens: opts.maxTokens, timedOut: limit.fired() },
      { ratePerSec },
    );
  } finally {
    limit.cancel();
  }
}
