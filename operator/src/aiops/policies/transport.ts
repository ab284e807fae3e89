/**
 * Tokens per server-sent event, per node. Each event costs a write and, on a slow path, a
 * round of draining; when draining one event takes longer than the gap between tokens, events
 * queue up behind each other and batching tokens into fewer events delivers them sooner. When
 * draining is quick, one token per event gives the lowest latency.
 */
export interface TransportSignals {
  /** Mean time to drain one streamed response's tail to the client, seconds. */
  readonly drainSecondsMean: number;
  /** Median inter-token latency, seconds. */
  readonly itlP50Seconds: number;
}

export function nextChunkTokens(current: number, s: TransportSignals, r: { min: number; max: number }) {
  const clamp = (n: number) => Math.min(r.max, Math.max(r.min, n));
  if (s.drainSecondsMean > s.itlP50Seconds * current)
    return {
      value: clamp(current * 2),
      reason: `draining (${(s.drainSecondsMean * 1000).toFixed(1)} ms) outlasts ${String(current)} token(s)`,
    };
  if (current > r.min && s.drainSecondsMean < (s.itlP50Seconds * current) / 4)
    return { value: clamp(Math.floor(current / 2)), reason: 'draining is quick: fewer tokens per event' };
  return { value: current, reason: 'in the dead band' };
}
