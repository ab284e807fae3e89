/**
 * KV slots shared between past and present (GroupQueryAttention). Each running sequence owns
 * one slot (a batch row); decoding sequences are kept in slots [0, D) so a decode step binds
 * one contiguous view of every layer's buffer, with no copy of the cache. Moving a sequence
 * between slots copies only its valid tokens.
 *
 * GroupQueryAttention's CPU kernel does work in proportion to the buffer's length, not the
 * sequences', so each slot is only as long as the longest live sequence needs (rounded up
 * to a power of two, at least MIN_LEN): it grows by reallocation when a sequence outgrows
 * it and shrinks when the long ones are gone, up to the model length `slotLen`.
 *
 * KV sparsity (StreamingLLM): with a window, a sequence keeps its first `sinks` tokens and
 * its most recent ones, at most `sinks + window` in all. Keys carry their rotary positions
 * from when they were written, so eviction only moves cached tokens left; a slot's next
 * position is counted apart from its cache length.
 */
import ort from 'onnxruntime-node';
import { floatData, type DecoderSession } from './decoder.ts';
import { int64, logitRows, NO_WINDOW, type KvCache, type KvWindow } from './kv.ts';

type Buffer = Float32Array | Uint16Array;

const MIN_LEN = 128;

function roundUp(n: number, max: number): number {
  let len = MIN_LEN;
  while (len < n) len *= 2;
  return Math.min(len, max);
}

export class SlotKvCache implements KvCache {
  readonly capacityTokens: number;
  readonly #session: DecoderSession;
  readonly #slotLen: number;
  /** The current length of every slot's buffer: between MIN_LEN and slotLen. */
  #len: number;
  #buffers = new Map<string, Buffer>();
  /** Which sequence holds each slot. */
  readonly #rows: (string | undefined)[];
  /** Tokens cached per slot. */
  readonly #lens: number[];
  /** The next token's position per slot: its length plus whatever was evicted. */
  readonly #pos: number[];
  readonly #window: () => KvWindow;

  constructor(
    session: DecoderSession,
    slots: number,
    slotLen: number,
    window: () => KvWindow = () => NO_WINDOW,
  ) {
    const { layers, dtype } = session.layout;
    this.#session = session;
    this.#slotLen = slotLen;
    this.#window = window;
    this.capacityTokens = slots * slotLen;
    this.#rows = new Array<string | undefined>(slots).fill(undefined);
    this.#lens = new Array<number>(slots).fill(0);
    this.#pos = new Array<number>(slots).fill(0);
    this.#len = roundUp(1, slotLen);
    for (let i = 0; i < layers; i++) {
      for (const kv of ['key', 'value']) this.#buffers.set(`${i}.${kv}`, this.#alloc(dtype, this.#len));
    }
  }

