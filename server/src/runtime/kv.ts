/**
 * The KV cache behind the engine's batches. Two layouts, one interface:
 *   SlotKvCache    models with GroupQueryAttention (our fast profile, many onnx-community
 *                  exports): one buffer per layer of [slots, kvHeads, slotLen, headDim],
 *                  bound as both past and present, so a step writes only the new tokens.
 *   PaddedKvCache  standard exports, where present = concat(past, new): a padded batch with
 *                  an attention mask, rebuilt (compacted) only when membership changes.
 * The engine sees sequences by id; tensors never leave runtime/.
 */

export interface KvCache {
  /** Total tokens the cache can hold. */
  readonly capacityTokens: number;
  /** How many more sequences can get room now. */
  freeSlots(): number;
  allocate(seqId: string): void;
  free(seqId: string): void;
  /** Tokens held for a sequence (its position for the next token). */
  length(seqId: string): number;
  /** Tokens in use; with padding, the padded size. */
  usedTokens(): number;
  /** Whether a decode step over `seqIds` fits; false means the engine must preempt first. */
  canDecode(seqIds: readonly string[]): boolean;
  /**
   * Runs prompt tokens for one sequence; returns the last position's logits. Logits returned
   * by `prefill`, `score` and `decode` may be views of buffers the next call reuses: read or
   * copy them before calling again.
   */
  prefill(seqId: string, tokens: readonly number[]): Promise<Float32Array>;
  /** Runs tokens for one sequence like `prefill`, returning every position's logits (for scoring text). */
  score(seqId: string, tokens: readonly number[]): Promise<Float32Array[]>;
  /** One token for each sequence, batched; returns each row's logits. */
  decode(rows: readonly { readonly seqId: string; readonly token: number }[]): Promise<Float32Array[]>;
  /**
   * Attention work in head-layer units per query token: what ran, and what an ungated model
   * runs. Both stay 0 for models without head gating.
   */
  attentionWork(): { readonly computed: number; readonly total: number };
  dispose(): void;
}

/** KV-cache sparsity: the first `sinks` tokens and at most `window` recent ones; window 0 keeps all. */
export interface KvWindow {
  readonly sinks: number;
  readonly window: number;
}

export const NO_WINDOW: KvWindow = { sinks: 0, window: 0 };

export function int64(values: readonly number[]): BigInt64Array {
  return BigInt64Array.from(values, (v) => BigInt(v));
}

/** Rows of a [rows, vocab] logits block, as views (no copy). */
export function logitRows(data: Float32Array, rows: number, seqLen: number, vocab: number): Float32Array[] {
  return Array.from({ length: rows }, (_, r) =>
    data.subarray((r * seqLen + seqLen - 1) * vocab, (r * seqLen + seqLen) * vocab),
  );
}
