/**
 * ggml tensor types to float32, with ggml's block layouts and formulas (ggml-quants.c,
 * dequantize_row_*). Every product and sum is rounded to float32 exactly where ggml's C code
 * rounds it, so results match ggml and gguf-py bit for bit. Each function walks the blocks once
 * and writes straight into the output; nothing is allocated per block or per element.
 */
import { AutoGLMError } from '../../errors.ts';
import { GGML_TYPE_SIZES, ggmlTypeLabel, isGgmlTypeName, type GgmlTypeName } from '../gguf/types.ts';
import { F16_BITS, F16_VALUES } from './f16.ts';

type Dequantizer = (src: Uint8Array, out: Float32Array) => void;

const u16 = (b: Uint8Array, at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
const half = (b: Uint8Array, at: number): number => F16_VALUES[u16(b, at)] ?? 0;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function f32(src: Uint8Array, out: Float32Array): void {
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(src.subarray(0, out.byteLength));
    return;
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0, p = 0; i < bits.length; i++, p += 4) {
    bits[i] =
      ((src[p] ?? 0) | ((src[p + 1] ?? 0) << 8) | ((src[p + 2] ?? 0) << 16) | ((src[p + 3] ?? 0) << 24)) >>>
      0;
  }
}

function f16(src: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) bits[i] = F16_BITS[u16(src, 2 * i)] ?? 0;
}

function bf16(src: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) bits[i] = (u16(src, 2 * i) << 16) >>> 0;
}

/** Q8_0: {d: f16, qs: int8[32]}; x = qs * d. */
function q8_0(src: Uint8Array, out: Float32Array): void {
  for (let o = 0, p = 0; o < out.length; o += 32, p += 34) {
    const d = half(src, p);
    for (let j = 0; j < 32; j++) out[o + j] = (((src[p + 2 + j] ?? 0) << 24) >> 24) * d;
  }
}

