/**
 * Turns Hugging Face weight tensors into graph initializers for a given precision: fp32 and
 * fp16 linear weights are stored transposed ([in, out]) for MatMul; int4 and int8 weights use
 * MatMulNBits' block layout, or standard DequantizeLinear for the portable profile.
 */
import { DataType } from '../onnx/model.ts';
import type { GraphBuilder } from '../onnx/graph.ts';
import type { Q4Blocks, WeightSource, WeightTensor } from '../weights.ts';
import { dequantizeQ4, quantizeInt4 } from '../quant/int4.ts';
import { dequantizeQ8, quantizeInt8, type Q8Blocks } from '../quant/int8.ts';
import type { BuildOptions } from './options.ts';

export function requireWeight(source: WeightSource, name: string): WeightTensor {
  const t = source.get(name);
  if (t === undefined) throw new Error(`model is missing weight ${name}`);
  return t;
}

export function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const rEnd = Math.min(r0 + tile, rows);
      const cEnd = Math.min(c0 + tile, cols);
      for (let r = r0; r < rEnd; r++) {
        for (let c = c0; c < cEnd; c++) out[c * rows + r] = values[r * cols + c] ?? 0;
      }
    }
  }
  return out;
}

/** The element type activations flow in for a precision. */
export function computeType(o: BuildOptions): DataType {
  return o.precision === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
}

/** Float data as an initializer in the compute type. */
export function floatInitializer(
  g: GraphBuilder,
  name: string,
  dims: readonly number[],
  values: Float32Array,
  type: DataType,
): string {
  return type === DataType.FLOAT16
    ? g.initializer(name, DataType.FLOAT16, dims, Float16Array.from(values))
    : g.initializer(name, DataType.FLOAT, dims, values);
}

/**
 * The blocks an int4 build stores for a linear weight: Q4_0/Q4_1 blocks repacked exactly,
 * anything else quantized to 4 bits (quant/int4.ts documents the method).
 */
export function quantizedBlocks(t: WeightTensor): Q4Blocks {
  const q4 = t.q4();
  if (q4 !== undefined) return q4;
  const [rows, cols] = t.shape;
  if (rows === undefined || cols === undefined) throw new Error(`${t.name} is not a matrix`);
  return quantizeInt4(t.float32(), rows, cols);
}

function int8Blocks(t: WeightTensor): Q8Blocks {
  const [rows, cols] = t.shape;
  if (rows === undefined || cols === undefined) throw new Error(`${t.name} is not a matrix`);
  return quantizeInt8(t.float32(), rows, cols);
}

/** The weight values an int4 or int8 build computes with, for the reference model. */
export function quantizedValues(t: WeightTensor, bits: 4 | 8 = 4): Float32Array {
  return bits === 8 ? dequantizeQ8(int8Blocks(t)) : dequantizeQ4(quantizedBlocks(t));
}

/** y = x · Wᵀ (+ b) for an HF linear weight W of shape [out, in]. */
export function linear(
  g: GraphBuilder,
  o: BuildOptions,
  x: string,
  w: WeightTensor,
  bias: WeightTensor | undefined,
): string {
  const [out, inp] = w.shape as [number, number];
  const type = computeType(o);
  let y: string;
  if (o.precision === 'int4') {
    const q = quantizedBlocks(w);
    y =
      o.profile === 'fast'
        ? matMulNBits(g, x, w.name, q, o.accuracyLevel ?? 0)
        : dequantMatMul(g, x, w.name, q);
  } else if (o.precision === 'int8') {
    const q = int8Blocks(w);
    y =
      o.profile === 'fast'
        ? matMul8Bits(g, x, w.name, q, o.accuracyLevel ?? 0)
        : dequant8MatMul(g, x, w.name, q);
  } else {
    const wt = floatInitializer(g, w.name, [inp, out], transpose(w.float32(), out, inp), type);
    y = g.op1('MatMul', [x, wt]);
  }
  if (bias === undefined) return y;
  return g.op1('Add', [y, floatInitializer(g, bias.name, [out], bias.float32(), type)]);
}

