/**
 * The GGUF header (magic, version, counts, metadata, tensor infos) parsed from a prefix of the
 * file held in memory. The parser is synchronous; when the prefix is too short it throws
 * `NeedMoreBytes` and the caller (reader.ts) reads a longer prefix and parses again, so the
 * header is read with a handful of reads and never the whole file.
 *
 * Every length and count is checked before it is used: anything that runs past the end of the
 * file is `gguf_truncated`; values no real file could hold, unknown value types and broken
 * invariants are `gguf_corrupt`. Nothing is allocated in proportion to a count the file claims
 * without the bytes backing it being there first.
 */
import { AutoGLMError } from '../../errors.ts';
import {
  GGUF_VALUE_TYPES,
  type GgufMetadata,
  type GgufScalar,
  type GgufScalarTypeName,
  type GgufValue,
} from './types.ts';

const MAGIC = 0x46554747; // 'GGUF' read as a little-endian u32
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_ARRAY_DEPTH = 8;
const MAX_NAME = 63; // GGML_MAX_NAME less its terminating NUL
/** Lengths beyond this (32 TiB) are garbage whatever the file size: report corrupt, not truncated. */
const ABSURD_BYTES = 2 ** 45;

const REDOWNLOAD = 're-download the model file (an interrupted or damaged download is the usual cause)';

export function truncatedError(path: string, what: string): AutoGLMError {
  return new AutoGLMError('gguf_truncated', `${path}: ${what}; the GGUF file is truncated`, {
    hint: REDOWNLOAD,
  });
}

export function corruptError(path: string, what: string, hint: string = REDOWNLOAD): AutoGLMError {
  return new AutoGLMError('gguf_corrupt', `${path}: ${what}; the GGUF file is corrupt`, { hint });
}

/** Thrown when the in-memory prefix ends before the header does (the file is longer). */
export class NeedMoreBytes extends Error {
  readonly upTo: number;
  constructor(upTo: number) {
    super(`the header continues past byte ${upTo}`);
    this.name = 'NeedMoreBytes';
    this.upTo = upTo;
  }
}

/** How a metadata value was typed on disk, kept so `typedMetadata` can report it. */
export type TypeTag = GgufScalarTypeName | ArrayTag;
export type ArrayTag =
  | { readonly itemType: GgufScalarTypeName }
  | { readonly itemType: 'ARRAY'; readonly items: readonly ArrayTag[] };

export interface RawTensorInfo {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: number;
  /** Relative to the start of the data section. */
  readonly offset: number;
}

export interface ParsedHeader {
  readonly version: 2 | 3;
  readonly metadata: GgufMetadata;
  readonly tags: ReadonlyMap<string, TypeTag>;
  readonly tensors: readonly RawTensorInfo[];
  /** Offset of the first byte after the tensor infos. */
  readonly headerEnd: number;
}

const decoder = new TextDecoder('utf-8');

class Cursor {
  pos = 0;
  /** What is being read, for error messages. */
  context = 'the file header';
  readonly buf: Uint8Array;
  readonly view: DataView;
  readonly fileSize: number;
  readonly path: string;

  constructor(buf: Uint8Array, fileSize: number, path: string) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.fileSize = fileSize;
    this.path = path;
  }

  need(n: number): void {
    const end = this.pos + n;
    if (end <= this.buf.length) return;
    if (end > this.fileSize) {
      throw truncatedError(
        this.path,
        `${this.context} runs past the end of the file (it needs ${end} bytes, the file has ${this.fileSize})`,
      );
    }
    throw new NeedMoreBytes(end);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 length or count that must describe at most ABSURD_BYTES / unitBytes items. */
  count(what: string, unitBytes: number): number {
    const v = this.u64();
    if (v * BigInt(unitBytes) > BigInt(ABSURD_BYTES)) {
      throw this.corrupt(`${what} is ${v}, impossibly large`);
    }
    return Number(v);
  }

  string(what: string): string {
    const len = this.count(`the length of ${what}`, 1);
    this.need(len);
    const s = decodeString(this.buf, this.pos, len);
    this.pos += len;
    return s;
  }

  corrupt(what: string): AutoGLMError {
    return corruptError(this.path, `${what} (in ${this.context}, at byte ${this.pos})`);
  }
}

