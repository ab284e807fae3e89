/**
 * What this machine's arithmetic allows for bench:serve's workload: the floating-point
 * operations one request must do (prefill and decode, counted from the model's config.json),
 * and the fastest matrix product ONNX Runtime runs here. Their quotient bounds the output
 * tokens/s that any server of this model can reach on this CPU, whatever its batching.
 */
import ort from 'onnxruntime-node';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../../server/src/model/onnx/graph.ts';
import { DataType, writeModel } from '../../server/src/model/onnx/model.ts';

/** The config.json fields the count needs (Hugging Face names). */
export interface ModelShape {
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads: number;
  readonly head_dim?: number;
  readonly vocab_size: number;
}

export interface RequestFlops {
  /** Projections and MLP, every token. */
  readonly matmul: number;
  /** QKᵀ and attention-weighted values, growing with the position. */
  readonly attention: number;
  /** The output head, once per position that needs logits. */
  readonly head: number;
  readonly total: number;
}

/**
 * Floating-point operations (a multiply-add is two) of one request of `prompt` tokens that
 * generates `output` tokens. `allPromptLogits`: the graph computes the head over every prompt
 * position, as standard exports do, rather than the last one only.
 */
export function requestFlops(
  m: ModelShape,
  prompt: number,
  output: number,
  allPromptLogits: boolean,
): RequestFlops {
  const headDim = m.head_dim ?? m.hidden_size / m.num_attention_heads;
  const q = m.num_attention_heads * headDim;
  const kv = m.num_key_value_heads * headDim;
  const perLayer = m.hidden_size * (q + 2 * kv) + q * m.hidden_size + 3 * m.hidden_size * m.intermediate_size;
  // The last generated token is returned, never fed back: prompt + output − 1 positions run.
  const positions = prompt + output - 1;
  const matmul = 2 * m.num_hidden_layers * perLayer * positions;
  // Position p (1-based) attends over p keys: Σ p = n(n+1)/2; two products of q-width each.
  const attention = 2 * 2 * m.num_hidden_layers * q * ((positions * (positions + 1)) / 2);
  const headPositions = (allPromptLogits ? prompt : 1) + output - 1;
  const head = 2 * m.vocab_size * m.hidden_size * headPositions;
  return { matmul, attention, head, total: matmul + attention + head };
}

export async function modelShape(modelDir: string): Promise<ModelShape> {
  return JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')) as ModelShape;
}

export interface GemmPeak {
  readonly gflops: number;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly threads: number;
}

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 4294967296 - 0.5) * 0.1;
  }
  return out;
}

type Precision = 'float32' | 'int8';

/** A one-node graph: [m, k] input × [k, n] weight, float32 MatMul or uint8 × int8 MatMulInteger. */
async function gemmModel(path: string, precision: Precision, m: number, k: number, n: number): Promise<void> {
  const g = new GraphBuilder();
  if (precision === 'float32') {
    const x = g.input('x', DataType.FLOAT, [m, k]);
    const w = g.initializer('w', DataType.FLOAT, [k, n], seeded(k * n, 7));
    g.op('MatMul', [x, w], {}, { outputs: ['y'] });
    g.output('y', DataType.FLOAT, [m, n]);
  } else {
    const x = g.input('x', DataType.UINT8, [m, k]);
    const w = g.initializer(
      'w',
      DataType.INT8,
      [k, n],
      Int8Array.from(seeded(k * n, 7), (v) => Math.round(v * 1000)),
    );
    g.op('MatMulInteger', [x, w], {}, { outputs: ['y'] });
    g.output('y', DataType.INT32, [m, n]);
  }
  await writeModel(path, {
    irVersion: 10,
    opsets: [{ domain: '', version: 21 }],
    producerName: 'autoglm-bench',
    producerVersion: '0',
    graph: g.build('gemm'),
    metadata: {},
  });
}

/**
 * The fastest matrix product ONNX Runtime's CPU provider runs here: one product of a [m, k]
 * input by a [k, n] weight, median of `reps` runs after warm-up, at sizes where the kernel,
 * not the call, is timed. int8 counts a multiply-add as two operations, like float32.
 */
export async function measureGemmPeak(
  threads: number,
  precision: Precision = 'float32',
  size = 1024,
  reps = 10,
): Promise<GemmPeak> {
  const [m, k, n] = [size, size * 2, size * 2];
  const dir = await mkdtemp(join(tmpdir(), 'autoglm-gemm-'));
  try {
    const path = join(dir, 'gemm.onnx');
    await gemmModel(path, precision, m, k, n);
    const session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads });
    try {
      const x =
        precision === 'float32'
          ? new ort.Tensor('float32', seeded(m * k, 3), [m, k])
          : new ort.Tensor(
              'uint8',
              Uint8Array.from(seeded(m * k, 3), (v) => 128 + Math.round(v * 1000)),
              [m, k],
            );
      const times: number[] = [];
      for (let i = 0; i < reps + 3; i++) {
        const t = performance.now();
        await session.run({ x });
        if (i >= 3) times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const ms = times[Math.floor(times.length / 2)] ?? Number.NaN;
      return { gflops: (2 * m * k * n) / (ms / 1000) / 1e9, m, k, n, threads };
    } finally {
      await session.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Output tokens/s that `gflops` of arithmetic can sustain on this workload, at best. */
export function tokensPerSecondCeiling(flops: RequestFlops, output: number, gflops: number): number {
  return ((gflops * 1e9) / flops.total) * output;
}
