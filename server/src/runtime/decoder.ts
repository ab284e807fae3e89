/**
 * The only module that talks to onnxruntime-node: it opens a decoder session on the best
 * execution provider it can get and runs forward steps with a KV cache. Any standard
 * Hugging Face decoder export works, because layers and shapes are read from the session.
 */
import ort from 'onnxruntime-node';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { providerAvailable } from './providers.ts';

/**
 * onnxruntime-common keeps float16 data in a Float16Array wherever the runtime has one (Node
 * 24 does), but onnxruntime-node's native binding cannot read a Float16Array: it sees zero
 * bytes and every float16 input or output fails ("not enough space"). The common package
 * picks its float16 array type once, at the first tensor it makes, so make that tensor while
 * Float16Array is hidden: float16 data then stays in Uint16Array, which the binding reads.
 */
function keepFloat16InUint16(): void {
  const g = globalThis as { Float16Array?: unknown };
  const saved = g.Float16Array;
  if (saved === undefined) return;
  delete g.Float16Array;
  try {
    new ort.Tensor('float32', new Float32Array(0), [0]).dispose();
  } finally {
    g.Float16Array = saved;
  }
}
keepFloat16InUint16();

export const DEVICES = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type Device = (typeof DEVICES)[number];
export type Provider = Exclude<Device, 'auto'>;

export interface SessionOptions {
  readonly device?: Device;
  /** Threads inside one op; 0 lets ONNX Runtime choose (one per core). */
  readonly intraOpThreads?: number;
  /** Which file under onnx/ to load. */
  readonly fileName?: string;
  /**
   * Leave every present.* output in the provider's device buffers, to be fed back as the
   * next step's past without a host copy. onnxruntime-node binds such outputs for WebGPU
   * only; other providers refuse it at open.
   */
  readonly kvOnDevice?: boolean;
}

export interface KvLayout {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly dtype: 'float32' | 'float16';
}

/** Bytes one cached token takes over every layer's key and value. */
export function kvBytesPerToken(l: KvLayout): number {
  return l.layers * 2 * l.kvHeads * l.headDim * (l.dtype === 'float16' ? 2 : 4);
}

/** Per-layer key/value tensors, [batch, kvHeads, length, headDim]. */
export interface KvState {
  readonly length: number;
  readonly tensors: ReadonlyMap<string, ort.Tensor>;
}

export interface StepInput {
  readonly batch: number;
  /** [batch, seq] token ids. */
  readonly inputIds: BigInt64Array;
  /** [batch, past + seq] 1 for real tokens, 0 for padding. */
  readonly attentionMask: BigInt64Array;
  /** [batch, seq] absolute positions. */
  readonly positionIds: BigInt64Array;
  readonly past: KvState | undefined;
}

export interface StepOutput {
  /** [batch, seq, vocab] */
  readonly logits: Float32Array;
  readonly vocabSize: number;
  readonly present: KvState;
}

const ORDER: readonly Provider[] = ['cuda', 'webgpu', 'cpu'];

/** Node op types sit near the start of the file, before the weights: scan only the head. */
export async function usesGroupQueryAttention(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64 << 20);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead).includes('GroupQueryAttention');
  } finally {
    await fh.close();
  }
}

/**
 * Every present.* output in a device buffer, logits on the host. Output names must be known
 * before the session exists; the Hugging Face layout's config.json gives the layer count.
 */
async function presentOnDevice(modelDir: string): Promise<Record<string, ort.Tensor.DataLocation>> {
  const config = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')) as {
    num_hidden_layers?: unknown;
  };
  const layers = config.num_hidden_layers;
  if (typeof layers !== 'number') throw new Error('config.json has no num_hidden_layers');
  const locations: Record<string, ort.Tensor.DataLocation> = {};
  for (let i = 0; i < layers; i++) {
    for (const kv of ['key', 'value']) locations[`present.${i}.${kv}`] = 'gpu-buffer';
  }
  return locations;
}

async function queryHeads(modelDir: string): Promise<number> {
  const config = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')) as {
    num_attention_heads?: unknown;
  };
  const heads = config.num_attention_heads;
  if (typeof heads !== 'number') throw new Error('config.json has no num_attention_heads');
  return heads;
}

async function ortOptions(
  modelDir: string,
  provider: Provider,
  options: SessionOptions,
): Promise<ort.InferenceSession.SessionOptions> {
  if (options.kvOnDevice === true && provider !== 'webgpu') {
    throw new Error('onnxruntime-node keeps outputs in device buffers on webgpu only');
  }
  return {
    executionProviders: [provider],
    intraOpNumThreads: options.intraOpThreads ?? 0,
    graphOptimizationLevel: 'all',
    ...(options.kvOnDevice === true ? { preferredOutputLocation: await presentOnDevice(modelDir) } : {}),
  };
}

function emptyKv(dtype: KvLayout['dtype'], dims: number[]): ort.Tensor {
  return dtype === 'float16'
    ? new ort.Tensor('float16', new Uint16Array(0), dims)
    : new ort.Tensor('float32', new Float32Array(0), dims);
}

/** Logits as float32 whatever the model emits. */
export function floatData(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    // onnxruntime hands fp16 data out as raw 16-bit words; reinterpret them.
    const raw = t.data as Uint16Array;
    return Float32Array.from(new Float16Array(raw.buffer, raw.byteOffset, raw.length));
  }
  throw new Error(`unexpected logits type ${t.type}`);
}

