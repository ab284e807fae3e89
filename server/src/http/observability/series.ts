/**
 * What the Prometheus registry (metrics.ts) and the OTLP mirror (otlp-metrics.ts) share:
 * histogram buckets sized for LLM serving, the `node` label's default, and the arithmetic
 * that turns the engine's hooks into per-request measurements. Keeping it here means both
 * exports always agree on what a number means.
 */
import { hostname } from 'node:os';
import type { GenerationResult } from '../../engine/types.ts';

/** Histogram buckets, in seconds unless the name says otherwise. */
export const BUCKETS = {
  /** Time to first token: 1 ms (cached prefix on a GPU) to 60 s (long prompt on a CPU). */
  ttft: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 60],
  /** Inter-token latency: 1 ms (small model on a GPU) to 10 s (stalled behind a long prefill). */
  itl: [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5,
    0.75, 1, 2.5, 5, 10,
  ],
  /** Whole-request durations (end to end, queue, prefill, decode): up to 300 s. */
  request: [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 180, 240,
    300,
  ],
  /** One engine step. */
  step: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  /** Tokens scheduled in one engine step (prefill plus decode). */
  iterationTokens: [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
  /** Sequences in one engine step. */
  batchSize: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  /** Time spent compressing one response: 10 µs to 1 s. */
  compression: [
    0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
  ],
  /** From the last byte written until the client has read it all: 100 µs to 30 s. */
  drain: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
} as const satisfies Record<string, readonly number[]>;

/** 1, 2, 5, 10, 20, 50, … up to and including the largest not above `max` (vLLM's token buckets). */
export function tokenBuckets(max: number): number[] {
  const out: number[] = [];
  for (let base = 1; base <= max; base *= 10) {
    for (const m of [1, 2, 5]) {
      if (base * m <= max) out.push(base * m);
    }
  }
  return out;
}

/** The `node` label: the Kubernetes node (NODE_NAME from the downward API), else the hostname. */
export function nodeName(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['NODE_NAME']?.trim();
  return fromEnv === undefined || fromEnv === '' ? hostname() : fromEnv;
}

/** Durations of one finished request's phases, derived from its GenerationResult. */
export interface RequestPhases {
  readonly queue: number;
  /** Arrival to finish minus queueing: the time the request held a batch slot. */
  readonly inference: number;
  /** Leaving the queue to the first token; undefined if no token was produced. */
  readonly prefill: number | undefined;
  /** First token to finish; undefined if no token was produced. */
  readonly decode: number | undefined;
  /** Mean seconds per output token after the first; undefined below two tokens. */
  readonly timePerOutputToken: number | undefined;
}

const nonNegative = (x: number): number => (x > 0 ? x : 0);

export function requestPhases(result: GenerationResult): RequestPhases {
  const ttft = result.timeToFirstToken;
  const decode = ttft === undefined ? undefined : nonNegative(result.totalSeconds - ttft);
  return {
    queue: nonNegative(result.queueSeconds),
    inference: nonNegative(result.totalSeconds - result.queueSeconds),
    prefill: ttft === undefined ? undefined : nonNegative(ttft - result.queueSeconds),
    decode,
    timePerOutputToken:
      decode === undefined || result.completionTokens < 2
        ? undefined
        : decode / (result.completionTokens - 1),
  };
}

/**
 * Generated tokens are counted as they stream (onFirstToken + onToken) so that
 * rate(generation_tokens_total) is live during long generations. At onFinish the
 * result's completionTokens is authoritative: whatever the hooks did not report (an engine
 * that emits several tokens per step) is added then. One entry per request in flight;
 * the engine's onFinish removes it.
 */
export class GenerationTally {
  readonly #counted = new Map<string, number>();

  /** Counts one token; returns true when it is the request's first. */
  token(requestId: string): boolean {
    const seen = this.#counted.get(requestId) ?? 0;
    this.#counted.set(requestId, seen + 1);
    return seen === 0;
  }

  /** Forgets the request; returns the tokens not yet counted and whether any were. */
  settle(requestId: string, completionTokens: number): { uncounted: number; sawFirst: boolean } {
    const seen = this.#counted.get(requestId) ?? 0;
    this.#counted.delete(requestId);
    return { uncounted: Math.max(0, completionTokens - seen), sawFirst: seen > 0 };
  }

  get inFlight(): number {
    return this.#counted.size;
  }
}