/** Short pure-ASCII strings (most tokens and keys) are decoded without TextDecoder's call overhead. */
function decodeString(buf: Uint8Array, start: number, len: number): string {
  if (len > 64) return decoder.decode(buf.subarray(start, start + len));
  let s = '';
  for (let i = start; i < start + len; i++) {
    const b = buf[i] ?? 0;
    if (b >= 0x80) return decoder.decode(buf.subarray(start, start + len));
    s += String.fromCharCode(b);
  }
  return s;
}

function safeNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

interface ScalarCodec {
  readonly name: GgufScalarTypeName;
  /** Bytes on disk; for STRING the minimum (its length prefix). */
  readonly size: number;
  read(c: Cursor): GgufScalar;
}

function fixed(name: GgufScalarTypeName, size: number, get: (v: DataView, at: number) => GgufScalar) {
  return {
    name,
    size,
    read(c: Cursor): GgufScalar {
      c.need(size);
      const v = get(c.view, c.pos);
      c.pos += size;
      return v;
    },
  };
}

const SCALARS = new Map<number, ScalarCodec>([
  [GGUF_VALUE_TYPES.UINT8, fixed('UINT8', 1, (v, at) => v.getUint8(at))],
  [GGUF_VALUE_TYPES.INT8, fixed('INT8', 1, (v, at) => v.getInt8(at))],
  [GGUF_VALUE_TYPES.UINT16, fixed('UINT16', 2, (v, at) => v.getUint16(at, true))],
  [GGUF_VALUE_TYPES.INT16, fixed('INT16', 2, (v, at) => v.getInt16(at, true))],
  [GGUF_VALUE_TYPES.UINT32, fixed('UINT32', 4, (v, at) => v.getUint32(at, true))],
  [GGUF_VALUE_TYPES.INT32, fixed('INT32', 4, (v, at) => v.getInt32(at, true))],
  [GGUF_VALUE_TYPES.FLOAT32, fixed('FLOAT32', 4, (v, at) => v.getFloat32(at, true))],
  [GGUF_VALUE_TYPES.UINT64, fixed('UINT64', 8, (v, at) => safeNumber(v.getBigUint64(at, true)))],
  [GGUF_VALUE_TYPES.INT64, fixed('INT64', 8, (v, at) => safeNumber(v.getBigInt64(at, true)))],
  [GGUF_VALUE_TYPES.FLOAT64, fixed('FLOAT64', 8, (v, at) => v.getFloat64(at, true))],
  [
    GGUF_VALUE_TYPES.BOOL,
    {
      name: 'BOOL',
      size: 1,
      read(c: Cursor): boolean {
        const b = c.u8();
        if (b > 1) throw c.corrupt(`a boolean holds ${b}, not 0 or 1`);
        return b === 1;
      },
    },
  ],
  [GGUF_VALUE_TYPES.STRING, { name: 'STRING', size: 8, read: (c: Cursor) => c.string('a string value') }],
]);

function scalarCodec(c: Cursor, type: number): ScalarCodec {
  const codec = SCALARS.get(type);
  if (codec === undefined) throw c.corrupt(`unknown metadata value type ${type}`);
  return codec;
}

interface Read {
  value: GgufValue;
  tag: TypeTag;
}

function readArray(c: Cursor, depth: number): { value: GgufValue[]; tag: ArrayTag } {
  if (depth > MAX_ARRAY_DEPTH) throw c.corrupt(`arrays nested more than ${MAX_ARRAY_DEPTH} deep`);
  const itemType = c.u32();
  if (itemType === GGUF_VALUE_TYPES.ARRAY) {
    // each nested array takes at least 12 bytes (item type and count)
    const n = c.count('the length of an array of arrays', 12);
    const value: GgufValue[] = [];
    const items: ArrayTag[] = [];
    for (let i = 0; i < n; i++) {
      const inner = readArray(c, depth + 1);
      value.push(inner.value);
      items.push(inner.tag);
    }
    return { value, tag: { itemType: 'ARRAY', items } };
  }
  const codec = scalarCodec(c, itemType);
  const n = c.count(`the length of an array of ${codec.name}`, codec.size);
  // the bytes must exist before anything proportional to n is allocated
  c.need(n * codec.size);
  const value: GgufValue[] = new Array<GgufValue>(n);
  for (let i = 0; i < n; i++) value[i] = codec.read(c);
  return { value, tag: { itemType: codec.name } };
}

