/**
 * A GroupQueryAttention KV cache held in OrtValues and run through I/O binding: per layer, one
 * key and one value buffer of [slots, kvHeads, slotLen, headDim], bound as both
 * past_key_values.N.* and present.N.*, so a step writes only its new tokens, in place, and
 * nothing of the cache crosses between host and device. The buffers live where attention
 * reads them: device memory from the session's allocator when attention runs on CUDA, host
 * memory this object owns otherwise (the CPU, and float32 attention under CUDA). Only the
 * logits come back, into a host Float32Array allocated once.
 *
 * A decode step runs rows [0, n): the caller keeps its decoding sequences in the first slots
 * (as SlotKvCache does) and says how many tokens each already holds. Under CUDA graphs every
 * input and output stays bound at one address with one shape, so a step runs all slots over
 * the whole slot length, and inputs and logits go through device buffers copied by hand.
 */
import { cudart, type Cudart } from './cuda.ts';
import { addressOf, check, create, NativeScope, ortApi, runWithBinding, type Ptr } from './library.ts';
import type { CapiSession, DeviceMemory } from './session.ts';
import { allocTensor, bind, dataOf, ELEMENT_BYTES, tensorAt } from './tensor.ts';

export interface KvBindingOptions {
  readonly slots: number;
  /** Tokens each slot holds: the longest sequence, prompt included. */
  readonly slotLen: number;
}

interface Layer {
  /** `${layer}.key` or `${layer}.value` */
  readonly name: string;
  readonly data: Ptr;
  /** The same memory, where it is the host's. */
  readonly host: Uint8Array | undefined;
}

/** Where tokens sit: a slot and the first position. */
export interface TokenSpan {
  readonly slot: number;
  readonly at: number;
}

/** Inputs and logits in device buffers at fixed addresses, for CUDA graphs. */
interface GraphIo {
  readonly cuda: Cudart;
  readonly ids: Ptr;
  readonly mask: Ptr;
  readonly positions: Ptr | undefined;
  readonly logits: Ptr;
}

/**
 * Host memory whose address native code keeps: an ArrayBuffer's store never moves, where a
 * small typed array's own may (V8 keeps those on its heap).
 */
function int64s(length: number): BigInt64Array {
  return new BigInt64Array(new ArrayBuffer(length * 8));
}

function floats(length: number): Float32Array {
  return new Float32Array(new ArrayBuffer(length * 4));
}

interface View {
  readonly name: string;
  readonly value: Ptr;
}

export class KvBinding {
  readonly slots: number;
  readonly slotLen: number;
  readonly vocab: number;
  readonly #session: CapiSession;
  readonly #scope = new NativeScope();
  readonly #layers: Layer[] = [];
  readonly #kvMemoryInfo: Ptr;
  readonly #rowBytes: number;
  /** Views of rows [first, first + rows) of every layer, keyed `${first}+${rows}`. */
  readonly #views = new Map<string, View[]>();
  readonly #decode: Ptr;
  readonly #prefill: Ptr;
  readonly #decodeRun: Ptr;
  readonly #prefillRun: Ptr;
  /** Which rows each binding has bound as past and present. */
  readonly #bound = new Map<Ptr, string>();
  readonly #ids: BigInt64Array;
  readonly #positions: BigInt64Array;
  readonly #mask: BigInt64Array;
  readonly #logits: Float32Array;
  #prefillLogits = floats(0);
  readonly #graph: GraphIo | undefined;
  /** One layer's slot row, for copies whose ends may overlap. */
  #scratch: { readonly host: Uint8Array | undefined; readonly data: Ptr } | undefined;
  #busy = false;
  #disposed = false;

