/**
 * float32 → ggml tensor types, for writing GGUF files (tests, small fixture models).
 *
 * F32, F16, BF16, Q8_0, Q4_0 and Q4_1 follow ggml's reference quantizers
 * (quantize_row_*_ref), with float32 rounding at the same steps as gguf-py, so the bytes match
 * gguf-py's `gguf.quants.quantize` exactly. Q4_K and Q6_K use a simple encoder that is valid
 * but does not search for the best scales the way llama.cpp's quantizer does:
 *
 * - Q4_K: per sub-block of 32, the offset -min' with min' = min(min, 0) (a Q4_K min is
 *   subtracted, so it cannot be positive) is coded first, as a 6-bit multiple m of
 *   dmin = max(-min') / 63 rounded up; then scale = (max + dmin*m) / 15, coded as a 6-bit
 *   multiple sc of d = max(scale) / 63 rounded up; each code is
 *   round((x + dmin*m) / (d*sc)) clamped to 0..15.
 * - Q6_K: per sub-block of 16, scale = max|x| / 31, coded as an int8 multiple sc of
 *   d = max(scale) / 127 rounded up; codes are round(x / (d*sc)) clamped to -32..31.
 * Rounding the multiples up keeps every value inside its block's coded range.
 */
import { AutoGLMError } from '../../errors.ts';
import { GGML_TYPE_SIZES, type GgmlTypeName } from '../gguf/types.ts';
import { F16_VALUES, f32ToBf16, f32ToF16, floatBits } from './f16.ts';

type Quantizer = (x: Float32Array, out: Uint8Array) => void;
const fr = Math.fround;

function put16(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >> 8) & 0xff;
}

/** Stores `v` as a half and returns the value the half holds. */
function putHalf(out: Uint8Array, at: number, v: number): number {
  const h = f32ToF16(v);
  put16(out, at, h);
  return F16_VALUES[h] ?? 0;
}

function f32(x: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < x.length; i++) {
    const b = floatBits(x[i] ?? 0);
    put16(out, 4 * i, b & 0xffff);
    put16(out, 4 * i + 2, b >>> 16);
  }
}

function f16(x: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < x.length; i++) put16(out, 2 * i, f32ToF16(x[i] ?? 0));
}

function bf16(x: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < x.length; i++) put16(out, 2 * i, f32ToBf16(x[i] ?? 0));
}

const inverse = (d: number): number => (d === 0 ? 0 : fr(1 / d));

function q8_0(x: Float32Array, out: Uint8Array): void {
  for (let o = 0, p = 0; o < x.length; o += 32, p += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j] ?? 0));
    const d = fr(amax / 127);
    const id = inverse(d);
    putHalf(out, p, d);
    for (let j = 0; j < 32; j++) {
      const v = fr((x[o + j] ?? 0) * id);
      out[p + 2 + j] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  }
}

/** Packs 32 codes ggml's way: code j in the low nibble of byte j, code j+16 in its high nibble. */
function packNibbles(codes: Uint8Array, out: Uint8Array, at: number): void {
  for (let j = 0; j < 16; j++) out[at + j] = (codes[j] ?? 0) | ((codes[j + 16] ?? 0) << 4);
}

const clampCode = (v: number): number => Math.min(15, Math.max(0, Math.trunc(v)));

function q4_0(x: Float32Array, out: Uint8Array): void {
  const codes = new Uint8Array(32);
  for (let o = 0, p = 0; o < x.length; o += 32, p += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j] ?? 0;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = inverse(d);
    putHalf(out, p, d);
    for (let j = 0; j < 32; j++) codes[j] = clampCode(fr(fr((x[o + j] ?? 0) * id) + 8.5));
    packNibbles(codes, out, p + 2);
  }
}

function q4_1(x: Float32Array, out: Uint8Array): void {
  const codes = new Uint8Array(32);
  for (let o = 0, p = 0; o < x.length; o += 32, p += 20) {
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < 32; j++) {
      min = Math.min(min, x[o + j] ?? 0);
      max = Math.max(max, x[o + j] ?? 0);
    }
    const d = fr(fr(max - min) / 15);
    const id = inverse(d);
    putHalf(out, p, d);
    putHalf(out, p + 2, min);
    for (let j = 0; j < 32; j++) codes[j] = clampCode(fr(fr(fr((x[o + j] ?? 0) - min) * id) + 0.5));
    packNibbles(codes, out, p + 4);
  }
}

/**
 * Codes `scales` as multiples of one half-precision step d = max / maxCode, rounding each
 * multiple up so a block's codes never need clamping. Writes d and the multiples; returns d.
 */
function codeScales(
  scales: Float64Array,
  maxCode: number,
  multiples: Uint8Array,
  out: Uint8Array,
  at: number,
): number {
  const step = putHalf(out, at, Math.max(...scales) / maxCode);
  for (let j = 0; j < scales.length; j++) {
    multiples[j] = step > 0 ? Math.min(maxCode, Math.ceil((scales[j] ?? 0) / step)) : 0;
  }
  return step;
}

