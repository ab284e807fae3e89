/**
 * 4-bit weights for ONNX Runtime's MatMulNBits (bits=4, block_size=32), in the `Q4Blocks`
 * layout of weights.ts: per output row n and block b, 16 bytes of codes (element 2i in the
 * low nibble of byte i, element 2i+1 in the high nibble), a float scale and a float zero
 * point, weight = (code - zeroPoint) * scale.
 */
import { AutoGLMError } from '../../errors.ts';
import type { Q4Blocks } from '../weights.ts';
import { F16_VALUES } from './f16.ts';

const BLOCK = 32;
const fr = Math.fround;

function allocate(rows: number, cols: number): Q4Blocks {
  const n = rows * Math.ceil(cols / BLOCK);
  return {
    rows,
    cols,
    scales: new Float32Array(n),
    zeroPoints: new Float32Array(n),
    codes: new Uint8Array(n * 16),
  };
}

function checkShape(what: string, rows: number, cols: number): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) {
    throw new AutoGLMError('invalid_argument', `${what}: ${rows}x${cols} is not a matrix shape`);
  }
}

/**
 * Repacks ggml Q4_0 / Q4_1 blocks of a [rows, cols] matrix (ggml dims [cols, rows]; rows are
 * output features) into MatMulNBits blocks, without requantizing: the codes are the same
 * codes, moved from ggml's order (element j low, j+16 high nibble of byte j) to
 * MatMulNBits's (element 2i low, 2i+1 high nibble of byte i).
 * - Q4_0 (x = (q - 8) * d): scale d, zero point 8, exact.
 * - Q4_1 (x = q * d + m): scale d, zero point -m/d, exact up to float32 rounding of m/d.
 *   A block with d = 0 holds m everywhere: scale m, every code 1, zero point 0 (exact).
 */
export function q4FromGguf(
  typeName: 'Q4_0' | 'Q4_1',
  bytes: Uint8Array,
  rows: number,
  cols: number,
): Q4Blocks {
  checkShape('q4FromGguf', rows, cols);
  if (cols % BLOCK !== 0) {
    throw new AutoGLMError(
      'invalid_argument',
      `q4FromGguf: ${cols} columns are not whole blocks of ${BLOCK}`,
    );
  }
  const blockBytes = typeName === 'Q4_0' ? 18 : 20;
  const out = allocate(rows, cols);
  const blocks = out.scales.length;
  if (bytes.length < blocks * blockBytes) {
    throw new AutoGLMError(
      'invalid_argument',
      `q4FromGguf: ${rows}x${cols} ${typeName} needs ${blocks * blockBytes} bytes, got ${bytes.length}`,
    );
  }
  const half = (at: number): number => F16_VALUES[(bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8)] ?? 0;
  for (let b = 0, p = 0; b < blocks; b++, p += blockBytes) {
    const d = half(p);
    const qs = p + blockBytes - 16;
    const at = 16 * b;
    if (typeName === 'Q4_0') {
      out.scales[b] = d;
      out.zeroPoints[b] = 8;
    } else if (d !== 0) {
      out.scales[b] = d;
      out.zeroPoints[b] = -half(p + 2) / d;
    } else {
      out.scales[b] = half(p + 2);
      out.zeroPoints[b] = 0;
      out.codes.fill(0x11, at, at + 16);
      continue;
    }
    for (let i = 0; i < 8; i++) {
      // bytes 0..7 hold elements 0..15 (ggml low nibbles), bytes 8..15 elements 16..31 (high nibbles)
      out.codes[at + i] = ((bytes[qs + 2 * i] ?? 0) & 0x0f) | (((bytes[qs + 2 * i + 1] ?? 0) & 0x0f) << 4);
      out.codes[at + 8 + i] = ((bytes[qs + 2 * i] ?? 0) >> 4) | ((bytes[qs + 2 * i + 1] ?? 0) & 0xf0);
    }
  }
  return out;
}

/**
 * Quantizes a row-major [rows, cols] float matrix to 4 bits, per block of 32 along cols, with
 * the asymmetric min/max method:
 *   scale = (max - min) / 15, code = round((x - min) / scale) clamped to 0..15,
 *   zeroPoint = -min / scale (a float, so the block minimum is represented exactly).
 * A block whose values are all equal (scale 0, or underflowing to 0) stores scale = that value,
 * every code 1 and zero point 0, so it comes back exactly. When cols is not a multiple of 32
 * the last block of each row is padded with code 0; its min/max cover only the real values.
 * Non-finite values are rejected.
 */
export function quantizeInt4(values: Float32Array, rows: number, cols: number): Q4Blocks {
  checkShape('quantizeInt4', rows, cols);
  if (values.length !== rows * cols) {
    throw new AutoGLMError(
      'invalid_argument',
      `quantizeInt4: ${values.length} values do not make a ${rows}x${cols} matrix`,
    );
  }
  const out = allocate(rows, cols);
  const perRow = Math.ceil(cols / BLOCK);
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += BLOCK) {
      const block = values.subarray(r * cols + c0, r * cols + Math.min(cols, c0 + BLOCK));
      quantizeBlock(block, out, r * perRow + c0 / BLOCK, r, c0);
    }
  }
  return out;
}

function quantizeBlock(block: Float32Array, out: Q4Blocks, b: number, row: number, col: number): void {
  let min = Infinity;
  let max = -Infinity;
  for (const v of block) {
    if (!Number.isFinite(v)) {
      throw new AutoGLMError(
        'invalid_argument',
        `quantizeInt4: value ${v} at row ${row} near column ${col} is not finite`,
      );
    }
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const scale = fr((max - min) / 15);
  const at = 16 * b;
  if (scale === 0) {
    out.scales[b] = min;
    out.zeroPoints[b] = 0;
    for (let i = 0; i < block.length; i++) setCode(out.codes, at, i, 1);
    return;
  }
  out.scales[b] = scale;
  out.zeroPoints[b] = -min / scale;
  for (let i = 0; i < block.length; i++) {
    setCode(out.codes, at, i, Math.min(15, Math.max(0, Math.round(((block[i] ?? 0) - min) / scale))));
  }
}

function setCode(codes: Uint8Array, at: number, i: number, code: number): void {
  const byte = at + (i >> 1);
  codes[byte] =
    (i & 1) === 0 ? ((codes[byte] ?? 0) & 0xf0) | code : ((codes[byte] ?? 0) & 0x0f) | (code << 4);
}

/** The float weights a `Q4Blocks` stands for, row-major [rows, cols], in float32 arithmetic as ORT does it. */
export function dequantizeQ4(blocks: Q4Blocks): Float32Array {
  const { rows, cols, scales, zeroPoints, codes } = blocks;
  const perRow = Math.ceil(cols / BLOCK);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = r * perRow + (c >> 5);
      const i = c & 31;
      const byte = codes[16 * b + (i >> 1)] ?? 0;
      const code = (i & 1) === 0 ? byte & 0x0f : byte >> 4;
      out[r * cols + c] = fr(code - (zeroPoints[b] ?? 0)) * (scales[b] ?? 0);
    }
  }
  return out;
}