  constructor(session: CapiSession, options: KvBindingOptions) {
    const { slots, slotLen } = options;
    if (!Number.isInteger(slots) || slots < 1 || !Number.isInteger(slotLen) || slotLen < 1) {
      throw new Error(`slots (${slots}) and slotLen (${slotLen}) must be positive integers`);
    }
    this.slots = slots;
    this.slotLen = slotLen;
    this.vocab = session.vocab;
    this.#session = session;
    const { kvHeads, headDim, dtype } = session.layout;
    this.#rowBytes = kvHeads * slotLen * headDim * ELEMENT_BYTES[dtype];
    const scope = this.#scope;
    session.usedBy(scope);
    try {
      // ONNX Runtime copies a bound input to the device its reader wants when it is bound, so
      // a cache anywhere else would be read stale from the second step on.
      const device = session.kvOnDevice ? session.deviceMemory : undefined;
      this.#kvMemoryInfo = device?.memoryInfo ?? session.hostMemory;
      this.#allocateKv(device);
      this.#ids = int64s(slots);
      this.#positions = int64s(slots);
      this.#mask = int64s(slots * slotLen);
      this.#logits = floats(slots * session.vocab);
      if (session.device === 'cuda') scope.defer(cudart().pin(this.#logits));
      const api = ortApi();
      this.#decode = scope.add(
        create('CreateIoBinding', (out) => api.CreateIoBinding(session.handle, out)),
        api.ReleaseIoBinding,
      );
      this.#prefill = scope.add(
        create('CreateIoBinding', (out) => api.CreateIoBinding(session.handle, out)),
        api.ReleaseIoBinding,
      );
      this.#decodeRun = scope.add(
        create('CreateRunOptions', (out) => api.CreateRunOptions(out)),
        api.ReleaseRunOptions,
      );
      this.#prefillRun = scope.add(
        create('CreateRunOptions', (out) => api.CreateRunOptions(out)),
        api.ReleaseRunOptions,
      );
      this.#graph = session.cudaGraph ? this.#bindGraph() : undefined;
    } catch (err) {
      scope.close();
      throw err;
    }
    scope.guard(this);
  }

  #allocateKv(device: DeviceMemory | undefined): void {
    const { layers, kvHeads, headDim, dtype } = this.#session.layout;
    const bytes = this.slots * this.#rowBytes;
    for (let i = 0; i < layers; i++) {
      for (const kv of ['key', 'value']) {
        let data: Ptr;
        if (device !== undefined) {
          const dims = [this.slots, kvHeads, this.slotLen, headDim];
          const value = this.#scope.add(allocTensor(device.allocator, dims, dtype), ortApi().ReleaseValue);
          data = dataOf(value);
          // Unwritten positions are never attended to; zeros keep them finite all the same.
          cudart().zero(data, bytes);
          this.#layers.push({ name: `${i}.${kv}`, data, host: undefined });
        } else {
          const host = new Uint8Array(new ArrayBuffer(bytes));
          this.#scope.keep(host);
          data = addressOf(host);
          this.#layers.push({ name: `${i}.${kv}`, data, host });
        }
      }
    }
    if (device !== undefined) cudart().synchronize();
  }

  /** Device inputs and logits, bound once with the whole cache: the shapes a graph captures. */
  #bindGraph(): GraphIo {
    const device = this.#session.deviceMemory;
    if (device === undefined) throw new Error('CUDA graphs need a CUDA session');
    const api = ortApi();
    // Each binding's decode step is a graph of its own; prefill runs have other shapes and
    // stay out of every graph.
    const graphId = String(this.#session.nextGraphId());
    check(api.AddRunConfigEntry(this.#decodeRun, 'gpu_graph_id', graphId), 'AddRunConfigEntry');
    check(api.AddRunConfigEntry(this.#prefillRun, 'gpu_graph_id', '-1'), 'AddRunConfigEntry');
    const tensor = (name: string, dims: number[], type: 'int64' | 'float32', io: 'input' | 'output'): Ptr => {
      const value = this.#scope.add(allocTensor(device.allocator, dims, type), api.ReleaseValue);
      bind(this.#decode, io, name, value);
      return dataOf(value);
    };
    const { slots, slotLen } = this;
    const graph: GraphIo = {
      cuda: cudart(),
      ids: tensor('input_ids', [slots, 1], 'int64', 'input'),
      mask: tensor('attention_mask', [slots, slotLen], 'int64', 'input'),
      positions: this.#session.hasPositionIds
        ? tensor('position_ids', [slots, 1], 'int64', 'input')
        : undefined,
      logits: tensor('logits', [slots, 1, this.vocab], 'float32', 'output'),
    };
    this.#bindKv(this.#decode, 0, slots);
    return graph;
  }

  /** Rows [first, first + rows) of every layer as OrtValues, made once and kept. */
  #rows(first: number, rows: number): View[] {
    const key = `${first}+${rows}`;
    let views = this.#views.get(key);
    if (views === undefined) {
      const { kvHeads, headDim, dtype } = this.#session.layout;
      const dims = [rows, kvHeads, this.slotLen, headDim];
      const offset = BigInt(first * this.#rowBytes);
      views = this.#layers.map((l) => ({
        name: l.name,
        value: this.#scope.add(
          tensorAt(this.#kvMemoryInfo, l.data + offset, dims, dtype),
          ortApi().ReleaseValue,
        ),
      }));
      this.#views.set(key, views);
    }
    return views;
  }

  #bindKv(binding: Ptr, first: number, rows: number): void {
    const key = `${first}+${rows}`;
    if (this.#bound.get(binding) === key) return;
    for (const v of this.#rows(first, rows)) {
      bind(binding, 'input', `past_key_values.${v.name}`, v.value);
      bind(binding, 'output', `present.${v.name}`, v.value);
    }
    this.#bound.set(binding, key);
  }

  /**
   * Binds host int64 inputs and the host logits of this step; ONNX Runtime copies inputs to
   * the device when it binds them, and logits back when the run ends. Returns the values to
   * release after the run.
   */
  #bindHost(
    binding: Ptr,
    inputs: { ids: BigInt64Array; mask: BigInt64Array; positions: BigInt64Array },
    shapes: { rows: number; seq: number; width: number },
    logits: Float32Array,
  ): Ptr[] {
    const { rows, seq, width } = shapes;
    const host = this.#session.hostMemory;
    const made: Ptr[] = [];
    const at = (
      name: string,
      view: ArrayBufferView,
      dims: number[],
      type: 'int64' | 'float32',
      io: 'input' | 'output',
    ) => {
      const value = tensorAt(host, addressOf(view), dims, type);
      made.push(value);
      bind(binding, io, name, value);
    };
    try {
      at('input_ids', inputs.ids, [rows, seq], 'int64', 'input');
      at('attention_mask', inputs.mask, [rows, width], 'int64', 'input');
      if (this.#session.hasPositionIds) at('position_ids', inputs.positions, [rows, seq], 'int64', 'input');
      at('logits', logits, [rows, seq, this.vocab], 'float32', 'output');
      return made;
    } catch (err) {
      release(made);
      throw err;
    }
  }

  #enter(): void {
    if (this.#disposed) throw new Error('KV binding is disposed');
    if (this.#busy) throw new Error('a step is already running on this KV binding');
    this.#busy = true;
  }

  /**
   * One decode step: rows [0, tokens.length) each take one token, after `lengths[r]` tokens
   * already in their slot. Returns [rows, vocab] logits as a view that the next step
   * overwrites. Under CUDA graphs every slot runs: pass a token and length for each, idle
   * slots included (their step writes one position past their end, which is never read).
   * `positions` are the tokens' rotary positions where they differ from `lengths` (after KV
   * eviction).
   */
  async step(
    tokens: readonly number[],
    lengths: readonly number[],
    positions: readonly number[] = lengths,
  ): Promise<Float32Array> {
    const rows = tokens.length;
    this.#checkStep(tokens, lengths);
    if (positions.length !== rows) throw new Error('a step takes one position per row');
    this.#enter();
    let made: Ptr[] = [];
    try {
      const width = this.#graph === undefined ? Math.max(...lengths) + 1 : this.slotLen;
      this.#fillDecode(tokens, lengths, positions, width);
      if (this.#graph === undefined) {
        this.#bindKv(this.#decode, 0, rows);
        made = this.#bindHost(
          this.#decode,
          { ids: this.#ids, mask: this.#mask, positions: this.#positions },
          { rows, seq: 1, width },
          this.#logits,
        );
        await runWithBinding(this.#session.handle, this.#decodeRun, this.#decode);
      } else {
        await this.#graphStep(this.#graph);
      }
      return this.#logits.subarray(0, rows * this.vocab);
    } finally {
      release(made);
      this.#busy = false;
    }
  }

  #checkStep(tokens: readonly number[], lengths: readonly number[]): void {
    const rows = tokens.length;
    if (rows < 1 || rows > this.slots || lengths.length !== rows) {
      throw new Error(`a step takes 1 to ${this.slots} rows with one length each`);
    }
    if (this.#graph !== undefined && rows !== this.slots) {
      throw new Error(`under CUDA graphs every step runs all ${this.slots} slots`);
    }
    for (const len of lengths) {
      if (!Number.isInteger(len) || len < 0 || len >= this.slotLen) {
        throw new Error(`a row holding ${len} tokens has no room in a ${this.slotLen}-token slot`);
      }
    }
  }

  /** Token ids, positions, and a right-padded mask [rows, width] of len + 1 ones a row. */
  #fillDecode(
    tokens: readonly number[],
    lengths: readonly number[],
    positions: readonly number[],
    width: number,
  ): void {
    const mask = this.#mask;
    tokens.forEach((t, r) => {
      const len = lengths[r] ?? 0;
      this.#ids[r] = BigInt(t);
      this.#positions[r] = BigInt(positions[r] ?? len);
      mask.fill(1n, r * width, r * width + len + 1);
      mask.fill(0n, r * width + len + 1, (r + 1) * width);
    });
  }

  async #graphStep(g: GraphIo): Promise<void> {
    const rows = this.slots;
    g.cuda.toDevice(g.ids, this.#ids.subarray(0, rows));
    g.cuda.toDevice(g.mask, this.#mask.subarray(0, rows * this.slotLen));
    if (g.positions !== undefined) g.cuda.toDevice(g.positions, this.#positions.subarray(0, rows));
    g.cuda.synchronize();
    await runWithBinding(this.#session.handle, this.#decodeRun, this.#decode);
    check(ortApi().SynchronizeBoundOutputs(this.#decode), 'SynchronizeBoundOutputs');
    g.cuda.toHost(this.#logits, g.logits, rows * this.vocab * 4);
  }

  /**
   * Runs `tokens` for the sequence in `slot`, which already holds `past` tokens, the first at
   * rotary position `position`. Returns every position's logits, [tokens, vocab], as a view
   * that the next prefill overwrites.
   */
  async prefill(
    slot: number,
    tokens: readonly number[],
    past: number,
    position: number = past,
  ): Promise<Float32Array> {
    const seq = tokens.length;
    const total = past + seq;
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new Error(`no slot ${slot}`);
    if (seq < 1 || past < 0 || total > this.slotLen) {
      throw new Error(`${past} + ${seq} tokens do not fit a ${this.slotLen}-token slot`);
    }
    this.#enter();
    let made: Ptr[] = [];
    try {
      // Prompts vary in length: these inputs are made per call, and only the logits are kept.
      const ids = int64s(seq);
      const positions = int64s(seq);
      const mask = int64s(total).fill(1n);
      tokens.forEach((t, i) => {
        ids[i] = BigInt(t);
        positions[i] = BigInt(position + i);
      });
      if (this.#prefillLogits.length < seq * this.vocab) this.#prefillLogits = floats(seq * this.vocab);
      this.#bindKv(this.#prefill, slot, 1);
      made = this.#bindHost(
        this.#prefill,
        { ids, mask, positions },
        { rows: 1, seq, width: total },
        this.#prefillLogits,
      );
      await runWithBinding(this.#session.handle, this.#prefillRun, this.#prefill);
      return this.#prefillLogits.subarray(0, seq * this.vocab);
    } finally {
      release(made);
      this.#busy = false;
    }
  }

  /**
   * Copies `tokens` cached positions of every layer and head from `src` in `from` (this
   * binding, or another of the same session, as when resizing) to `dst` here. The spans may
   * overlap. Call between steps.
   */
  copyTokens(dst: TokenSpan, src: TokenSpan, tokens: number, from: KvBinding = this): void {
    this.#idle();
    if (tokens <= 0) return;
    this.#checkSpan(dst, tokens);
    from.#checkSpan(src, tokens);
    const width = tokens * this.#tokenBytes;
    const scratch = from === this && dst.slot === src.slot ? this.#scratchRegion(width) : undefined;
    this.#layers.forEach((layer, i) => {
      const source = from.#layers[i];
      if (source === undefined) throw new Error('bindings of different models');
      const to = this.#region(layer, dst);
      const at = from.#region(source, src);
      if (scratch === undefined) {
        copyRows(to, at, width, this.#kvHeads);
        return;
      }
      copyRows(scratch, at, width, this.#kvHeads);
      copyRows(to, scratch, width, this.#kvHeads);
    });
    this.#settle();
  }

  /** Swaps the cached tokens of two slots: the first `tokensA` of `a` with the first `tokensB` of `b`. */
  swapSlots(a: number, tokensA: number, b: number, tokensB: number): void {
    this.#idle();
    if (a === b) return;
    this.#checkSpan({ slot: a, at: 0 }, Math.max(tokensA, tokensB));
    this.#checkSpan({ slot: b, at: 0 }, Math.max(tokensA, tokensB));
    const widthA = tokensA * this.#tokenBytes;
    const widthB = tokensB * this.#tokenBytes;
    const scratch = this.#scratchRegion(widthA);
    for (const layer of this.#layers) {
      const ra = this.#region(layer, { slot: a, at: 0 });
      const rb = this.#region(layer, { slot: b, at: 0 });
      copyRows(scratch, ra, widthA, this.#kvHeads);
      copyRows(ra, rb, widthB, this.#kvHeads);
      copyRows(rb, scratch, widthA, this.#kvHeads);
    }
    this.#settle();
  }

  get #kvHeads(): number {
    return this.#session.layout.kvHeads;
  }

  get #tokenBytes(): number {
    const { headDim, dtype } = this.#session.layout;
    return headDim * ELEMENT_BYTES[dtype];
  }

  #checkSpan(span: TokenSpan, tokens: number): void {
    const { slot, at } = span;
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots || at < 0 || at + tokens > this.slotLen)
      throw new Error(`${tokens} tokens at ${at} do not fit slot ${slot} of ${this.slotLen}`);
  }

  /** A span's first head in one layer; heads follow `pitch` bytes apart. */
  #region(layer: Layer, span: TokenSpan): Region {
    return {
      host: layer.host,
      data: layer.data,
      offset: span.slot * this.#rowBytes + span.at * this.#tokenBytes,
      pitch: this.slotLen * this.#tokenBytes,
    };
  }

  /** One layer's slot row of scratch, where the cache is; heads packed `width` bytes apart. */
  #scratchRegion(width: number): Region {
    if (this.#scratch === undefined) {
      const device = this.#session.kvOnDevice ? this.#session.deviceMemory : undefined;
      if (device === undefined) {
        const host = new Uint8Array(this.#rowBytes);
        this.#scratch = { host, data: 0n };
      } else {
        const { kvHeads, headDim, dtype } = this.#session.layout;
        const value = this.#scope.add(
          allocTensor(device.allocator, [kvHeads, this.slotLen, headDim], dtype),
          ortApi().ReleaseValue,
        );
        this.#scratch = { host: undefined, data: dataOf(value) };
      }
    }
    return { ...this.#scratch, offset: 0, pitch: width };
  }

  /** Device copies go on the legacy stream, which the next run's stream does not wait for. */
  #settle(): void {
    if (this.#session.kvOnDevice) cudart().synchronize();
  }

  #idle(): void {
    if (this.#disposed) throw new Error('KV binding is disposed');
    if (this.#busy) throw new Error('a step is running on this KV binding');
  }

  /** Releases the cache and its bindings; the session stays open. */
  dispose(): void {
    if (this.#busy) throw new Error('cannot dispose a KV binding while a step runs');
    this.#disposed = true;
    this.#views.clear();
    this.#bound.clear();
    this.#scope.close();
  }
}

/** Rows of bytes in one layer's memory: host (`host` set) or device (`data`). */
interface Region {
  readonly host: Uint8Array | undefined;
  readonly data: Ptr;
  readonly offset: number;
  readonly pitch: number;
}

/** `rows` rows of `width` bytes; the regions must not overlap. */
function copyRows(dst: Region, src: Region, width: number, rows: number): void {
  if (width === 0) return;
  if (dst.host !== undefined && src.host !== undefined) {
    for (let r = 0; r < rows; r++) {
      const from = src.offset + r * src.pitch;
      dst.host.set(src.host.subarray(from, from + width), dst.offset + r * dst.pitch);
    }
  } else if (dst.host === undefined && src.host === undefined) {
    cudart().copy2D(
      dst.data + BigInt(dst.offset),
      dst.pitch,
      src.data + BigInt(src.offset),
      src.pitch,
      width,
      rows,
    );
  } else {
    throw new Error('a KV copy between host and device memory');
  }
}

function release(values: readonly Ptr[]): void {
  const api = ortApi();
  for (const v of values) api.ReleaseValue(v);
}
