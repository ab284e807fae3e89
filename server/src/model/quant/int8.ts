/**
 * 8-bit weights for ONNX Runtime's MatMulNBits (bits=8, block_size=32): per output row n and
 * block b, 32 one-byte codes, weight = (code − 128) · scale. Symmetric absmax per block, as
 * ggml's Q8_0: scale = max|x| / 127, code = round(x / scale) + 128. MatMulNBits' default zero
 * point for 8 bits is 128, so no zero-point input is needed and its packed kernels apply.
 */
import { AutoGLMError } from '../../errors.ts';

const BLOCK = 32;
const ZERO = 128;
const fr = Math.fround;

export interface Q8Blocks {
  readonly rows: number;
  readonly cols: number;
  /** rows * ceil(cols / 32) */
  readonly scales: Float32Array;
  /** rows * ceil(cols / 32) * 32; a short last block is padded with the zero code. */
  readonly codes: Uint8Array;
}

export function quantizeInt8(values: Float32Array, rows: number, cols: number): Q8Blocks {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || values.length !== rows * cols) {
    throw new AutoGLMError(
      'invalid_argument',
      `quantizeInt8: ${values.length} values do not make a ${rows}x${cols} matrix`,
    );
  }
  const perRow = Math.ceil(cols / BLOCK);
  const scales = new Float32Array(rows * perRow);
  const codes = new Uint8Array(rows * perRow * BLOCK).fill(ZERO);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < perRow; b++) {
      const from = r * cols + b * BLOCK;
      const block = values.subarray(from, Math.min(r * cols + cols, from + BLOCK));
      let amax = 0;
      for (const v of block) {
        if (!Number.isFinite(v)) {
          throw new AutoGLMError(
            'invalid_argument',
            `quantizeInt8: value ${v} at row ${r} near column ${b * BLOCK} is not finite`,
          );
        }
        amax = Math.max(amax, Math.abs(v));
      }
      const scale = fr(amax / 127);
      const at = (r * perRow + b) * BLOCK;
      scales[r * perRow + b] = scale;
      if (scale === 0) continue;
      for (let i = 0; i < block.length; i++) {
        codes[at + i] = ZERO + Math.max(-127, Math.min(127, Math.round((block[i] ?? 0) / scale)));
      }
    }
  }
  return { rows, cols, scales, codes };
}

/** The float weights a `Q8Blocks` stands for, row-major [rows, cols]. */
export function dequantizeQ8(q: Q8Blocks): Float32Array {
  const perRow = Math.ceil(q.cols / BLOCK);
  const out = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) {
    for (let c = 0; c < q.cols; c++) {
      const b = r * perRow + Math.floor(c / BLOCK);
      out[r * q.cols + c] = ((q.codes[b * BLOCK + (c % BLOCK)] ?? ZERO) - ZERO) * (q.scales[b] ?? 0);
    }
  }
  return out;
}
