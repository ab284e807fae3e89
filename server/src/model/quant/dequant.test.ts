/**
 * Dequantizers on blocks built by hand from ggml's documented layouts, the half/bfloat16
 * conversions, and quantize → dequantize accuracy. (Bit-exactness against gguf-py is in
 * gguf/reference.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoGLMError } from '../../errors.ts';
import type { GgmlTypeName } from '../gguf/types.ts';
import { dequantize } from './dequant.ts';
import { F16_VALUES, f32ToBf16, f32ToF16 } from './f16.ts';
import { quantize } from './quantize.ts';

const H = { quarter: 0x3400, half: 0x3800, one: 0x3c00, two: 0x4000, minusOne: 0xbc00 } as const;

function block(size: number, fill: (b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(size);
  fill(b);
  return b;
}
const put16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v & 0xff;
  b[at + 1] = v >> 8;
};

test('F32, F16 and BF16 decode their bit patterns', () => {
  const f32 = new Uint8Array(new Float32Array([1.5, -0, Infinity]).buffer);
  assert.deepEqual(dequantize('F32', f32, 3), new Float32Array([1.5, -0, Infinity]));
  const f16 = block(8, (b) => {
    put16(b, 0, H.one);
    put16(b, 2, 0x0001); // smallest subnormal, 2^-24
    put16(b, 4, 0xfc00); // -inf
    put16(b, 6, 0x7bff); // 65504
  });
  assert.deepEqual(dequantize('F16', f16, 4), new Float32Array([1, 2 ** -24, -Infinity, 65504]));
  const bf16 = block(4, (b) => {
    put16(b, 0, 0x3f80);
    put16(b, 2, 0xc040);
  });
  assert.deepEqual(dequantize('BF16', bf16, 2), new Float32Array([1, -3]));
});

test('Q8_0: x = int8 * d', () => {
  const b = block(34, (b) => {
    put16(b, 0, H.half);
    for (let j = 0; j < 32; j++) b[2 + j] = (j * 8 - 128) & 0xff;
  });
  const want = Float32Array.from({ length: 32 }, (_, j) => (j * 8 - 128) * 0.5);
  assert.deepEqual(dequantize('Q8_0', b, 32), want);
});

test('Q4_0 and Q4_1: element j is the low nibble of byte j, element j+16 its high nibble', () => {
  const codes = (j: number) => (j * 7 + 3) % 16;
  const pack = (b: Uint8Array, at: number) => {
    for (let j = 0; j < 16; j++) b[at + j] = codes(j) | (codes(j + 16) << 4);
  };
  const q40 = block(18, (b) => {
    put16(b, 0, H.two);
    pack(b, 2);
  });
  assert.deepEqual(
    dequantize('Q4_0', q40, 32),
    Float32Array.from({ length: 32 }, (_, j) => (codes(j) - 8) * 2),
  );
  const q41 = block(20, (b) => {
    put16(b, 0, H.quarter);
    put16(b, 2, H.minusOne);
    pack(b, 4);
  });
  assert.deepEqual(
    dequantize('Q4_1', q41, 32),
    Float32Array.from({ length: 32 }, (_, j) => codes(j) * 0.25 - 1),
  );
});

test('Q4_K: 6-bit scales and mins, 32 codes per sub-block, two sub-blocks per 32 bytes', () => {
  const sc = [1, 2, 3, 4, 40, 50, 60, 63];
  const mn = [0, 5, 10, 15, 20, 33, 47, 63];
  const code = (e: number) => (e * 5 + (e >> 5)) % 16;
  const b = block(144, (b) => {
    put16(b, 0, H.one); // d
    put16(b, 2, H.half); // dmin
    for (let j = 0; j < 4; j++) {
      // bytes 0-3: scale j and the top 2 bits of scale j+4; bytes 4-7 the same for mins;
      // bytes 8-11: the low 4 bits of scale j+4 and of min j+4
      b[4 + j] = (sc[j] ?? 0) | (((sc[j + 4] ?? 0) >> 4) << 6);
      b[8 + j] = (mn[j] ?? 0) | (((mn[j + 4] ?? 0) >> 4) << 6);
      b[12 + j] = ((sc[j + 4] ?? 0) & 15) | (((mn[j + 4] ?? 0) & 15) << 4);
    }
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) b[16 + 32 * g + l] = code(64 * g + l) | (code(64 * g + 32 + l) << 4);
    }
  });
  const want = Float32Array.from(
    { length: 256 },
    (_, e) => (sc[e >> 5] ?? 0) * code(e) - 0.5 * (mn[e >> 5] ?? 0),
  );
  assert.deepEqual(dequantize('Q4_K', b, 256), want);
});

test('Q6_K: 4 low bits in ql, 2 high bits in qh, one int8 scale per 16 values', () => {
  const scales = Array.from({ length: 16 }, (_, k) => (k * 37) % 256);
  const code = (e: number) => (e * 7 + 1) % 64;
  const b = block(210, (b) => {
    for (let e = 0; e < 256; e++) {
      const [h, g, l] = [e >> 7, (e >> 5) & 3, e & 31];
      const u = code(e);
      // groups 0 and 1 take the low nibbles of ql[0..31] and ql[32..63], groups 2 and 3 the high
      b[64 * h + 32 * (g & 1) + l] = (b[64 * h + 32 * (g & 1) + l] ?? 0) | ((u & 15) << (g < 2 ? 0 : 4));
      b[128 + 32 * h + l] = (b[128 + 32 * h + l] ?? 0) | ((u >> 4) << (2 * g));
    }
    scales.forEach((s, k) => (b[192 + k] = s));
    put16(b, 208, H.half);
  });
  const int8 = (s: number) => (s >= 128 ? s - 256 : s);
  const want = Float32Array.from({ length: 256 }, (_, e) => 0.5 * int8(scales[e >> 4] ?? 0) * (code(e) - 32));
  assert.deepEqual(dequantize('Q6_K', b, 256), want);
});

test('float → half rounds to nearest even, and every half survives a round trip', () => {
  for (let h = 0; h < 65536; h++) {
    const v = F16_VALUES[h] ?? 0;
    if (!Number.isNaN(v)) assert.equal(f32ToF16(v), h, `half ${h.toString(16)}`);
  }
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie, even stays
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie, odd rounds up
  assert.equal(f32ToF16(65519), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // rounds to infinity
  assert.equal(f32ToF16(2 ** -25), 0); // half the smallest subnormal: tie to even (0)
  assert.equal(f32ToF16(2 ** -25 * 1.5), 1);
  assert.equal(f32ToF16(-(2 ** -24) * 2.5), 0x8002);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie to even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(f32ToBf16(NaN) & 0x7fc0, 0x7fc0);
});

function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const u = s / 2 ** 31;
    out[i] = (u - 0.5) * (i % 97 === 0 ? 20 : 2) + (i % 256 < 32 ? 0.7 : 0);
  }
  return out;
}

/** Worst error of quantize → dequantize, relative to the largest magnitude in each block. */
function worstRelativeError(type: GgmlTypeName, x: Float32Array, block: number): number {
  const y = dequantize(type, quantize(type, x), x.length);
  let worst = 0;
  for (let b = 0; b < x.length; b += block) {
    const scale = Math.max(...Array.from(x.subarray(b, b + block), Math.abs)) || 1;
    for (let i = b; i < b + block; i++) worst = Math.max(worst, Math.abs((y[i] ?? 0) - (x[i] ?? 0)) / scale);
  }
  return worst;
}