/** Packs eight 6-bit scales and mins into Q4_K's 12 bytes (the inverse of scaleMinK4). */
function packScalesK4(sc: Uint8Array, mn: Uint8Array, out: Uint8Array, at: number): void {
  for (let j = 0; j < 4; j++) {
    const sHi = sc[j + 4] ?? 0;
    const mHi = mn[j + 4] ?? 0;
    out[at + j] = (sc[j] ?? 0) | ((sHi >> 4) << 6);
    out[at + 4 + j] = (mn[j] ?? 0) | ((mHi >> 4) << 6);
    out[at + 8 + j] = (sHi & 0xf) | ((mHi & 0xf) << 4);
  }
}

/** Sets 4-bit code q of element e (0..255) in a Q4_K super-block's qs at `at`. */
function setQ4K(out: Uint8Array, at: number, e: number, q: number): void {
  const byte = at + 32 * (e >> 6) + (e & 31);
  const old = out[byte] ?? 0;
  out[byte] = (e & 32) === 0 ? (old & 0xf0) | q : (old & 0x0f) | (q << 4);
}

function q4_K(x: Float32Array, out: Uint8Array): void {
  const scales = new Float64Array(8);
  const mins = new Float64Array(8);
  const sc = new Uint8Array(8);
  const mn = new Uint8Array(8);
  const his = new Float64Array(8);
  for (let o = 0, p = 0; o < x.length; o += 256, p += 144) {
    for (let j = 0; j < 8; j++) {
      const block = x.subarray(o + 32 * j, o + 32 * j + 32);
      his[j] = Math.max(...block);
      mins[j] = -Math.min(0, ...block);
    }
    // mins first, so each scale can cover the range above its min as actually coded
    const dmin = codeScales(mins, 63, mn, out, p + 2);
    for (let j = 0; j < 8; j++) scales[j] = Math.max(0, (his[j] ?? 0) + fr(dmin * (mn[j] ?? 0))) / 15;
    const d = codeScales(scales, 63, sc, out, p);
    packScalesK4(sc, mn, out, p + 4);
    for (let e = 0; e < 256; e++) {
      const step = fr(d * (sc[e >> 5] ?? 0));
      const offset = fr(dmin * (mn[e >> 5] ?? 0));
      const q = step > 0 ? Math.round(((x[o + e] ?? 0) + offset) / step) : 0;
      setQ4K(out, p + 16, e, Math.min(15, Math.max(0, q)));
    }
  }
}

/** Sets 6-bit code u (0..63) of element e (0..255) in a Q6_K super-block at `p`. */
function setQ6K(out: Uint8Array, p: number, e: number, u: number): void {
  const h = e >> 7;
  const g = (e >> 5) & 3;
  const l = e & 31;
  const ql = p + 64 * h + 32 * (g & 1) + l;
  const low = out[ql] ?? 0;
  out[ql] = g < 2 ? (low & 0xf0) | (u & 0xf) : (low & 0x0f) | ((u & 0xf) << 4);
  const qh = p + 128 + 32 * h + l;
  out[qh] = ((out[qh] ?? 0) & ~(3 << (2 * g))) | ((u >> 4) << (2 * g));
}

function q6_K(x: Float32Array, out: Uint8Array): void {
  const scales = new Float64Array(16);
  const sc = new Uint8Array(16);
  for (let o = 0, p = 0; o < x.length; o += 256, p += 210) {
    for (let j = 0; j < 16; j++) {
      let amax = 0;
      for (let k = 0; k < 16; k++) amax = Math.max(amax, Math.abs(x[o + 16 * j + k] ?? 0));
      scales[j] = amax / 31;
    }
    const d = codeScales(scales, 127, sc, out, p + 208);
    out.set(sc, p + 192);
    for (let e = 0; e < 256; e++) {
      const step = fr(d * (sc[e >> 4] ?? 0));
      const q = step > 0 ? Math.round((x[o + e] ?? 0) / step) : 0;
      setQ6K(out, p, e, Math.min(31, Math.max(-32, q)) + 32);
    }
  }
}

const QUANTIZERS: Partial<Record<GgmlTypeName, Quantizer>> = {
  F32: f32,
  F16: f16,
  BF16: bf16,
  Q8_0: q8_0,
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q4_K: q4_K,
  Q6_K: q6_K,
};

export const QUANTIZABLE_TYPES = Object.keys(QUANTIZERS) as readonly GgmlTypeName[];

/** `values` encoded as ggml type `type`; the length must be whole blocks of the type. */
export function quantize(type: GgmlTypeName, values: Float32Array): Uint8Array {
  const fn = QUANTIZERS[type];
  if (fn === undefined) {
    throw new AutoGLMError('unsupported_quantization', `AutoGLM cannot write tensors of type ${type}`, {
      hint: `write one of ${QUANTIZABLE_TYPES.join(', ')}`,
    });
  }
  const { blockSize, typeSize } = GGML_TYPE_SIZES[type];
  if (values.length % blockSize !== 0) {
    throw new AutoGLMError(
      'invalid_argument',
      `${values.length} values are not whole ${type} blocks of ${blockSize}`,
    );
  }
  const out = new Uint8Array((values.length / blockSize) * typeSize);
  fn(values, out);
  return out;
}
