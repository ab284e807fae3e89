/**
 * KV slots shared between past and present (GroupQueryAttention). Each running sequence owns
 * one slot (a batch row); decoding sequences are kept in slots [0, D) so a decode step binds
 * one contiguous view of every layer's buffer, with no copy of the cache. Moving a sequence
 * between slots copies only its valid tokens.
 *
 * GroupQueryAttention's CPU kernel does work in proportion to the buffer's length, not the
 * sequences', so where the store can resize, each slot is only as long as the longest live
 * sequence needs (rounded up to a power of two, at least MIN_LEN): it grows by reallocation
 * when a sequence outgrows it and shrinks when the long ones are gone, up to the model length.
 *
 * KV sparsity (StreamingLLM): with a window, a sequence keeps its first `sinks` tokens and
 * its most recent ones, at most `sinks + window` in all. Keys carry their rotary positions
 * from when they were written, so eviction only moves cached tokens left; a slot's next
 * position is counted apart from its cache length.
 *
 * Where the memory lives and how a step runs is the store's business (kv-store-node.ts for
 * onnxruntime-node, capi/kv-store.ts for the C API binding); this class keeps the books.
 */
import { logitRows, NO_WINDOW, type KvCache, type KvWindow } from './kv.ts';

/** Logits of a run, [rows × positions, vocab], valid until the store's next run. */
export interface SlotLogits {
  readonly data: Float32Array;
  readonly vocab: number;
}

/** The cache's memory, per layer [slots, kvHeads, len, headDim], and the runs over it. */
export interface SlotStore {
  readonly slots: number;
  /** The longest a slot can be: the model length. */
  readonly maxLen: number;
  /** Whether slots change length with the live sequences; a fixed store stays `maxLen` long. */
  readonly resizable: boolean;
  /** Every slot's current length. */
  readonly len: number;
  /** Reallocates every slot at `len` tokens, keeping each slot's first `lens[slot]`. */
  resize(len: number, lens: readonly number[]): void;
  /** Moves `count` cached tokens of a slot from position `from` to `to` (`to` < `from`). */
  copyTokens(slot: number, from: number, to: number, count: number): void;
  /** Swaps the first `lenA` tokens of slot `a` with the first `lenB` of slot `b`. */
  swap(a: number, lenA: number, b: number, lenB: number): void;
  /** `tokens` into `slot`, which holds `past`; the first at `position`. Every position's logits. */
  prefill(slot: number, tokens: readonly number[], past: number, position: number): Promise<SlotLogits>;
  /** One token for each of rows [0, n) holding `lens`; one row of logits each. */
  decode(
    tokens: readonly number[],
    lens: readonly number[],
    positions: readonly number[],
  ): Promise<SlotLogits>;
  dispose(): void;
}

export const MIN_LEN = 128;

/** The slot length for `n` tokens: a power of two, at least MIN_LEN, at most `max`. */
export function roundUp(n: number, max: number): number {
  let len = MIN_LEN;
  while (len < n) len *= 2;
  return Math.min(len, max);
}

export class SlotKvCache implements KvCache {
  readonly capacityTokens: number;
  readonly #store: SlotStore;
  /** Which sequence holds each slot. */
  readonly #rows: (string | undefined)[];
  /** Tokens cached per slot. */
  readonly #lens: number[];
  /** The next token's position per slot: its length plus whatever was evicted. */
  readonly #pos: number[];
  readonly #window: () => KvWindow;

  constructor(store: SlotStore, window: () => KvWindow = () => NO_WINDOW) {
    this.#store = store;
    this.#window = window;
    this.capacityTokens = store.slots * store.maxLen;
    this.#rows = new Array<string | undefined>(store.slots).fill(undefined);
    this.#lens = new Array<number>(store.slots).fill(0);
    this.#pos = new Array<number>(store.slots).fill(0);
  }

