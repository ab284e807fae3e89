/**
 * Slot storage for SlotKvCache through onnxruntime-node: host typed arrays wrapped as tensors
 * and bound as both past and present at every run. Any provider onnxruntime-node opens works,
 * at the price of its output copies (it copies every output, the cache included, into a new
 * buffer after each run).
 */
import ort from 'onnxruntime-node';
import { floatData, type DecoderSession } from './decoder.ts';
import { int64 } from './kv.ts';
import type { SlotLogits, SlotStore } from './kv-slots.ts';

type Buffer = Float32Array | Uint16Array;

export class NodeSlotStore implements SlotStore {
  readonly slots: number;
  readonly maxLen: number;
  readonly resizable = true;
  readonly #session: DecoderSession;
  #len: number;
  #buffers = new Map<string, Buffer>();

  constructor(session: DecoderSession, slots: number, maxLen: number, len: number) {
    this.#session = session;
    this.slots = slots;
    this.maxLen = maxLen;
    this.#len = len;
    const { layers } = session.layout;
    for (let i = 0; i < layers; i++)
      for (const kv of ['key', 'value']) this.#buffers.set(`${i}.${kv}`, this.#alloc(len));
  }

  get len(): number {
    return this.#len;
  }

  get #rowElems(): number {
    const { kvHeads, headDim } = this.#session.layout;
    return kvHeads * this.#len * headDim;
  }

  #alloc(len: number): Buffer {
    const { kvHeads, headDim, dtype } = this.#session.layout;
    const n = this.slots * kvHeads * len * headDim;
    return dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  }

  resize(len: number, lens: readonly number[]): void {
    const { kvHeads, headDim } = this.#session.layout;
    const next = new Map<string, Buffer>();
    for (const [key, old] of this.#buffers) {
      const buf = this.#alloc(len);
      lens.forEach((n, s) => {
        const valid = Math.min(n, len) * headDim;
        for (let h = 0; h < kvHeads && valid > 0; h++) {
          const from = (s * kvHeads + h) * this.#len * headDim;
          buf.set(old.subarray(from, from + valid), (s * kvHeads + h) * len * headDim);
        }
      });
      next.set(key, buf);
    }
    this.#buffers = next;
    this.#len = len;
  }

  copyTokens(slot: number, from: number, to: number, count: number): void {
    const { kvHeads, headDim } = this.#session.layout;
    for (const buf of this.#buffers.values()) {
      for (let h = 0; h < kvHeads; h++) {
        const base = slot * this.#rowElems + h * this.#len * headDim;
        buf.copyWithin(base + to * headDim, base + from * headDim, base + (from + count) * headDim);
      }
    }
  }

  swap(a: number, lenA: number, b: number, lenB: number): void {
    const { kvHeads, headDim } = this.#session.layout;
    for (const buf of this.#buffers.values()) {
      for (let h = 0; h < kvHeads; h++) {
        const offA = a * this.#rowElems + h * this.#len * headDim;
        const offB = b * this.#rowElems + h * this.#len * headDim;
        const tmp = buf.slice(offA, offA + lenA * headDim);
        buf.copyWithin(offA, offB, offB + lenB * headDim);
        buf.set(tmp, offB);
      }
    }
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

  async #run(
    first: number,
    rows: number,
    inputs: { ids: number[]; positions: number[]; mask: BigInt64Array; width: number },
  ): Promise<SlotLogits> {
    const seq = inputs.ids.length / rows;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', int64(inputs.ids), [rows, seq]),
      attention_mask: new ort.Tensor('int64', inputs.mask, [rows, inputs.width]),
    };
    if (this.#session.hasPositionInput)
      feeds['position_ids'] = new ort.Tensor('int64', int64(inputs.positions), [rows, seq]);
    const out = await this.#session.run(feeds, this.#bind(first, rows, feeds));
    const logits = out['logits'];
    if (logits === undefined) throw new Error('model produced no logits');
    return { data: floatData(logits), vocab: logits.dims[2] ?? 0 };
  }

  prefill(slot: number, tokens: readonly number[], past: number, position: number): Promise<SlotLogits> {
    const total = past + tokens.length;
    return this.#run(slot, 1, {
      ids: [...tokens],
      positions: tokens.map((_, i) => position + i),
      mask: new BigInt64Array(total).fill(1n),
      width: total,
    });
  }

  decode(
    tokens: readonly number[],
    lens: readonly number[],
    positions: readonly number[],
  ): Promise<SlotLogits> {
    const n = tokens.length;
    const width = Math.max(...lens) + 1;
    const mask = new BigInt64Array(n * width);
    lens.forEach((len, r) => mask.fill(1n, r * width, r * width + len + 1));
    return this.#run(0, n, { ids: [...tokens], positions: [...positions], mask, width });
  }

  dispose(): void {
    this.#buffers.clear();
  }
}
