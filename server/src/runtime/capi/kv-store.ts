/**
 * Slot storage for SlotKvCache through the C API binding: the cache stays in the memory
 * attention reads (host, or the device under CUDA), bound once as past and present, and only
 * logits come back. On the host, slots follow the live sequences' length as in the node
 * store; a new binding of the new length takes over and the old one is released. Device
 * caches keep the model length: CUDA's attention works in proportion to the sequences'
 * lengths, not the buffer's.
 */
import type { SlotLogits, SlotStore } from '../kv-slots.ts';
import { KvBinding } from './kv-binding.ts';
import type { CapiSession } from './session.ts';

export class CapiSlotStore implements SlotStore {
  readonly slots: number;
  readonly maxLen: number;
  readonly resizable: boolean;
  readonly #session: CapiSession;
  #binding: KvBinding;

  constructor(session: CapiSession, slots: number, maxLen: number, len: number) {
    this.#session = session;
    this.slots = slots;
    this.maxLen = maxLen;
    this.resizable = !session.kvOnDevice && !session.cudaGraph;
    this.#binding = new KvBinding(session, { slots, slotLen: this.resizable ? len : maxLen });
  }

  get len(): number {
    return this.#binding.slotLen;
  }

  resize(len: number, lens: readonly number[]): void {
    if (!this.resizable || len === this.len) return;
    const next = new KvBinding(this.#session, { slots: this.slots, slotLen: len });
    try {
      lens.forEach((n, slot) => {
        next.copyTokens({ slot, at: 0 }, { slot, at: 0 }, Math.min(n, len), this.#binding);
      });
    } catch (err) {
      next.dispose();
      throw err;
    }
    this.#binding.dispose();
    this.#binding = next;
  }

  copyTokens(slot: number, from: number, to: number, count: number): void {
    this.#binding.copyTokens({ slot, at: to }, { slot, at: from }, count);
  }

  swap(a: number, lenA: number, b: number, lenB: number): void {
    this.#binding.swapSlots(a, lenA, b, lenB);
  }

  async prefill(
    slot: number,
    tokens: readonly number[],
    past: number,
    position: number,
  ): Promise<SlotLogits> {
    const data = await this.#binding.prefill(slot, tokens, past, position);
    return { data, vocab: this.#binding.vocab };
  }

  async decode(
    tokens: readonly number[],
    lens: readonly number[],
    positions: readonly number[],
  ): Promise<SlotLogits> {
    const data = await this.#binding.step(tokens, lens, positions);
    return { data, vocab: this.#binding.vocab };
  }

  dispose(): void {
    this.#binding.dispose();
  }
}
