/** GGUF metadata values as read from the file; 64-bit integers stay bigint only when unsafe as numbers. */
export type GgufValue = number | bigint | string | boolean | readonly GgufValue[];
export type GgufMetadata = ReadonlyMap<string, GgufValue>;

/** ggml tensor types by their on-disk id (ggml.h). */
export const GGML_TYPES = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
} as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dims[0] is the innermost (contiguous) dimension. */
  readonly dims: readonly number[];
  /** ggml type id; `typeName` when it is one we know. */
  readonly type: number;
  readonly typeName: GgmlTypeName | undefined;
  /** Absolute byte offset in the file. */
  readonly offset: number;
  /** For a type we do not know: the span up to the next tensor (or the end of the file). */
  readonly byteLength: number;
}

/** Metadata value types by their on-disk id (gguf.h), spelled as gguf-py spells them. */
export const GGUF_VALUE_TYPES = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPES;
export type GgufScalarTypeName = Exclude<GgufValueTypeName, 'ARRAY'>;
export type GgufScalar = number | bigint | string | boolean;

/**
 * A metadata value with its on-disk type spelled out: what the writer accepts where the
 * default typing of a JS value is not the one wanted, and what the reader reports on request.
 * An array of arrays lists each inner array typed, since each carries its own item type.
 */
export type GgufTypedValue =
  | { readonly type: GgufScalarTypeName; readonly value: GgufScalar }
  | { readonly type: 'ARRAY'; readonly itemType: GgufScalarTypeName; readonly value: readonly GgufScalar[] }
  | {
      readonly type: 'ARRAY';
      readonly itemType: 'ARRAY';
      readonly value: readonly (GgufTypedValue | readonly GgufValue[])[];
    };

/** Elements per block and bytes per block of each ggml type we know (ggml.c's type traits). */
export const GGML_TYPE_SIZES: Readonly<
  Record<GgmlTypeName, { readonly blockSize: number; readonly typeSize: number }>
> = {
  F32: { blockSize: 1, typeSize: 4 },
  F16: { blockSize: 1, typeSize: 2 },
  BF16: { blockSize: 1, typeSize: 2 },
  Q4_0: { blockSize: 32, typeSize: 18 },
  Q4_1: { blockSize: 32, typeSize: 20 },
  Q5_0: { blockSize: 32, typeSize: 22 },
  Q5_1: { blockSize: 32, typeSize: 24 },
  Q8_0: { blockSize: 32, typeSize: 34 },
  Q8_1: { blockSize: 32, typeSize: 36 },
  Q2_K: { blockSize: 256, typeSize: 84 },
  Q3_K: { blockSize: 256, typeSize: 110 },
  Q4_K: { blockSize: 256, typeSize: 144 },
  Q5_K: { blockSize: 256, typeSize: 176 },
  Q6_K: { blockSize: 256, typeSize: 210 },
  Q8_K: { blockSize: 256, typeSize: 292 },
};

const TYPE_NAMES_BY_ID = new Map<number, GgmlTypeName>(
  Object.entries(GGML_TYPES).map(([name, id]) => [id, name as GgmlTypeName]),
);

/** The name of a ggml type id, or undefined for ids this build does not know. */
export function ggmlTypeName(id: number): GgmlTypeName | undefined {
  return TYPE_NAMES_BY_ID.get(id);
}

/** Names of the other ggml types (ggml.h), only so messages can name what they refuse. */
const OTHER_TYPE_NAMES: Readonly<Record<number, string>> = {
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
  40: 'NVFP4',
  41: 'Q1_0',
};

/** A ggml type id for messages: 'Q4_K', 'IQ4_NL', or 'ggml type 77'. */
export function ggmlTypeLabel(id: number): string {
  return ggmlTypeName(id) ?? OTHER_TYPE_NAMES[id] ?? `ggml type ${id}`;
}

export function isGgmlTypeName(name: string): name is GgmlTypeName {
  return Object.hasOwn(GGML_TYPES, name);
}

/**
 * An open GGUF file. Metadata and tensor infos are parsed and validated at open; tensor data
 * is read on demand, one tensor at a time, either asynchronously (`readRaw`) or synchronously
 * (`readRawSync`, for lazy weight accessors that must be synchronous).
 */
export interface GgufFile extends AsyncDisposable {
  readonly path: string;
  readonly version: 2 | 3;
  readonly metadata: GgufMetadata;
  readonly tensors: readonly GgufTensorInfo[];
  /** `general.alignment`, or 32. */
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
  tensor(name: string): GgufTensorInfo | undefined;
  /** A metadata value together with its on-disk type. */
  typedMetadata(key: string): GgufTypedValue | undefined;
  /** The tensor's bytes as stored (a fresh copy). */
  readRaw(name: string): Promise<Uint8Array>;
  readRawSync(name: string): Uint8Array;
  /** Closes the file handle; reads after it throw. Calling it twice is harmless. */
  close(): Promise<void>;
}