test('quantize then dequantize stays within each type’s precision', () => {
  const x = noise(4096, 7);
  assert.equal(worstRelativeError('F32', x, 1), 0);
  assert.ok(worstRelativeError('F16', x, 1) <= 2 ** -11);
  assert.ok(worstRelativeError('BF16', x, 1) <= 2 ** -8);
  const bounds: [GgmlTypeName, number, number][] = [
    ['Q8_0', 32, 0.5 / 127 + 1e-3],
    ['Q4_0', 32, 1 / 8 + 1e-3],
    ['Q4_1', 32, 1 / 15 + 1e-3], // range/15/2 with range up to twice the largest magnitude
    ['Q6_K', 16, 1 / 31],
    ['Q4_K', 32, 0.1],
  ];
  for (const [type, block, bound] of bounds) {
    const err = worstRelativeError(type, x, block);
    assert.ok(err <= bound, `${type}: worst error ${err} > ${bound}`);
  }
  // zeros come back as zeros (Q4_0's d = max / -8 makes them -0, as in ggml)
  for (const type of ['Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q6_K'] as const) {
    assert.ok(
      dequantize(type, quantize(type, new Float32Array(256)), 256).every((v) => v === 0),
      type,
    );
  }
});

test('types that cannot be read fail naming the type; bad sizes are invalid arguments', () => {
  const named = (label: string) => (e: unknown) =>
    e instanceof AutoGLMError && e.code === 'unsupported_quantization' && e.message.includes(label);
  assert.throws(() => dequantize('Q5_0', new Uint8Array(22), 32), named('Q5_0'));
  assert.throws(() => dequantize(20, new Uint8Array(18), 32), named('IQ4_NL'));
  assert.throws(() => dequantize(99, new Uint8Array(18), 32), named('ggml type 99'));
  assert.throws(() => quantize('Q5_K', new Float32Array(256)), { code: 'unsupported_quantization' });
  assert.throws(() => dequantize('Q4_0', new Uint8Array(18), 31), { code: 'invalid_argument' });
  assert.throws(() => dequantize('Q4_0', new Uint8Array(17), 32), { code: 'invalid_argument' });
  assert.throws(() => quantize('Q4_K', new Float32Array(32)), { code: 'invalid_argument' });
});