function tensorMeta(
  session: ort.InferenceSession,
  name: string,
): ort.InferenceSession.TensorValueMetadata | undefined {
  const m = session.inputMetadata.find((x) => x.name === name);
  return m?.isTensor === true ? m : undefined;
}

export class DecoderSession {
  private readonly session: ort.InferenceSession;
  readonly provider: Provider;
  readonly layout: KvLayout;
  private readonly hasPositionIds: boolean;
  /** Providers tried before this one, and why each was not used. */
  skipped: readonly string[] = [];
  /**
   * Attention is GroupQueryAttention, which accepts past and present as one buffer with
   * per-sequence lengths; otherwise present is past with the new tokens concatenated.
   */
  sharedKv = false;
  /**
   * Query heads per layer when the model was built with head gating (it takes head_index.N
   * inputs and reports attn_entropy.N); undefined otherwise.
   */
  gatedHeads: number | undefined;

  private constructor(
    session: ort.InferenceSession,
    provider: Provider,
    layout: KvLayout,
    hasPositionIds: boolean,
  ) {
    this.session = session;
    this.provider = provider;
    this.layout = layout;
    this.hasPositionIds = hasPositionIds;
  }

  static async open(modelDir: string, options: SessionOptions = {}): Promise<DecoderSession> {
    const path = join(modelDir, 'onnx', options.fileName ?? 'model.onnx');
    const wanted = options.device ?? 'auto';
    const failures: string[] = [];
    const candidates = (wanted === 'auto' ? ORDER : [wanted]).filter((p) => {
      const check = providerAvailable(p);
      if (!check.ok) failures.push(`${p}: ${check.reason}`);
      return check.ok || wanted !== 'auto';
    });
    for (const provider of candidates) {
      try {
        const session = await ort.InferenceSession.create(
          path,
          await ortOptions(modelDir, provider, options),
        );
        const d = DecoderSession.fromSession(session, provider, failures);
        d.sharedKv = await usesGroupQueryAttention(path);
        if (session.inputNames.includes('head_index.0')) d.gatedHeads = await queryHeads(modelDir);
        return d;
      } catch (err) {
        failures.push(
          `${provider}: ${err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)}`,
        );
      }
    }
    throw new Error(`could not open ${path} on ${candidates.join(', ')}:\n  ${failures.join('\n  ')}`);
  }

  private static fromSession(
    session: ort.InferenceSession,
    provider: Provider,
    skipped: string[],
  ): DecoderSession {
    const keys = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n));
    const first = tensorMeta(session, 'past_key_values.0.key');
    const kvHeads = first?.shape[1];
    const headDim = first?.shape[3];
    if (typeof kvHeads !== 'number' || typeof headDim !== 'number') {
      throw new Error('model has no past_key_values.0.key input with fixed head dimensions');
    }
    const dtype = first?.type === 'float16' ? 'float16' : 'float32';
    const layout = { layers: keys.length, kvHeads, headDim, dtype } as const;
    const d = new DecoderSession(session, provider, layout, session.inputNames.includes('position_ids'));
    d.skipped = skipped;
    return d;
  }

  get hasPositionInput(): boolean {
    return this.hasPositionIds;
  }

  /** One raw run; `fetches` may pre-allocate outputs (a present bound to its past buffer). */
  async run(
    feeds: Record<string, ort.Tensor>,
    fetches?: Record<string, ort.Tensor | null>,
  ): Promise<Record<string, ort.Tensor>> {
    return fetches === undefined ? this.session.run(feeds) : this.session.run(feeds, fetches);
  }

  emptyPast(batch: number): KvState {
    const { layers, kvHeads, headDim, dtype } = this.layout;
    const tensors = new Map<string, ort.Tensor>();
    for (let i = 0; i < layers; i++) {
      for (const kv of ['key', 'value'])
        tensors.set(`${i}.${kv}`, emptyKv(dtype, [batch, kvHeads, 0, headDim]));
    }
    return { length: 0, tensors };
  }

  async step(input: StepInput): Promise<StepOutput> {
    const { batch } = input;
    const seq = input.inputIds.length / batch;
    const past = input.past ?? this.emptyPast(batch);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', input.inputIds, [batch, seq]),
      attention_mask: new ort.Tensor('int64', input.attentionMask, [
        batch,
        input.attentionMask.length / batch,
      ]),
    };
    if (this.hasPositionIds) feeds['position_ids'] = new ort.Tensor('int64', input.positionIds, [batch, seq]);
    for (const [k, t] of past.tensors) feeds[`past_key_values.${k}`] = t;
    const out = await this.session.run(feeds);
    const logitsT = out['logits'];
    if (logitsT === undefined) throw new Error('model produced no logits');
    const vocabSize = logitsT.dims[2] ?? 0;
    const logits = floatData(logitsT);
    const tensors = new Map<string, ort.Tensor>();
    for (let i = 0; i < this.layout.layers; i++) {
      for (const kv of ['key', 'value']) {
        const t = out[`present.${i}.${kv}`];
        if (t === undefined) throw new Error(`model produced no present.${i}.${kv}`);
        tensors.set(`${i}.${kv}`, t);
      }
    }
    const length = tensors.get('0.key')?.dims[2] ?? 0;
    return { logits, vocabSize, present: { length, tensors } };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
