/**
 * ONNX model structures and their serialization (onnx.proto field numbers). A model whose
 * weights would push the protobuf past its 2 GB limit stores them in an external data file
 * next to it, the layout ONNX Runtime and transformers.js load.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { MessageWriter, type Encoded } from './proto.ts';

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
  UINT4: 21,
  INT4: 22,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

export interface TensorDef {
  readonly name: string;
  readonly dataType: DataType;
  readonly dims: readonly number[];
  /** Little-endian raw bytes, as onnx's raw_data. */
  readonly raw: Uint8Array;
}

export type AttributeValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: TensorDef };

export interface NodeDef {
  readonly opType: string;
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttributeValue>>;
}

export interface ValueInfo {
  readonly name: string;
  readonly elemType: DataType;
  /** A number is a fixed size; a string names a symbolic dimension. */
  readonly shape: readonly (number | string)[];
}

export interface GraphDef {
  readonly name: string;
  readonly nodes: readonly NodeDef[];
  readonly initializers: readonly TensorDef[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

export interface ModelDef {
  readonly irVersion: number;
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly graph: GraphDef;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Where an initializer's bytes live when they are not inline. */
interface ExternalRef {
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

function encodeTensor(t: TensorDef, external?: ExternalRef): Encoded {
  const w = new MessageWriter().packedInts(1, t.dims).int(2, t.dataType).string(8, t.name);
  if (external === undefined) {
    w.bytes(9, t.raw);
    return w.done();
  }
  const entry = (k: string, v: string): Encoded => new MessageWriter().string(1, k).string(2, v).done();
  w.message(13, entry('location', external.location));
  w.message(13, entry('offset', String(external.offset)));
  w.message(13, entry('length', String(external.length)));
  w.int(14, 1);
  return w.done();
}

const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function encodeAttribute(name: string, a: AttributeValue): Encoded {
  const w = new MessageWriter().string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, encodeTensor(a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
  }
  return w.int(20, ATTRIBUTE_TYPE[a.kind]).done();
}

function encodeNode(n: NodeDef): Encoded {
  const w = new MessageWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes)) w.message(5, encodeAttribute(k, v));
  if (n.domain !== '') w.string(7, n.domain);
  return w.done();
}

function encodeValueInfo(v: ValueInfo): Encoded {
  const shape = new MessageWriter();
  for (const d of v.shape) {
    const dim = typeof d === 'number' ? new MessageWriter().int(1, d) : new MessageWriter().string(2, d);
    shape.message(1, dim.done());
  }
  const tensorType = new MessageWriter().int(1, v.elemType).message(2, shape.done()).done();
  const type = new MessageWriter().message(1, tensorType).done();
  return new MessageWriter().string(1, v.name).message(2, type).done();
}

function encodeModel(m: ModelDef, externals: ReadonlyMap<string, ExternalRef>): Encoded {
  const g = new MessageWriter();
  for (const n of m.graph.nodes) g.message(1, encodeNode(n));
  g.string(2, m.graph.name);
  for (const t of m.graph.initializers) g.message(5, encodeTensor(t, externals.get(t.name)));
  for (const i of m.graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of m.graph.outputs) g.message(12, encodeValueInfo(o));
  const w = new MessageWriter().int(1, m.irVersion).string(2, m.producerName).string(3, m.producerVersion);
  w.message(7, g.done());
  for (const o of m.opsets) w.message(8, new MessageWriter().string(1, o.domain).int(2, o.version).done());
  for (const [k, v] of Object.entries(m.metadata)) {
    w.message(14, new MessageWriter().string(1, k).string(2, v).done());
  }
  return w.done();
}

/** Protobuf's hard limit is 2 GiB; stay well under it. */
export const INLINE_LIMIT_BYTES = 1_900_000_000;
const EXTERNAL_ALIGN = 4096;
const SMALL_TENSOR_BYTES = 1024;

async function writeChunks(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const fh = await open(path, 'w');
  try {
    // Batch small chunks so a graph with a million tiny fields is not a million syscalls.
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    for (const c of chunks) {
      batch.push(c);
      batchBytes += c.byteLength;
      if (batchBytes >= 1 << 22 || batch.length >= 1024) {
        await fh.writev(batch);
        batch = [];
        batchBytes = 0;
      }
    }
    if (batch.length > 0) await fh.writev(batch);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface WriteResult {
  readonly modelBytes: number;
  readonly externalDataFile?: string;
  readonly externalDataBytes: number;
}

/**
 * Writes `m` to `path`. Weights go to `<path>_data` when `external` is true or the model
 * would exceed the protobuf limit; tensors of a kilobyte or less always stay inline.
 */
export async function writeModel(path: string, m: ModelDef, external?: boolean): Promise<WriteResult> {
  const total = m.graph.initializers.reduce((n, t) => n + t.raw.byteLength, 0);
  const useExternal = external ?? total > INLINE_LIMIT_BYTES;
  const externals = new Map<string, ExternalRef>();
  const dataChunks: Uint8Array[] = [];
  const location = `${basename(path)}_data`;
  let offset = 0;
  if (useExternal) {
    for (const t of m.graph.initializers) {
      if (t.raw.byteLength <= SMALL_TENSOR_BYTES) continue;
      const pad = (EXTERNAL_ALIGN - (offset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
      if (pad > 0) dataChunks.push(new Uint8Array(pad));
      offset += pad;
      externals.set(t.name, { location, offset, length: t.raw.byteLength });
      dataChunks.push(t.raw);
      offset += t.raw.byteLength;
    }
  }
  const encoded = encodeModel(m, externals);
  if (encoded.length >= 2 ** 31) {
    throw new RangeError(`model graph is ${encoded.length} bytes, over protobuf's 2 GiB limit`);
  }
  await writeChunks(path, encoded.chunks);
  if (externals.size === 0) return { modelBytes: encoded.length, externalDataBytes: 0 };
  await writeChunks(`${path}_data`, dataChunks);
  return { modelBytes: encoded.length, externalDataFile: location, externalDataBytes: offset };
}
