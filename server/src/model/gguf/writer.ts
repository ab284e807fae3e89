/**
 * Writes GGUF files (version 3 by default, or 2; both little-endian with 64-bit counts), for
 * tests and small fixture models. Metadata values are typed by default as llama.cpp's files
 * type them, or explicitly with a `GgufTypedValue`:
 * - number: a non-negative integer is UINT32 (UINT64 above 2^32-1), a negative integer INT32
 *   (INT64 below -2^31), anything else FLOAT32; bigint: UINT64, or INT64 when negative;
 * - string: STRING; boolean: BOOL;
 * - array: item type from its items as above, except that integers are INT32 whenever they all
 *   fit (gguf-py's choice, e.g. tokenizer.ggml.token_type), and an empty array is INT32;
 *   an array of arrays is typed item by item.
 * Tensor data is padded to `general.alignment` (default 32).
 */
import { open } from 'node:fs/promises';
import { AutoGLMError, asStorageError } from '../../errors.ts';
import {
  GGML_TYPES,
  GGML_TYPE_SIZES,
  GGUF_VALUE_TYPES,
  ggmlTypeName,
  type GgmlTypeName,
  type GgufScalar,
  type GgufScalarTypeName,
  type GgufTypedValue,
  type GgufValue,
} from './types.ts';

export interface GgufTensorToWrite {
  readonly name: string;
  /** ggml order: dims[0] is the innermost (contiguous) dimension. */
  readonly dims: readonly number[];
  /** A known type, or a raw ggml type id (to write types this build cannot read). */
  readonly typeName: GgmlTypeName | number;
  readonly data: Uint8Array;
}

export interface GgufToWrite {
  readonly metadata: ReadonlyMap<string, GgufValue | GgufTypedValue>;
  readonly tensors: readonly GgufTensorToWrite[];
}

const bad = (message: string): AutoGLMError => new AutoGLMError('invalid_argument', `writeGguf: ${message}`);

/** A growable little-endian byte buffer. */
// Every write reserves first: reserve() may replace buf and view, so they are read after it.
class Bytes {
  buf = new Uint8Array(4096);
  view = new DataView(this.buf.buffer);
  length = 0;

  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, at + n));
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length += n;
    return at;
  }

  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }

  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }

  string(s: string): void {
    const bytes = new TextEncoder().encode(s);
    this.u64(bytes.length);
    const at = this.reserve(bytes.length);
    this.buf.set(bytes, at);
  }
}

type Put = (out: Bytes, v: GgufScalar) => void;

function integer(
  min: number | bigint,
  max: number | bigint,
  size: number,
  set: (d: DataView, at: number, v: number) => void,
): Put {
  return (out, v) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw bad(`${String(v)} does not fit the integer type`);
    const at = out.reserve(size);
    set(out.view, at, v);
  };
}

function wide(signed: boolean): Put {
  return (out, v) => {
    if ((typeof v !== 'number' || !Number.isInteger(v)) && typeof v !== 'bigint')
      throw bad(`${String(v)} is not an integer`);
    const big = BigInt(v);
    const fits = signed ? BigInt.asIntN(64, big) === big : BigInt.asUintN(64, big) === big;
    if (!fits) throw bad(`${String(v)} does not fit 64 bits`);
    const at = out.reserve(8);
    out.view.setBigUint64(at, BigInt.asUintN(64, big), true);
  };
}

function float(size: 4 | 8): Put {
  return (out, v) => {
    if (typeof v !== 'number') throw bad(`${String(v)} is not a number`);
    const at = out.reserve(size);
    if (size === 4) out.view.setFloat32(at, v, true);
    else out.view.setFloat64(at, v, true);
  };
}

const PUT: Record<GgufScalarTypeName, Put> = {
  UINT8: integer(0, 0xff, 1, (d, at, v) => {
    d.setUint8(at, v);
  }),
  INT8: integer(-0x80, 0x7f, 1, (d, at, v) => {
    d.setInt8(at, v);
  }),
  UINT16: integer(0, 0xffff, 2, (d, at, v) => {
    d.setUint16(at, v, true);
  }),
  INT16: integer(-0x8000, 0x7fff, 2, (d, at, v) => {
    d.setInt16(at, v, true);
  }),
  UINT32: integer(0, 0xffffffff, 4, (d, at, v) => {
    d.setUint32(at, v, true);
  }),
  INT32: integer(-0x80000000, 0x7fffffff, 4, (d, at, v) => {
    d.setInt32(at, v, true);
  }),
  UINT64: wide(false),
  INT64: wide(true),
  FLOAT32: float(4),
  FLOAT64: float(8),
  BOOL: (out, v) => {
    if (typeof v !== 'boolean') throw bad(`${String(v)} is not a boolean`);
    const at = out.reserve(1);
    out.buf[at] = v ? 1 : 0;
  },
  STRING: (out, v) => {
    if (typeof v !== 'string') throw bad(`${String(v)} is not a string`);
    out.string(v);
  },
};

function scalarType(v: GgufScalar): GgufScalarTypeName {
  if (typeof v === 'string') return 'STRING';
  if (typeof v === 'boolean') return 'BOOL';
  if (typeof v === 'bigint') return v < 0n ? 'INT64' : 'UINT64';
  if (!Number.isInteger(v)) return 'FLOAT32';
  if (v >= 0) return v <= 0xffffffff ? 'UINT32' : 'UINT64';
  return v >= -0x80000000 ? 'INT32' : 'INT64';
}

