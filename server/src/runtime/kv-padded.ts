/**
 * KV cache for standard exports, where each step returns present = concat(past, new).
 * Decoding sequences form one padded batch: each row's tokens are the last `len` columns,
 * the attention mask hides the padding, and present becomes the next step's past as it is.
 * The batch is rebuilt only when its membership changes (a sequence joins after prefill,
 * or leaves), copying each row's valid columns; leading columns that only pad are dropped.
 * Models built with head gating get their per-row head lists from a HeadGate.
 */
import ort from 'onnxruntime-node';
import { floatData, type DecoderSession } from './decoder.ts';
import type { HeadGate } from './head-gate.ts';
import { int64, logitRows, type KvCache } from './kv.ts';

type Tensors = Map<string, ort.Tensor>;

interface Group {
  seqs: string[];
  lens: number[];
  /** [rows, kvHeads, width, headDim] per layer key/value. */
  tensors: Tensors;
  width: number;
}

export class PaddedKvCache implements KvCache {
  readonly capacityTokens: number;
  readonly #session: DecoderSession;
  readonly #maxSeqs: number;
  /** Sequences outside the batch (prefilling), each with its own [1, kv, len, hd] tensors. */
  readonly #solo = new Map<string, { len: number; tensors: Tensors | undefined }>();
  #group: Group = { seqs: [], lens: [], tensors: new Map(), width: 0 };

  readonly #gate: HeadGate | undefined;

  constructor(session: DecoderSession, capacityTokens: number, maxSeqs: number, gate?: HeadGate) {
    this.#session = session;
    this.capacityTokens = capacityTokens;
    this.#maxSeqs = maxSeqs;
    this.#gate = gate;
  }

