/**
 * A decoder session opened through the C API on the CPU or CUDA, with what a binding needs
 * to know about it: the KV layout, the vocabulary, and memory infos and an allocator for the
 * device's own memory. Layers and shapes are read from the model's inputs and outputs.
 */
import { join } from 'node:path';
import type { KvLayout } from '../decoder.ts';
import { check, count, create, NativeScope, ortApi, ortEnv, readString } from './library.ts';
import {
  ELEMENT,
  ORT_DEVICE_ALLOCATOR,
  ORT_DEVICE_GPU,
  ORT_MEM_TYPE_DEFAULT,
  type Out,
  type Ptr,
} from './ort-api.ts';

export type CapiDevice = 'cpu' | 'cuda';

export interface CapiSessionOptions {
  readonly device: CapiDevice;
  /** Threads inside one op; 0 lets ONNX Runtime choose (one per core). */
  readonly intraOpThreads?: number;
  /**
   * CUDA only: capture the decode step in a CUDA graph on its first runs and replay it after
   * (provider option enable_cuda_graph). Every input and output must then stay bound at fixed
   * addresses with fixed shapes, and every compute node must run on CUDA.
   */
  readonly cudaGraph?: boolean;
  readonly deviceId?: number;
  /** Which file under onnx/ to load. */
  readonly fileName?: string;
}

const ORT_ENABLE_ALL = 99;

export interface DeviceMemory {
  readonly memoryInfo: Ptr;
  readonly allocator: Ptr;
}

interface TensorInfo {
  readonly type: number;
  /** -1 where the dimension is symbolic. */
  readonly dims: readonly number[];
}

interface Io {
  readonly count: (session: Ptr, out: Out<number>) => Ptr | null;
  readonly name: (session: Ptr, index: number, allocator: Ptr, out: Out<Ptr>) => Ptr | null;
  readonly typeInfo: (session: Ptr, index: number, out: Out<Ptr>) => Ptr | null;
}

function io(kind: 'input' | 'output'): Io {
  const api = ortApi();
  return kind === 'input'
    ? {
        count: api.SessionGetInputCount,
        name: api.SessionGetInputName,
        typeInfo: api.SessionGetInputTypeInfo,
      }
    : {
        count: api.SessionGetOutputCount,
        name: api.SessionGetOutputName,
        typeInfo: api.SessionGetOutputTypeInfo,
      };
}

function names(session: Ptr, kind: 'input' | 'output'): string[] {
  const api = ortApi();
  const f = io(kind);
  // The default allocator belongs to ONNX Runtime and is not released.
  const allocator = create('GetAllocatorWithDefaultOptions', (out) =>
    api.GetAllocatorWithDefaultOptions(out),
  );
  const n = count(`Session ${kind} count`, (out) => f.count(session, out));
  return Array.from({ length: n }, (_, i) => {
    const p = create(`Session ${kind} name`, (out) => f.name(session, i, allocator, out));
    try {
      return readString(p);
    } finally {
      check(api.AllocatorFree(allocator, p), 'AllocatorFree');
    }
  });
}

function tensorInfo(session: Ptr, kind: 'input' | 'output', index: number): TensorInfo {
  const api = ortApi();
  const typeInfo = create(`Session ${kind} type info`, (out) => io(kind).typeInfo(session, index, out));
  try {
    // The tensor info belongs to the type info.
    const info = create('CastTypeInfoToTensorInfo', (out) => api.CastTypeInfoToTensorInfo(typeInfo, out));
    const type = count('GetTensorElementType', (out) => api.GetTensorElementType(info, out));
    const rank = count('GetDimensionsCount', (out) => api.GetDimensionsCount(info, out));
    const dims = new BigInt64Array(rank);
    check(api.GetDimensions(info, dims, rank), 'GetDimensions');
    return { type, dims: Array.from(dims, Number) };
  } finally {
    api.ReleaseTypeInfo(typeInfo);
  }
}

function appendCuda(options: Ptr, o: CapiSessionOptions): void {
  const api = ortApi();
  const cuda = create('CreateCUDAProviderOptions', (out) => api.CreateCUDAProviderOptions(out));
  try {
    const entries: Record<string, string> = { device_id: String(o.deviceId ?? 0) };
    if (o.cudaGraph === true) entries['enable_cuda_graph'] = '1';
    const keys = Object.keys(entries);
    check(
      api.UpdateCUDAProviderOptions(cuda, keys, Object.values(entries), keys.length),
      'UpdateCUDAProviderOptions',
    );
    check(api.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda), 'append the CUDA provider');
  } finally {
    api.ReleaseCUDAProviderOptions(cuda);
  }
}

function createSession(path: string, o: CapiSessionOptions): Ptr {
  const api = ortApi();
  const env = ortEnv();
  const options = create('CreateSessionOptions', (out) => api.CreateSessionOptions(out));
  try {
    check(api.SetIntraOpNumThreads(options, o.intraOpThreads ?? 0), 'SetIntraOpNumThreads');
    check(api.SetSessionGraphOptimizationLevel(options, ORT_ENABLE_ALL), 'SetSessionGraphOptimizationLevel');
    if (o.device === 'cuda') appendCuda(options, o);
    return create(`CreateSession ${path}`, (out) => api.CreateSession(env, path, options, out));
  } finally {
    api.ReleaseSessionOptions(options);
  }
}

/**
 * Whether the session wants `name` in device memory: where the node that reads it runs. On
 * CUDA, GroupQueryAttention takes float16 only, so float32 attention (int4 and int8 builds)
 * runs on the CPU and reads its cache from host memory.
 */
