export const PROFILES = ['portable', 'fast'] as const;
export type Profile = (typeof PROFILES)[number];
export const PRECISIONS = ['fp32', 'fp16', 'int8', 'int4'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface BuildOptions {
  /** `portable`: standard ONNX operators only. `fast`: ONNX Runtime contrib operators. */
  readonly profile: Profile;
  /** Weight precision. int8 and int4 compute activations in fp32; fp16 computes in fp16. */
  readonly precision: Precision;
  /** Force weights into an external data file (otherwise only when over the protobuf limit). */
  readonly externalData?: boolean;
  /**
   * MatMulNBits' compute precision for int8 and int4 weights: 0 computes in float32 (exact up to the
   * weights); 4 quantizes activations to int8 per block, as llama.cpp does, for faster CPU
   * matmuls at a small activation error.
   */
  readonly accuracyLevel?: 0 | 4;
  /**
   * Attention takes the query heads to compute per row and reports each head's attention
   * entropy (gated-attention.ts), so the engine can skip heads at run time.
   */
  readonly headGating?: boolean;
  /** Longest sequence the rotary tables cover; defaults to the model's context length. */
  readonly maxPositions?: number;
}