  #count(): number {
    return this.#solo.size + this.#group.seqs.length;
  }

  freeSlots(): number {
    return this.usedTokens() < this.capacityTokens ? Math.max(0, this.#maxSeqs - this.#count()) : 0;
  }

  allocate(seqId: string): void {
    this.#solo.set(seqId, { len: 0, tensors: undefined });
  }

  free(seqId: string): void {
    this.#gate?.free(seqId);
    this.#solo.delete(seqId);
    // Leaving the group takes effect at the next rebuild; until then its row is dead weight.
    const i = this.#group.seqs.indexOf(seqId);
    if (i >= 0) this.#group.seqs[i] = '';
    if (this.#group.seqs.every((s) => s === ''))
      this.#group = { seqs: [], lens: [], tensors: new Map(), width: 0 };
  }

  length(seqId: string): number {
    const solo = this.#solo.get(seqId);
    if (solo !== undefined) return solo.len;
    const i = this.#group.seqs.indexOf(seqId);
    if (i < 0) throw new Error(`sequence ${seqId} has no KV`);
    return this.#group.lens[i] ?? 0;
  }

  usedTokens(): number {
    // Padded rows count in full: that is the memory they hold.
    let n = this.#group.seqs.filter((s) => s !== '').length * this.#group.width;
    for (const s of this.#solo.values()) n += s.len;
    return n;
  }

  canDecode(seqIds: readonly string[]): boolean {
    const width = Math.max(0, ...seqIds.map((id) => this.length(id))) + 1;
    let solo = 0;
    for (const [id, s] of this.#solo) if (!seqIds.includes(id)) solo += s.len;
    return seqIds.length * width + solo <= this.capacityTokens;
  }

  #empty(rows: number, width: number): ort.Tensor {
    const { kvHeads, headDim, dtype } = this.#session.layout;
    const n = rows * kvHeads * width * headDim;
    const dims = [rows, kvHeads, width, headDim];
    return dtype === 'float16'
      ? new ort.Tensor('float16', new Uint16Array(n), dims)
      : new ort.Tensor('float32', new Float32Array(n), dims);
  }

  #keys(): string[] {
    const keys: string[] = [];
    for (let i = 0; i < this.#session.layout.layers; i++) keys.push(`${i}.key`, `${i}.value`);
    return keys;
  }

  async #run(
    seqIds: readonly string[],
    ids: number[],
    mask: BigInt64Array,
    positions: number[],
    past: (key: string) => ort.Tensor,
  ) {
    const rows = seqIds.length;
    const seq = ids.length / rows;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', int64(ids), [rows, seq]),
      attention_mask: new ort.Tensor('int64', mask, [rows, mask.length / rows]),
    };
    if (this.#session.hasPositionInput)
      feeds['position_ids'] = new ort.Tensor('int64', int64(positions), [rows, seq]);
    for (const key of this.#keys()) feeds[`past_key_values.${key}`] = past(key);
    const gate = this.#gate;
    let out: Record<string, ort.Tensor>;
    if (gate === undefined) {
      out = await this.#session.run(feeds);
    } else {
      const plan = gate.plan(seqIds, seq);
      // Entropies are fetched only on the steps that measure them.
      const fetches: Record<string, null> = { logits: null };
      for (const key of this.#keys()) fetches[`present.${key}`] = null;
      for (const name of gate.fetches(plan)) fetches[name] = null;
      out = await this.#session.run({ ...feeds, ...plan.feeds }, fetches);
      gate.observe(seqIds, seq, plan, out);
    }
    const present: Tensors = new Map();
    for (const key of this.#keys()) {
      const t = out[`present.${key}`];
      if (t === undefined) throw new Error(`model produced no present.${key}`);
      present.set(key, t);
    }
    const logits = out['logits'];
    if (logits === undefined) throw new Error('model produced no logits');
    return { present, logits: floatData(logits), vocab: logits.dims[2] ?? 0, seq };
  }

  async prefill(seqId: string, tokens: readonly number[]): Promise<Float32Array> {
    return (await this.score(seqId, tokens)).at(-1) as Float32Array;
  }

  async score(seqId: string, tokens: readonly number[]): Promise<Float32Array[]> {
    const solo = this.#solo.get(seqId);
    if (solo === undefined) throw new Error(`sequence ${seqId} is not prefilling`);
    const total = solo.len + tokens.length;
    const r = await this.#run(
      [seqId],
      [...tokens],
      new BigInt64Array(total).fill(1n),
      tokens.map((_, i) => solo.len + i),
      (key) => solo.tensors?.get(key) ?? this.#empty(1, 0),
    );
    this.#solo.set(seqId, { len: total, tensors: r.present });
    return Array.from({ length: tokens.length }, (_, i) => r.logits.subarray(i * r.vocab, (i + 1) * r.vocab));
  }

  /** Copies the last `len` columns of row `from` of `src` into the last columns of row `to` of `dst`. */
  #copyRow(src: ort.Tensor, from: number, dst: ort.Tensor, to: number, len: number): void {
    const [, heads = 0, srcW = 0, hd = 0] = src.dims;
    const dstW = dst.dims[2] ?? 0;
    const s = src.data as Float32Array | Uint16Array;
    const d = dst.data as Float32Array | Uint16Array;
    for (let h = 0; h < heads; h++) {
      const so = ((from * heads + h) * srcW + (srcW - len)) * hd;
      const doff = ((to * heads + h) * dstW + (dstW - len)) * hd;
      d.set(s.subarray(so, so + len * hd), doff);
    }
  }

  #rebuild(seqIds: readonly string[]): void {
    const old = this.#group;
    const lens = seqIds.map((id) => this.length(id));
    const width = Math.max(...lens);
    const tensors: Tensors = new Map();
    for (const key of this.#keys()) {
      const t = this.#empty(seqIds.length, width);
      seqIds.forEach((id, row) => {
        const len = lens[row] ?? 0;
        const solo = this.#solo.get(id)?.tensors?.get(key);
        const at = old.seqs.indexOf(id);
        const src = solo ?? old.tensors.get(key);
        if (src !== undefined && len > 0) this.#copyRow(src, solo === undefined ? at : 0, t, row, len);
      });
      tensors.set(key, t);
    }
    for (const id of seqIds) this.#solo.delete(id);
    this.#group = { seqs: [...seqIds], lens, tensors, width };
  }

  async decode(rows: readonly { readonly seqId: string; readonly token: number }[]): Promise<Float32Array[]> {
    const ids = rows.map((r) => r.seqId);
    const same = ids.length === this.#group.seqs.length && ids.every((id, i) => this.#group.seqs[i] === id);
    if (!same) this.#rebuild(ids);
    const g = this.#group;
    const width = g.width + 1;
    const mask = new BigInt64Array(rows.length * width);
    g.lens.forEach((len, r) => mask.fill(1n, r * width + (width - len - 1), (r + 1) * width));
    const r = await this.#run(
      ids,
      rows.map((x) => x.token),
      mask,
      g.lens,
      (key) => g.tensors.get(key) ?? this.#empty(rows.length, 0),
    );
    this.#group = { seqs: g.seqs, lens: g.lens.map((l) => l + 1), tensors: r.present, width };
    return logitRows(r.logits, rows.length, r.seq, r.vocab);
  }

  attentionWork(): { computed: number; total: number } {
    return { computed: this.#gate?.computed ?? 0, total: this.#gate?.total ?? 0 };
  }

  dispose(): void {
    this.#solo.clear();
    this.#group = { seqs: [], lens: [], tensors: new Map(), width: 0 };
  }
}