  /** Valid tokens per slot, 0 for free ones. */
  #valid(): number[] {
    return this.#rows.map((id, s) => (id === undefined ? 0 : (this.#lens[s] ?? 0)));
  }

  /** Makes every slot hold `needed` tokens; lets it shrink when it is four times too long. */
  #fit(needed: number): void {
    const store = this.#store;
    if (!store.resizable) return;
    const want = roundUp(needed, store.maxLen);
    if (want > store.len || want * 4 <= store.len)
      store.resize(Math.max(want, roundUp(needed * 2, store.maxLen)), this.#valid());
  }

  #longest(extra: number, only?: number): number {
    let n = 0;
    this.#rows.forEach((id, s) => {
      if (id !== undefined)
        n = Math.max(n, (this.#lens[s] ?? 0) + (s === only || only === undefined ? extra : 0));
    });
    return n;
  }

  #slot(seqId: string): number {
    const s = this.#rows.indexOf(seqId);
    if (s < 0) throw new Error(`sequence ${seqId} holds no KV slot`);
    return s;
  }

  freeSlots(): number {
    return this.#rows.filter((r) => r === undefined).length;
  }

  allocate(seqId: string): void {
    const s = this.#rows.indexOf(undefined);
    if (s < 0) throw new Error('no free KV slot');
    this.#rows[s] = seqId;
    this.#lens[s] = 0;
    this.#pos[s] = 0;
  }

  free(seqId: string): void {
    const s = this.#rows.indexOf(seqId);
    if (s >= 0) this.#rows[s] = undefined;
  }

  length(seqId: string): number {
    return this.#lens[this.#slot(seqId)] ?? 0;
  }

  usedTokens(): number {
    return this.#valid().reduce((n, len) => n + len, 0);
  }

  canDecode(seqIds: readonly string[]): boolean {
    return seqIds.every((id) => this.length(id) < this.#store.maxLen);
  }

  /**
   * Makes room for `incoming` tokens within the window: keeps the sinks and moves the most
   * recent tokens left over the evicted ones. It evicts an eighth of the window more than it
   * must, so the copy happens every window/8 tokens rather than at every step.
   */
  #evict(s: number, incoming: number): void {
    const { sinks, window } = this.#window();
    const len = this.#lens[s] ?? 0;
    if (window <= 0 || len + incoming <= sinks + window) return;
    const kept = Math.min(len, sinks);
    const recent = Math.max(0, Math.min(len - kept, window - incoming - Math.max(1, window >> 3)));
    this.#store.copyTokens(s, len - recent, kept, recent);
    this.#lens[s] = kept + recent;
  }

  async #prefillRows(seqId: string, tokens: readonly number[]): Promise<Float32Array[]> {
    const s = this.#slot(seqId);
    this.#evict(s, tokens.length);
    const past = this.#lens[s] ?? 0;
    const at = this.#pos[s] ?? 0;
    const total = past + tokens.length;
    if (total > this.#store.maxLen)
      throw new Error(`sequence ${seqId} would exceed its ${this.#store.maxLen}-token slot`);
    this.#fit(this.#longest(tokens.length, s));
    const { data, vocab } = await this.#store.prefill(s, tokens, past, at);
    this.#lens[s] = total;
    this.#pos[s] = at + tokens.length;
    return logitRows(data, tokens.length, 1, vocab);
  }

  async prefill(seqId: string, tokens: readonly number[]): Promise<Float32Array> {
    return (await this.#prefillRows(seqId, tokens)).at(-1) as Float32Array;
  }

  score(seqId: string, tokens: readonly number[]): Promise<Float32Array[]> {
    return this.#prefillRows(seqId, tokens);
  }

  /** Swaps two slots' contents (valid tokens only) and owners. */
  #swap(a: number, b: number): void {
    const la = this.#lens[a] ?? 0;
    const lb = this.#lens[b] ?? 0;
    this.#store.swap(a, this.#rows[a] === undefined ? 0 : la, b, this.#rows[b] === undefined ? 0 : lb);
    [this.#rows[a], this.#rows[b]] = [this.#rows[b], this.#rows[a]];
    [this.#lens[a], this.#lens[b]] = [lb, la];
    [this.#pos[a], this.#pos[b]] = [this.#pos[b] ?? 0, this.#pos[a] ?? 0];
  }

  /** Puts `seqIds` in slots [0, n), in order, moving as little as possible. */
  #compact(seqIds: readonly string[]): void {
    seqIds.forEach((id, i) => {
      const at = this.#slot(id);
      if (at !== i) this.#swap(i, at);
    });
  }

  async decode(rows: readonly { readonly seqId: string; readonly token: number }[]): Promise<Float32Array[]> {
    const n = rows.length;
    this.#compact(rows.map((r) => r.seqId));
    for (let r = 0; r < n; r++) this.#evict(r, 1);
    this.#fit(this.#longest(1));
    const { data, vocab } = await this.#store.decode(
      rows.map((r) => r.token),
      this.#lens.slice(0, n),
      this.#pos.slice(0, n),
    );
    for (let r = 0; r < n; r++) {
      this.#lens[r] = (this.#lens[r] ?? 0) + 1;
      this.#pos[r] = (this.#pos[r] ?? 0) + 1;
    }
    return logitRows(data, n, 1, vocab);
  }

  attentionWork(): { computed: number; total: number } {
    return { computed: 0, total: 0 };
  }

  dispose(): void {
    this.#store.dispose();
  }
}