  get #rowElems(): number {
    const { kvHeads, headDim } = this.#session.layout;
    return kvHeads * this.#len * headDim;
  }

  #alloc(dtype: 'float32' | 'float16', len: number): Buffer {
    const { kvHeads, headDim } = this.#session.layout;
    const n = this.#rows.length * kvHeads * len * headDim;
    return dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  }

  /** Reallocates every slot at `len` tokens, keeping each sequence's valid tokens. */
  #resize(len: number): void {
    const { kvHeads, headDim, dtype } = this.#session.layout;
    const next = new Map<string, Buffer>();
    for (const [key, old] of this.#buffers) {
      const buf = this.#alloc(dtype, len);
      this.#rows.forEach((id, s) => {
        const valid = Math.min(this.#lens[s] ?? 0, len) * headDim;
        if (id === undefined || valid === 0) return;
        for (let h = 0; h < kvHeads; h++) {
          const from = (s * kvHeads + h) * this.#len * headDim;
          buf.set(old.subarray(from, from + valid), (s * kvHeads + h) * len * headDim);
        }
      });
      next.set(key, buf);
    }
    this.#buffers = next;
    this.#len = len;
  }

  /** Makes every slot hold `needed` tokens; lets it shrink when it is four times too long. */
  #fit(needed: number): void {
    const want = roundUp(needed, this.#slotLen);
    if (want > this.#len || want * 4 <= this.#len)
      this.#resize(Math.max(want, roundUp(needed * 2, this.#slotLen)));
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
    return this.#rows.reduce((n, id, s) => (id === undefined ? n : n + (this.#lens[s] ?? 0)), 0);
  }

  canDecode(seqIds: readonly string[]): boolean {
    return seqIds.every((id) => this.length(id) < this.#slotLen);
  }

  #tensor(buf: Buffer, rows: number, offsetRows: number): ort.Tensor {
    const { kvHeads, headDim, dtype } = this.#session.layout;
    const view = buf.subarray(offsetRows * this.#rowElems, (offsetRows + rows) * this.#rowElems);
    const dims = [rows, kvHeads, this.#len, headDim];
    return dtype === 'float16'
      ? new ort.Tensor('float16', view as Uint16Array, dims)
      : new ort.Tensor('float32', view as Float32Array, dims);
  }

  /** Binds rows [first, first + rows) of every layer as both past and present. */
  #bind(first: number, rows: number, feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor | null> {
    const fetches: Record<string, ort.Tensor | null> = { logits: null };
    for (const [key, buf] of this.#buffers) {
      const t = this.#tensor(buf, rows, first);
      feeds[`past_key_values.${key}`] = t;
      fetches[`present.${key}`] = t;
    }
    return fetches;
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
    const { kvHeads, headDim } = this.#session.layout;
    for (const buf of this.#buffers.values()) {
      for (let h = 0; h < kvHeads; h++) {
        const base = s * this.#rowElems + h * this.#len * headDim;
        buf.copyWithin(base + kept * headDim, base + (len - recent) * headDim, base + len * headDim);
      }
    }
    this.#lens[s] = kept + recent;
  }

  async #prefillRows(seqId: string, tokens: readonly number[]): Promise<Float32Array[]> {
    const s = this.#slot(seqId);
    this.#evict(s, tokens.length);
    const past = this.#lens[s] ?? 0;
    const at = this.#pos[s] ?? 0;
    const total = past + tokens.length;
    if (total > this.#slotLen)
      throw new Error(`sequence ${seqId} would exceed its ${this.#slotLen}-token slot`);
    this.#fit(this.#longest(tokens.length, s));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', int64(tokens), [1, tokens.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (this.#session.hasPositionInput) {
      feeds['position_ids'] = new ort.Tensor('int64', int64(tokens.map((_, i) => at + i)), [
        1,
        tokens.length,
      ]);
    }
    const out = await this.#session.run(feeds, this.#bind(s, 1, feeds));
    this.#lens[s] = total;
    this.#pos[s] = at + tokens.length;
    const logits = out['logits'];
    if (logits === undefined) throw new Error('model produced no logits');
    const vocab = logits.dims[2] ?? 0;
    const data = floatData(logits);
    return Array.from({ length: tokens.length }, (_, i) => data.subarray(i * vocab, (i + 1) * vocab));
  }

  async prefill(seqId: string, tokens: readonly number[]): Promise<Float32Array> {
    return (await this.#prefillRows(seqId, tokens)).at(-1) as Float32Array;
  }

  score(seqId: string, tokens: readonly number[]): Promise<Float32Array[]> {
    return this.#prefillRows(seqId, tokens);
  }

  /** Swaps two slots' contents (valid tokens only) and owners. */
  #swap(a: number, b: number): void {
    const { kvHeads, headDim } = this.#session.layout;
    const la = this.#lens[a] ?? 0;
    const lb = this.#lens[b] ?? 0;
    for (const buf of this.#buffers.values()) {
      for (let h = 0; h < kvHeads; h++) {
        const offA = a * this.#rowElems + h * this.#len * headDim;
        const offB = b * this.#rowElems + h * this.#len * headDim;
        const tmp = buf.slice(offA, offA + la * headDim);
        buf.copyWithin(offA, offB, offB + lb * headDim);
        buf.set(tmp, offB);
      }
    }
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
    const lens = this.#lens.slice(0, n);
    const width = Math.max(...lens) + 1;
    const mask = new BigInt64Array(n * width);
    lens.forEach((len, r) => mask.fill(1n, r * width, r * width + len + 1));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', int64(rows.map((r) => r.token)), [n, 1]),
      attention_mask: new ort.Tensor('int64', mask, [n, width]),
    };
    if (this.#session.hasPositionInput)
      feeds['position_ids'] = new ort.Tensor('int64', int64(this.#pos.slice(0, n)), [n, 1]);
    const out = await this.#session.run(feeds, this.#bind(0, n, feeds));
    for (let r = 0; r < n; r++) {
      this.#lens[r] = (this.#lens[r] ?? 0) + 1;
      this.#pos[r] = (this.#pos[r] ?? 0) + 1;
    }
    const logits = out['logits'];
    if (logits === undefined) throw new Error('model produced no logits');
    return logitRows(floatData(logits), n, 1, logits.dims[2] ?? 0);
  }

  attentionWork(): { computed: number; total: number } {
    return { computed: 0, total: 0 };
  }

  dispose(): void {
    this.#buffers.clear();
  }
}
