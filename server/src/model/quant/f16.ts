/**
 * IEEE half precision and bfloat16 conversions, bit-exact with ggml and numpy:
 * half → float is exact (a table of all 65,536 values), float → half rounds to nearest even.
 */

/** float32 bit patterns of every half, so NaN payloads survive a copy into a Uint32Array. */
export const F16_BITS = new Uint32Array(65536);
/** The same halves as numbers, for scale factors. */
export const F16_VALUES = new Float32Array(F16_BITS.buffer);

function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal half: normalise into a float32 normal
  let e = -14;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

for (let h = 0; h < 65536; h++) F16_BITS[h] = halfToFloatBits(h);

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** float32 bits of a number (rounded to float32 first). */
export function floatBits(x: number): number {
  scratch[0] = x;
  return scratchBits[0] ?? 0;
}

/** float32 → half, round to nearest even (what numpy's astype(float16) and ggml do). */
export function f32ToF16(x: number): number {
  const bits = floatBits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant === 0 ? 0 : 0x200 | (mant >>> 13));
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // subnormal half: shift the full significand, rounding to nearest even
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && (half & 1) === 1) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (up to infinity)
  return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1) ? half + 1 : half);
}

/** float32 → bfloat16 as ggml_compute_fp32_to_bf16: NaN made quiet, otherwise round to nearest even. */
export function f32ToBf16(x: number): number {
  const bits = floatBits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 64) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}
