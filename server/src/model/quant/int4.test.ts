import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantize } from './dequant.ts';
import { F16_VALUES, f32ToF16 } from './f16.ts';
import { dequantizeQ4, q4FromGguf, quantizeInt4 } from './int4.ts';
import { quantize } from './quantize.ts';

function noise(n: number, seed: number, spread = 2): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = (s / 2 ** 31 - 0.5) * spread + (i % 64 < 32 ? 0.3 : -0.1);
  }
  return out;
}

/** A Q4_1 block with the given d, m and codes (code j low nibble of byte j, j+16 high). */
function q41Block(d: number, m: number, code: (j: number) => number): Uint8Array {
  const b = new Uint8Array(20);
  const dh = f32ToF16(d);
  const mh = f32ToF16(m);
  b.set([dh & 0xff, dh >> 8, mh & 0xff, mh >> 8]);
  for (let j = 0; j < 16; j++) b[4 + j] = code(j) | (code(j + 16) << 4);
  return b;
}

test('codes move from ggml order (j, j+16 per byte) to MatMulNBits order (2i, 2i+1 per byte)', () => {
  const code = (j: number) => (j * 5 + 2) % 16;
  const q = q4FromGguf('Q4_1', q41Block(0.5, -2, code), 1, 32);
  for (let i = 0; i < 16; i++) {
    assert.equal(q.codes[i], code(2 * i) | (code(2 * i + 1) << 4), `byte ${i}`);
  }
  assert.deepEqual([q.rows, q.cols, q.scales[0], q.zeroPoints[0]], [1, 32, 0.5, 4]);
});

test('Q4_0 repacks exactly: scale d, zero point 8', () => {
  const rows = 6;
  const cols = 96;
  const bytes = quantize('Q4_0', noise(rows * cols, 3));
  const q = q4FromGguf('Q4_0', bytes, rows, cols);
  assert.ok(q.zeroPoints.every((z) => z === 8));
  assert.deepEqual(dequantizeQ4(q), dequantize('Q4_0', bytes, rows * cols));
});

test('Q4_1 repacks to within float32 rounding of ggml’s values (relative 1e-6 of the block)', () => {
  const rows = 7;
  const cols = 128;
  const bytes = quantize('Q4_1', noise(rows * cols, 5, 3));
  const want = dequantize('Q4_1', bytes, rows * cols);
  const got = dequantizeQ4(q4FromGguf('Q4_1', bytes, rows, cols));
  for (let b = 0; b < want.length; b += 32) {
    const size = Math.max(...Array.from(want.subarray(b, b + 32), Math.abs));
    for (let i = b; i < b + 32; i++) {
      assert.ok(Math.abs((got[i] ?? 0) - (want[i] ?? 0)) <= 1e-6 * size, `${i}: ${got[i]} vs ${want[i]}`);
    }
  }
});

test('a Q4_1 block with d = 0 holds m everywhere, and repacks exactly', () => {
  const bytes = new Uint8Array([
    ...q41Block(0, -0.75, (j) => j % 16),
    ...q41Block(0, 0, (j) => 15 - (j % 16)),
    ...q41Block(2 ** -20, 3, (j) => j % 16), // tiny d: a huge zero point, still within rounding
  ]);
  const q = q4FromGguf('Q4_1', bytes, 1, 96);
  const got = dequantizeQ4(q);
  const want = dequantize('Q4_1', bytes, 96);
  assert.deepEqual(got.subarray(0, 64), want.subarray(0, 64));
  assert.ok(got.subarray(0, 32).every((v) => v === -0.75));
  for (let i = 64; i < 96; i++) assert.ok(Math.abs((got[i] ?? 0) - (want[i] ?? 0)) <= 1e-6 * 3);
  assert.equal(F16_VALUES[f32ToF16(2 ** -20)], 2 ** -20);
});

test('quantizeInt4: asymmetric min/max per block of 32, error at most half a step', () => {
  const rows = 5;
  const cols = 96;
  const x = noise(rows * cols, 11, 4);
  const q = quantizeInt4(x, rows, cols);
  const y = dequantizeQ4(q);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = r * 3 + (c >> 5);
      const step = q.scales[b] ?? 0;
      const i = r * cols + c;
      assert.ok(Math.abs((y[i] ?? 0) - (x[i] ?? 0)) <= step * (0.5 + 1e-5), `${r},${c}`);
    }
  }
  // the block minimum is code 0 and the maximum code 15
  const first = x.subarray(0, 32);
  const lo = Math.min(...first);
  const hi = Math.max(...first);
  assert.equal(q.scales[0], Math.fround((hi - lo) / 15));
  assert.ok(Math.abs((y[first.indexOf(lo)] ?? 0) - lo) <= 1e-6 * Math.abs(hi - lo));
  assert.ok(Math.abs((y[first.indexOf(hi)] ?? 0) - hi) <= 1e-6 * Math.abs(hi - lo));
});

test('quantizeInt4: constant blocks are exact, ragged rows are padded', () => {
  const cols = 40; // one full block and one of 8
  const x = new Float32Array(2 * cols);
  x.fill(0.375, 0, cols); // row 0 constant
  for (let c = 0; c < cols; c++) x[cols + c] = c < 32 ? 0 : c - 35;
  const q = quantizeInt4(x, 2, cols);
  assert.equal(q.scales.length, 4);
  assert.equal(q.codes.length, 64);
  const y = dequantizeQ4(q);
  assert.equal(y.length, 80);
  assert.deepEqual(y.subarray(0, 32), new Float32Array(32).fill(0.375));
  assert.ok(y.subarray(cols, cols + 32).every((v) => v === 0));
  // the last block of row 1 holds -3..4: step 7/15, padding codes 0
  for (let c = 32; c < cols; c++) assert.ok(Math.abs((y[cols + c] ?? 0) - (c - 35)) <= 7 / 30 + 1e-6);
  assert.deepEqual(Array.from(q.codes.subarray(3 * 16 + 4, 4 * 16)), new Array<number>(12).fill(0));
});

test('bad shapes and non-finite values are invalid arguments', () => {
  assert.throws(() => q4FromGguf('Q4_0', new Uint8Array(18), 1, 16), { code: 'invalid_argument' });
  assert.throws(() => q4FromGguf('Q4_1', new Uint8Array(19), 1, 32), { code: 'invalid_argument' });
  assert.throws(() => quantizeInt4(new Float32Array(10), 3, 3), { code: 'invalid_argument' });
  assert.throws(() => quantizeInt4(new Float32Array([1, NaN]), 1, 2), { code: 'invalid_argument' });
  assert.throws(() => quantizeInt4(new Float32Array([Infinity]), 1, 1), { code: 'invalid_argument' });
});