function readValue(c: Cursor, type: number): Read {
  if (type === GGUF_VALUE_TYPES.ARRAY) return readArray(c, 1);
  const codec = scalarCodec(c, type);
  return { value: codec.read(c), tag: codec.name };
}

function readVersion(c: Cursor): 2 | 3 {
  c.context = 'the file header';
  c.need(4);
  if (c.view.getUint32(0, true) !== MAGIC) {
    const seen = Array.from(c.buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw corruptError(
      c.path,
      `not a GGUF file (it starts with bytes ${seen}, not "GGUF")`,
      'check that the path names a .gguf model file; if it should be one, re-download it',
    );
  }
  c.pos = 4;
  const version = c.u32();
  if (version === 2 || version === 3) return version;
  if (version === 1) {
    throw corruptError(
      c.path,
      'GGUF version 1 (32-bit counts, from 2023) is not supported',
      'download a current GGUF of the model, or convert it again with a recent llama.cpp',
    );
  }
  if (version === 0x02000000 || version === 0x03000000) {
    throw corruptError(c.path, 'big-endian GGUF files are not supported', 'use the little-endian GGUF');
  }
  throw corruptError(c.path, `unknown GGUF version ${version} (AutoGLM reads versions 2 and 3)`);
}

function readMetadata(
  c: Cursor,
  kvCount: number,
): { metadata: Map<string, GgufValue>; tags: Map<string, TypeTag> } {
  const metadata = new Map<string, GgufValue>();
  const tags = new Map<string, TypeTag>();
  for (let i = 0; i < kvCount; i++) {
    c.context = `metadata entry ${i}`;
    const key = c.string('a metadata key');
    c.context = `metadata entry ${i} (${key})`;
    if (metadata.has(key)) throw c.corrupt(`the metadata key ${key} appears twice`);
    const { value, tag } = readValue(c, c.u32());
    metadata.set(key, value);
    tags.set(key, tag);
  }
  return { metadata, tags };
}

function readTensorInfo(c: Cursor, i: number): RawTensorInfo {
  c.context = `tensor info ${i}`;
  const name = c.string('a tensor name');
  c.context = `tensor info ${i} (${name})`;
  if (new TextEncoder().encode(name).length > MAX_NAME) {
    throw c.corrupt(`the tensor name is longer than ggml's ${MAX_NAME} bytes`);
  }
  const nDims = c.u32();
  if (nDims > MAX_DIMS) throw c.corrupt(`the tensor has ${nDims} dimensions, more than ${MAX_DIMS}`);
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    const dim = c.u64();
    elements *= Number(dim);
    if (dim > BigInt(Number.MAX_SAFE_INTEGER) || elements > Number.MAX_SAFE_INTEGER) {
      throw c.corrupt(`the tensor's dimension ${d} is ${dim}, impossibly large`);
    }
    dims.push(Number(dim));
  }
  const type = c.u32();
  const offset = c.count('the tensor data offset', 1);
  return { name, dims, type, offset };
}

/** Parses the header from `buf`, a prefix of a file of `fileSize` bytes. */
export function parseHeader(buf: Uint8Array, fileSize: number, path: string): ParsedHeader {
  const c = new Cursor(buf, fileSize, path);
  const version = readVersion(c);
  // a tensor info takes at least 24 bytes, a metadata entry at least 13
  const tensorCount = c.count('the tensor count', 24);
  const kvCount = c.count('the metadata entry count', 13);
  const { metadata, tags } = readMetadata(c, kvCount);
  const tensors: RawTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) tensors.push(readTensorInfo(c, i));
  return { version, metadata, tags, tensors, headerEnd: c.pos };
}
