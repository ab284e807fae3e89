/**
 * Saturation-based replica count, after llm-d's variant autoscaler: a replica is saturated when
 * its waiting queue or its KV cache crosses a threshold, judged on the peak over the last
 * minute. Scale up at once, at most doubling; scale down one replica at a time, only when the
 * peak load over the stabilization window, spread over one replica fewer, would stay below
 * the thresholds. Replicas still starting count as capacity, so a slow start does not trigger
 * a second scale-up for the same load.
 *
 * "Spread over one replica fewer" is checked twice: the replicas' summed peaks shared evenly,
 * and the busiest replica's peak grown by n/(n-1), as its share would be. Load balancers do not
 * spread evenly: with the sum alone, a replica already near the threshold could be handed more
 * than it takes, and the loop would scale down, see it saturate, and scale back up.
 */
export interface ReplicaSignals {
  /** Replicas the Deployment runs now (ready or not). */
  readonly current: number;
  readonly ready: number;
  /** Per-replica peaks over the last minute: the most loaded replica's. */
  readonly peakQueue: number;
  readonly peakKvUsage: number;
  /** Sums over all replicas of the peaks over the stabilization window. */
  readonly windowQueueSum: number;
  readonly windowKvSum: number;
  /** The busiest replica's peaks over the stabilization window. */
  readonly windowQueueMax: number;
  readonly windowKvMax: number;
}

export interface ReplicaBounds {
  readonly min: number;
  readonly max: number;
  readonly queueThreshold: number;
  readonly kvThreshold: number;
}

export interface ReplicaDecision {
  readonly replicas: number;
  readonly reason: string;
}

export function decideReplicas(s: ReplicaSignals, b: ReplicaBounds): ReplicaDecision {
  const clamp = (n: number) => Math.min(b.max, Math.max(b.min, n));
  if (s.current < b.min || s.current > b.max)
    return { replicas: clamp(s.current), reason: `outside bounds ${String(b.min)}..${String(b.max)}` };
  const pressure = Math.max(s.peakQueue / b.queueThreshold, s.peakKvUsage / b.kvThreshold);
  if (pressure >= 1) {
    if (s.ready < s.current)
      return { replicas: s.current, reason: 'saturated, but replicas are still starting' };
    const wanted = Math.max(s.current + 1, Math.ceil(s.current * pressure));
    const next = clamp(Math.min(wanted, s.current * 2));
    return {
      replicas: next,
      reason:
        next > s.current
          ? `saturated: queue peak ${s.peakQueue.toFixed(1)}, KV peak ${s.peakKvUsage.toFixed(2)}`
          : 'saturated at the maximum',
    };
  }
  if (s.current > b.min) {
    const fewer = s.current - 1;
    const grow = s.current / fewer;
    // The same load over one replica fewer, with a 10 % margin so a boundary load does not flap.
    // The busiest replica takes no more than the whole load (from 2 to 1, exactly that).
    const share = (sum: number, max: number) => Math.max(sum / fewer, Math.min(max * grow, sum));
    const q = share(s.windowQueueSum, s.windowQueueMax);
    const kv = share(s.windowKvSum, s.windowKvMax);
    if (q < 0.9 * b.queueThreshold && kv < 0.9 * b.kvThreshold)
      return { replicas: fewer, reason: `unsaturated over the window on ${String(fewer)} replicas` };
  }
  return { replicas: s.current, reason: 'within thresholds' };
}
