/** Picks the KV cache layout a model supports and sizes it. */
import type { DecoderSession } from './decoder.ts';
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

export function openKvCache(session: DecoderSession, s: KvSizing): KvCache {
  if (session.sharedKv) {
    const slots = Math.max(1, Math.min(s.maxSeqs, Math.floor(s.capacityTokens / s.maxModelLen)));
    return new SlotKvCache(session, slots, s.maxModelLen);
  }
  return new PaddedKvCache(session, s.capacityTokens, s.maxSeqs);
}