/** Q4_0: {d: f16, qs: u8[16]}; element j is the low nibble of qs[j], element j+16 the high. x = (q - 8) * d. */
function q4_0(src: Uint8Array, out: Float32Array): void {
  for (let o = 0, p = 0; o < out.length; o += 32, p += 18) {
    const d = half(src, p);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j] ?? 0;
      out[o + j] = ((q & 0xf) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** Q4_1: {d: f16, m: f16, qs: u8[16]}, nibbles as Q4_0; x = q * d + m. */
function q4_1(src: Uint8Array, out: Float32Array): void {
  for (let o = 0, p = 0; o < out.length; o += 32, p += 20) {
    const d = half(src, p);
    const m = half(src, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 4 + j] ?? 0;
      out[o + j] = (q & 0xf) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  }
}

/**
 * The 6-bit scale (`which` 0) or min (`which` 1) of sub-block j of a Q4_K/Q5_K super-block,
 * ggml's get_scale_min_k4: 12 bytes hold eight 6-bit scales and eight 6-bit mins.
 */
export function scaleMinK4(src: Uint8Array, at: number, j: number, which: 0 | 1): number {
  if (j < 4) return (src[at + j + 4 * which] ?? 0) & 63;
  const packed = src[at + j + 4] ?? 0;
  const low = which === 0 ? packed & 0xf : packed >> 4;
  return low | (((src[at + j - 4 * (1 - which)] ?? 0) >> 6) << 4);
}

/**
 * Q4_K: super-blocks of 256 = {d: f16, dmin: f16, scales: u8[12], qs: u8[128]}; eight
 * sub-blocks of 32 with 6-bit scale sc and min m: x = (d*sc) * q - (dmin*m). Each 32 bytes of
 * qs hold two sub-blocks: the first in the low nibbles, the next in the high.
 */
function q4_K(src: Uint8Array, out: Float32Array): void {
  for (let o = 0, p = 0; o < out.length; o += 256, p += 144) {
    const d = half(src, p);
    const dmin = half(src, p + 2);
    for (let g = 0; g < 4; g++) {
      const d1 = Math.fround(d * scaleMinK4(src, p + 4, 2 * g, 0));
      const m1 = Math.fround(dmin * scaleMinK4(src, p + 4, 2 * g, 1));
      const d2 = Math.fround(d * scaleMinK4(src, p + 4, 2 * g + 1, 0));
      const m2 = Math.fround(dmin * scaleMinK4(src, p + 4, 2 * g + 1, 1));
      const qs = p + 16 + 32 * g;
      const y = o + 64 * g;
      for (let l = 0; l < 32; l++) {
        const q = src[qs + l] ?? 0;
        out[y + l] = d1 * (q & 0xf) - m1;
        out[y + 32 + l] = d2 * (q >> 4) - m2;
      }
    }
  }
}

/**
 * Q6_K: super-blocks of 256 = {ql: u8[128], qh: u8[64], scales: int8[16], d: f16}. A 6-bit
 * code is 4 low bits from ql and 2 high bits from qh, minus 32; x = (d * scale) * q, with one
 * int8 scale per 16 elements (scale index = element / 16).
 */
function q6_K(src: Uint8Array, out: Float32Array): void {
  const scales = new Float64Array(16);
  for (let o = 0, p = 0; o < out.length; o += 256, p += 210) {
    const d = half(src, p + 208);
    for (let k = 0; k < 16; k++) scales[k] = d * (((src[p + 192 + k] ?? 0) << 24) >> 24);
    q6KHalf(src, p, out, o, scales, 0);
    q6KHalf(src, p, out, o, scales, 1);
  }
}

/** 128 values of a Q6_K super-block: half h uses ql[64h..], qh[32h..] and scales[8h..]. */
function q6KHalf(
  src: Uint8Array,
  p: number,
  out: Float32Array,
  o: number,
  scales: Float64Array,
  h: number,
): void {
  const ql = p + 64 * h;
  const qh = p + 128 + 32 * h;
  const y = o + 128 * h;
  for (let l = 0; l < 32; l++) {
    const lo = src[ql + l] ?? 0;
    const hi = src[ql + l + 32] ?? 0;
    const top = src[qh + l] ?? 0;
    const s = 8 * h + (l >> 4);
    out[y + l] = (scales[s] ?? 0) * (((lo & 0xf) | ((top & 3) << 4)) - 32);
    out[y + l + 32] = (scales[s + 2] ?? 0) * (((hi & 0xf) | (((top >> 2) & 3) << 4)) - 32);
    out[y + l + 64] = (scales[s + 4] ?? 0) * (((lo >> 4) | (((top >> 4) & 3) << 4)) - 32);
    out[y + l + 96] = (scales[s + 6] ?? 0) * (((hi >> 4) | (((top >> 6) & 3) << 4)) - 32);
  }
}

const DEQUANTIZERS: Partial<Record<GgmlTypeName, Dequantizer>> = {
  F32: f32,
  F16: f16,
  BF16: bf16,
  Q8_0: q8_0,
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q4_K: q4_K,
  Q6_K: q6_K,
};

export const DEQUANTIZABLE_TYPES = Object.keys(DEQUANTIZERS) as readonly GgmlTypeName[];

/**
 * `count` values of a tensor of ggml type `type` (a name such as 'Q4_K', or an on-disk id)
 * stored in `bytes`. Throws `unsupported_quantization` naming the type for types it cannot
 * read, `invalid_argument` when `count` is not whole blocks or `bytes` is too short.
 */
export function dequantize(type: string | number, bytes: Uint8Array, count: number): Float32Array {
  const name = typeof type === 'string' ? type : ggmlTypeLabel(type);
  const fn = isGgmlTypeName(name) ? DEQUANTIZERS[name] : undefined;
  if (fn === undefined || !isGgmlTypeName(name)) {
    throw new AutoGLMError('unsupported_quantization', `tensors of type ${name} cannot be read by AutoGLM`, {
      hint: `use a GGUF whose weights are ${DEQUANTIZABLE_TYPES.join(', ')} (e.g. a Q4_0, Q4_1, Q4_K_M or Q8_0 file)`,
    });
  }
  const { blockSize, typeSize } = GGML_TYPE_SIZES[name];
  if (!Number.isSafeInteger(count) || count < 0 || count % blockSize !== 0) {
    throw new AutoGLMError(
      'invalid_argument',
      `${count} values are not whole ${name} blocks of ${blockSize}`,
    );
  }
  const need = (count / blockSize) * typeSize;
  if (bytes.length < need) {
    throw new AutoGLMError(
      'invalid_argument',
      `${count} ${name} values need ${need} bytes, got ${bytes.length}`,
    );
  }
  const out = new Float32Array(count);
  fn(bytes, out);
  return out;
}