function matMulNBits(g: GraphBuilder, x: string, name: string, q: Q4Blocks, accuracyLevel: number): string {
  const blocks = Math.ceil(q.cols / 32);
  const b = g.initializer(`${name}.q4`, DataType.UINT8, [q.rows, blocks, 16], q.codes);
  const s = g.initializer(`${name}.scales`, DataType.FLOAT, [q.rows * blocks], q.scales);
  const attrs = { K: q.cols, N: q.rows, bits: 4, block_size: 32, accuracy_level: accuracyLevel };
  // MatMulNBits' default zero point is 8 (Q4_0): its packed kernels apply as they are.
  if (q.zeroPoints.every((z) => z === 8)) return g.ms('MatMulNBits', [x, b, s], attrs);
  // A float zero point (Q4_1's minimum) would force ONNX Runtime's slow unpacked path. Split
  // it out instead, exactly: x·((c − z)·s)ᵀ = x·(c·s)ᵀ + blocksum(x)·(−z·s)ᵀ, where the first
  // term is MatMulNBits with integer zero point 0 and the second a matmul 32× smaller.
  const zp = g.initializer(
    `${name}.zero_points`,
    DataType.UINT8,
    [q.rows * Math.ceil(blocks / 2)],
    new Uint8Array(q.rows * Math.ceil(blocks / 2)),
  );
  const main = g.ms('MatMulNBits', [x, b, s, zp], attrs);
  const offsets = new Float32Array(blocks * q.rows);
  for (let n = 0; n < q.rows; n++) {
    for (let k = 0; k < blocks; k++)
      offsets[k * q.rows + n] = -(q.zeroPoints[n * blocks + k] ?? 0) * (q.scales[n * blocks + k] ?? 0);
  }
  const off = g.initializer(`${name}.block_offsets`, DataType.FLOAT, [blocks, q.rows], offsets);
  const sums = blockSums(g, x, q.cols, blocks);
  return g.op1('Add', [main, g.op1('MatMul', [sums, off])]);
}

function matMul8Bits(g: GraphBuilder, x: string, name: string, q: Q8Blocks, accuracyLevel: number): string {
  const blocks = Math.ceil(q.cols / 32);
  const b = g.initializer(`${name}.q8`, DataType.UINT8, [q.rows, blocks, 32], q.codes);
  const s = g.initializer(`${name}.scales`, DataType.FLOAT, [q.rows * blocks], q.scales);
  const attrs = { K: q.cols, N: q.rows, bits: 8, block_size: 32, accuracy_level: accuracyLevel };
  return g.ms('MatMulNBits', [x, b, s], attrs);
}

/** Standard-ops int8: signed codes (code − 128) with blocked DequantizeLinear, then MatMul. */
function dequant8MatMul(g: GraphBuilder, x: string, name: string, q: Q8Blocks): string {
  const blocks = Math.ceil(q.cols / 32);
  const padded = blocks * 32;
  const signed = Int8Array.from(q.codes, (c) => c - 128);
  const codes = g.initializer(`${name}.i8`, DataType.INT8, [q.rows, padded], signed);
  const scales = g.initializer(`${name}.scales`, DataType.FLOAT, [q.rows, blocks], q.scales);
  let w = g.op1('DequantizeLinear', [codes, scales], { axis: 1, block_size: 32 });
  if (padded !== q.cols) {
    w = g.op1('Slice', [w, g.constI64([0]), g.constI64([q.cols]), g.constI64([1])]);
  }
  return g.op1('MatMul', [x, g.op1('Transpose', [w], { perm: [1, 0] })]);
}

/** Sum of x over each block of 32 input features: [..., K] -> [..., K/32]. */
function blockSums(g: GraphBuilder, x: string, cols: number, blocks: number): string {
  let xp = x;
  if (blocks * 32 !== cols) {
    xp = g.op1('Pad', [
      x,
      g.op1('Concat', [g.constI64([0, 0, 0]), g.constI64([0, 0, blocks * 32 - cols])], { axis: 0 }),
    ]);
  }
  const r = g.op1('Reshape', [xp, g.constI64([0, 0, blocks, 32])]);
  return g.op1('ReduceSum', [r, g.constI64([-1])], { keepdims: 0 });
}

/**
 * Standard-ops int4: codes as UINT4 with blocked DequantizeLinear (opset 21) give
 * code·scale; the float zero point enters as a per-block offset −zp·scale, so Q4_1's
 * minimum stays exact without MatMulNBits.
 */
function dequantMatMul(g: GraphBuilder, x: string, name: string, q: Q4Blocks): string {
  const blocks = Math.ceil(q.cols / 32);
  const padded = blocks * 32;
  // UINT4 raw data packs element 2i in the low nibble, as MatMulNBits does, row-major [N, K].
  const codes = g.initializer(`${name}.u4`, DataType.UINT4, [q.rows, padded], q.codes);
  const scales = g.initializer(`${name}.scales`, DataType.FLOAT, [q.rows, blocks], q.scales);
  const offset = new Float32Array(q.rows * blocks);
  for (let i = 0; i < offset.length; i++) offset[i] = -(q.zeroPoints[i] ?? 0) * (q.scales[i] ?? 0);
  const off = g.initializer(`${name}.offsets`, DataType.FLOAT, [q.rows, blocks, 1], offset);
  const scaled = g.op1('DequantizeLinear', [codes, scales], { axis: 1, block_size: 32 });
  const blocked = g.op1('Reshape', [scaled, g.constI64([q.rows, blocks, 32])]);
  const shifted = g.op1('Add', [blocked, off]);
  let w = g.op1('Reshape', [shifted, g.constI64([q.rows, padded])]);
  if (padded !== q.cols) {
    w = g.op1('Slice', [w, g.constI64([0]), g.constI64([q.cols]), g.constI64([1])]);
  }
  return g.op1('MatMul', [x, g.op1('Transpose', [w], { perm: [1, 0] })]);
}
