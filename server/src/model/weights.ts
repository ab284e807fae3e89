import type { DecoderConfig } from './config.ts';

/**
 * 4-bit weights in the exact layout of ONNX Runtime's MatMulNBits (bits=4, block_size=32):
 * for each output row n and block b, 16 bytes hold 32 codes, element 2i in the low nibble
 * and element 2i+1 in the high nibble. A weight is (code - zeroPoint) * scale.
 */
export interface Q4Blocks {
  readonly rows: number;
  readonly cols: number;
  /** rows * ceil(cols / 32) */
  readonly scales: Float32Array;
  /** rows * ceil(cols / 32); a float zero point lets Q4_1's minimum map exactly. */
  readonly zeroPoints: Float32Array;
  /** rows * ceil(cols / 32) * 16 */
  readonly codes: Uint8Array;
}

/** One tensor in Hugging Face layout, read lazily so a build never holds every weight twice. */
export interface WeightTensor {
  readonly name: string;
  /** torch order: [out, in] for linear weights, [vocab, hidden] for embeddings, [n] for norms. */
  readonly shape: readonly number[];
  /** The source's storage type, e.g. 'F32', 'Q4_1' (for reporting). */
  readonly sourceType: string;
  /** Dequantized values, row-major. */
  float32(): Float32Array;
  /** Exact 4-bit blocks when the source is already 4-bit along the input dimension. */
  q4(): Q4Blocks | undefined;
}

/** A model's weights and hyper-parameters, whatever file they came from. */
export interface WeightSource {
  readonly config: DecoderConfig;
  get(name: string): WeightTensor | undefined;
  names(): readonly string[];
}