function inputOnDevice(session: Ptr, inputNames: readonly string[], name: string): boolean {
  const api = ortApi();
  const infos = new BigUint64Array(inputNames.length);
  check(api.SessionGetMemoryInfoForInputs(session, infos, infos.length), 'SessionGetMemoryInfoForInputs');
  const info = infos[inputNames.indexOf(name)] ?? 0n;
  if (info === 0n) return false;
  const type: Out<number> = [null];
  api.MemoryInfoGetDeviceType(info, type);
  return type[0] === ORT_DEVICE_GPU;
}

interface Shapes {
  readonly layout: KvLayout;
  readonly vocab: number;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly kvOnDevice: boolean;
}

function shapes(session: Ptr): Shapes {
  const inputNames = names(session, 'input');
  const outputNames = names(session, 'output');
  const layers = inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
  const past = tensorInfo(session, 'input', inputNames.indexOf('past_key_values.0.key'));
  const [, kvHeads, , headDim] = past.dims;
  if (layers === 0 || kvHeads === undefined || kvHeads < 1 || headDim === undefined || headDim < 1) {
    throw new Error('model has no past_key_values.0.key input with fixed head dimensions');
  }
  if (past.type !== ELEMENT.float32 && past.type !== ELEMENT.float16) {
    throw new Error(`past_key_values element type ${past.type} is neither float32 nor float16`);
  }
  const logits = tensorInfo(session, 'output', outputNames.indexOf('logits'));
  const vocab = logits.dims[2] ?? -1;
  if (logits.type !== ELEMENT.float32 || vocab < 1) {
    throw new Error('model has no float32 logits output [batch, sequence, vocab] with a fixed vocab');
  }
  const dtype = past.type === ELEMENT.float16 ? 'float16' : 'float32';
  const kvOnDevice = inputOnDevice(session, inputNames, 'past_key_values.0.key');
  return { layout: { layers, kvHeads, headDim, dtype }, vocab, inputNames, outputNames, kvOnDevice };
}

export class CapiSession {
  readonly device: CapiDevice;
  readonly cudaGraph: boolean;
  readonly layout: KvLayout;
  readonly vocab: number;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Attention reads its cache from device memory. A cache bound anywhere else would be copied
   * when it is bound, not when a step runs, so it must live where attention wants it.
   */
  readonly kvOnDevice: boolean;
  /** Memory info for host buffers. */
  readonly hostMemory: Ptr;
  /** Memory info and allocator for the device's own memory; undefined on the CPU. */
  readonly deviceMemory: DeviceMemory | undefined;
  readonly #scope: NativeScope;
  #session: Ptr | undefined;
  #graphs = 0;

  private constructor(scope: NativeScope, session: Ptr, o: CapiSessionOptions) {
    const api = ortApi();
    this.#scope = scope;
    this.#session = session;
    this.device = o.device;
    this.cudaGraph = o.device === 'cuda' && o.cudaGraph === true;
    const s = shapes(session);
    this.layout = s.layout;
    this.vocab = s.vocab;
    this.inputNames = s.inputNames;
    this.outputNames = s.outputNames;
    this.kvOnDevice = s.kvOnDevice;
    this.hostMemory = scope.add(
      create('CreateCpuMemoryInfo', (out) =>
        api.CreateCpuMemoryInfo(ORT_DEVICE_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, out),
      ),
      api.ReleaseMemoryInfo,
    );
    if (o.device === 'cuda') {
      const memory = scope.add(
        create('CreateMemoryInfo Cuda', (out) =>
          api.CreateMemoryInfo('Cuda', ORT_DEVICE_ALLOCATOR, o.deviceId ?? 0, ORT_MEM_TYPE_DEFAULT, out),
        ),
        api.ReleaseMemoryInfo,
      );
      // The session's own CUDA allocator (its arena), so KV buffers share its memory pool.
      const allocator = scope.add(
        create('CreateAllocator', (out) => api.CreateAllocator(session, memory, out)),
        api.ReleaseAllocator,
      );
      this.deviceMemory = { memoryInfo: memory, allocator };
    } else {
      this.deviceMemory = undefined;
    }
  }

  static open(modelDir: string, options: CapiSessionOptions): CapiSession {
    if (options.cudaGraph === true && options.device !== 'cuda')
      throw new Error('CUDA graphs need device cuda');
    const path = join(modelDir, 'onnx', options.fileName ?? 'model.onnx');
    const scope = new NativeScope();
    try {
      const session = scope.add(createSession(path, options), ortApi().ReleaseSession);
      const s = new CapiSession(scope, session, options);
      scope.guard(s);
      return s;
    } catch (err) {
      scope.close();
      throw err;
    }
  }

  get hasPositionIds(): boolean {
    return this.inputNames.includes('position_ids');
  }

  /** The OrtSession; throws once disposed. */
  get handle(): Ptr {
    if (this.#session === undefined) throw new Error('session is disposed');
    return this.#session;
  }

  /** Keeps this session's native objects until `scope` closes: bindings made on it call this. */
  usedBy(scope: NativeScope): void {
    this.#scope.usedBy(scope);
  }

  /**
   * A CUDA graph id no binding has used: a captured graph is replayed by id with the addresses
   * it was captured with, and lives as long as the session, so ids are never reused.
   */
  nextGraphId(): number {
    return this.#graphs++;
  }

  /**
   * The handle stops working at once; native objects go when the last binding made on this
   * session is disposed too.
   */
  dispose(): void {
    this.#session = undefined;
    this.#scope.close();
  }
}