function arrayItemType(items: readonly GgufScalar[]): GgufScalarTypeName {
  const types = new Set(items.map(scalarType));
  const only = types.size === 1 ? [...types][0] : undefined;
  if (items.length === 0) return 'INT32';
  if (only !== undefined && only !== 'UINT32') return only;
  const numeric = [...types].every((t) => t !== 'STRING' && t !== 'BOOL');
  if (!numeric) throw bad(`an array mixes ${[...types].join(' and ')} values; give it an explicit item type`);
  if (types.has('FLOAT32')) return 'FLOAT32';
  if (types.has('UINT64') || types.has('INT64')) return 'INT64';
  if (items.every((v) => (v as number) <= 0x7fffffff)) return 'INT32';
  return types.has('INT32') ? 'INT64' : 'UINT32';
}

/** The explicit typing of a value that may be untyped. */
function typedOf(v: GgufValue | GgufTypedValue): GgufTypedValue {
  if (typeof v === 'object' && !Array.isArray(v)) return v as GgufTypedValue;
  if (!Array.isArray(v)) return { type: scalarType(v), value: v };
  const items = v as readonly GgufValue[];
  if (items.length > 0 && items.every((i) => Array.isArray(i))) {
    return { type: 'ARRAY', itemType: 'ARRAY', value: items as readonly (readonly GgufValue[])[] };
  }
  if (items.some((i) => Array.isArray(i))) throw bad('an array mixes arrays and values');
  return {
    type: 'ARRAY',
    itemType: arrayItemType(items as readonly GgufScalar[]),
    value: items as readonly GgufScalar[],
  };
}

function putArrayBody(out: Bytes, tv: GgufTypedValue & { type: 'ARRAY' }): void {
  out.u32(GGUF_VALUE_TYPES[tv.itemType]);
  out.u64(tv.value.length);
  if (tv.itemType !== 'ARRAY') {
    const put = PUT[tv.itemType];
    for (const item of tv.value) put(out, item);
    return;
  }
  for (const item of tv.value) {
    const inner = typedOf(item);
    if (inner.type !== 'ARRAY') throw bad('an array of arrays holds a non-array');
    putArrayBody(out, inner);
  }
}

function putValue(out: Bytes, v: GgufValue | GgufTypedValue): void {
  const tv = typedOf(v);
  out.u32(GGUF_VALUE_TYPES[tv.type]);
  if (tv.type === 'ARRAY') putArrayBody(out, tv);
  else PUT[tv.type](out, tv.value);
}

function alignmentOf(metadata: GgufToWrite['metadata']): number {
  const raw = metadata.get('general.alignment');
  const v = raw === undefined ? undefined : typedOf(raw).value;
  if (v === undefined) return 32;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || (v & (v - 1)) !== 0) {
    throw bad(`general.alignment ${JSON.stringify(v)} is not a power of two`);
  }
  return v;
}

function checkTensor(t: GgufTensorToWrite): number {
  const id = typeof t.typeName === 'number' ? t.typeName : GGML_TYPES[t.typeName];
  if (new TextEncoder().encode(t.name).length > 63)
    throw bad(`tensor name ${t.name} is longer than 63 bytes`);
  if (t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw bad(`tensor ${t.name} has bad dims`);
  const name = ggmlTypeName(id);
  if (name !== undefined) {
    const { blockSize, typeSize } = GGML_TYPE_SIZES[name];
    const count = t.dims.reduce((a, b) => a * b, 1);
    if ((t.dims[0] ?? 1) % blockSize !== 0)
      throw bad(`tensor ${t.name}: ${name} rows must be whole blocks of ${blockSize}`);
    if (t.data.length !== (count / blockSize) * typeSize) {
      throw bad(
        `tensor ${t.name}: ${count} ${name} values take ${(count / blockSize) * typeSize} bytes, not ${t.data.length}`,
      );
    }
  }
  return id;
}

const pad = (n: number, alignment: number): number => (alignment - (n % alignment)) % alignment;

/** The header bytes (through the padding before the data section) and each tensor's data offset. */
function encodeHeader(file: GgufToWrite, version: 2 | 3, alignment: number): Bytes {
  const out = new Bytes();
  out.u32(0x46554747);
  out.u32(version);
  out.u64(file.tensors.length);
  out.u64(file.metadata.size);
  for (const [key, value] of file.metadata) {
    out.string(key);
    putValue(out, value);
  }
  const names = new Set<string>();
  let offset = 0;
  for (const t of file.tensors) {
    if (names.has(t.name)) throw bad(`the tensor name ${t.name} appears twice`);
    names.add(t.name);
    const id = checkTensor(t);
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(id);
    out.u64(offset);
    offset += t.data.length + pad(t.data.length, alignment);
  }
  out.reserve(pad(out.length, alignment));
  return out;
}

/** Writes `file` to `path` (replacing it). */
export async function writeGguf(path: string, file: GgufToWrite, version: 2 | 3 = 3): Promise<void> {
  const alignment = alignmentOf(file.metadata);
  const header = encodeHeader(file, version, alignment);
  const fh = await open(path, 'w');
  try {
    await fh.write(header.buf.subarray(0, header.length));
    for (const t of file.tensors) {
      await fh.write(t.data);
      const n = pad(t.data.length, alignment);
      if (n > 0) await fh.write(new Uint8Array(n));
    }
  } catch (err) {
    throw asStorageError(err, path);
  } finally {
    await fh.close();
  }
}
