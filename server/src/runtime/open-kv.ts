/** Picks the KV cache layout a model supports and sizes it. */
import type { DecoderSession } from './decoder.ts';
import { HeadGate } from './head-gate.ts';
import type { KvCache } from './kv.ts';
import { PaddedKvCache } from './kv-padded.ts';
import { SlotKvCache } from './kv-slots.ts';

export interface KvSizing {
  /** Most sequences at once. */
  readonly maxSeqs: number;
  /** Total tokens of cache. */
  readonly capacityTokens: number;
  /** Longest sequence: the slot length of the shared layout. */
  readonly maxModelLen: number;
}

/** The sparsity knobs, as the live serving parameters carry them. */
export interface SparsityParams {
  readonly kvWindowTokens: number;
  readonly kvSinkTokens: number;
  readonly headEntropyThreshold: number;
  readonly headUpdateInterval: number;
}

const DENSE: SparsityParams = {
  kvWindowTokens: 0,
  kvSinkTokens: 0,
  headEntropyThreshold: 0,
  headUpdateInterval: 1,
};

/**
 * `sparsity` is read at every step, so a live change applies on the next one. The KV window
 * needs the shared-slot layout (the padded layout keeps every token); head gating needs a
 * model built with it.
 */
export function openKvCache(
  session: DecoderSession,
  s: KvSizing,
  sparsity: () => SparsityParams = () => DENSE,
): KvCache {
  if (session.sharedKv) {
    const slots = Math.max(1, Math.min(s.maxSeqs, Math.floor(s.capacityTokens / s.maxModelLen)));
    return new SlotKvCache(session, slots, s.maxModelLen, () => {
      const p = sparsity();
      return { sinks: p.kvSinkTokens, window: p.kvWindowTokens };
    });
  }
  const heads = session.gatedHeads;
  const gate =
    heads === undefined
      ? undefined
      : new HeadGate(session.layout.layers, heads, () => {
          const p = sparsity();
          return { threshold: p.headEntropyThreshold, interval: p.headUpdateInterval };
        });
  return new PaddedKvCache(session, s.capacityTokens, s.maxSeqs, gate);
}
