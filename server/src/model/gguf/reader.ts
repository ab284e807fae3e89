/**
 * Opens GGUF files (versions 2 and 3, little-endian). The header is parsed and validated at
 * open: see header.ts for the byte-level checks and `layoutTensors` below for the data
 * section (alignment, overlaps, tensors past the end of the file). Tensor data stays on disk
 * until `readRaw` / `readRawSync` reads one tensor.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { readSync } from 'node:fs';
import { AutoGLMError } from '../../errors.ts';
import {
  NeedMoreBytes,
  corruptError,
  parseHeader,
  truncatedError,
  type ArrayTag,
  type ParsedHeader,
  type TypeTag,
} from './header.ts';
import {
  GGML_TYPE_SIZES,
  ggmlTypeName,
  type GgufFile,
  type GgufMetadata,
  type GgufTensorInfo,
  type GgufTypedValue,
  type GgufValue,
  type GgufScalar,
} from './types.ts';

const DEFAULT_ALIGNMENT = 32;
const FIRST_READ = 1 << 20;

/**
 * Opens and validates a GGUF file. Throws `gguf_truncated` or `gguf_corrupt` (with a hint)
 * when the file is damaged, `model_not_found` when there is no file at `path`.
 * Tensors of types this build does not know open fine (`typeName` undefined; their
 * `byteLength` is the span up to the next tensor or the end of the file).
 */
export async function openGguf(path: string): Promise<GgufFile> {
  const fh = await openHandle(path);
  try {
    const { size } = await fh.stat();
    const header = await readHeader(fh, size, path);
    const alignment = readAlignment(header.metadata, path);
    const dataOffset = alignUp(header.headerEnd, alignment);
    const tensors = layoutTensors(header, { path, alignment, dataOffset, fileSize: size });
    return new OpenGgufFile(fh, path, header, tensors, { alignment, dataOffset, fileSize: size });
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function openHandle(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AutoGLMError('model_not_found', `no GGUF file at ${path}`, {
        hint: 'check the path, or pull the model first',
        cause: err,
      });
    }
    throw err;
  }
}

async function readInto(fh: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0)
      throw truncatedError(path, `the file ended while reading bytes ${position + done}..`);
    done += bytesRead;
  }
}

/** Reads a growing prefix of the file until the header parses. */
async function readHeader(fh: FileHandle, size: number, path: string): Promise<ParsedHeader> {
  let buf = new Uint8Array(Math.min(size, FIRST_READ));
  await readInto(fh, buf, 0, path);
  for (;;) {
    try {
      return parseHeader(buf, size, path);
    } catch (err) {
      if (!(err instanceof NeedMoreBytes)) throw err;
      const next = new Uint8Array(Math.min(size, Math.max(buf.length * 2, err.upTo)));
      next.set(buf);
      await readInto(fh, next.subarray(buf.length), buf.length, path);
      buf = next;
    }
  }
}

function readAlignment(metadata: GgufMetadata, path: string): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return DEFAULT_ALIGNMENT;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value <= 0 ||
    value > 2 ** 30 ||
    (value & (value - 1)) !== 0
  ) {
    throw corruptError(path, `general.alignment is ${String(value)}, not a power of two`);
  }
  return value;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

interface Layout {
  readonly path: string;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly fileSize: number;
}

/** Known size of a tensor, or undefined for a type we do not know. */
function knownByteLength(
  dims: readonly number[],
  type: number,
  name: string,
  path: string,
): number | undefined {
  const typeName = ggmlTypeName(type);
  if (typeName === undefined) return undefined;
  const { blockSize, typeSize } = GGML_TYPE_SIZES[typeName];
  const inner = dims[0] ?? 1;
  if (inner % blockSize !== 0) {
    throw corruptError(
      path,
      `tensor ${name} is ${typeName} but its row length ${inner} is not a multiple of ${blockSize}`,
    );
  }
  return (dims.reduce((a, b) => a * b, 1) / blockSize) * typeSize;
}

/** Places every tensor in the file and checks alignment, overlaps and the end of the file. */
function layoutTensors(header: ParsedHeader, layout: Layout): GgufTensorInfo[] {
  const { path, alignment, dataOffset, fileSize } = layout;
  const seen = new Set<string>();
  for (const t of header.tensors) {
    if (seen.has(t.name)) throw corruptError(path, `the tensor name ${t.name} appears twice`);
    seen.add(t.name);
    if (t.offset % alignment !== 0) {
      throw corruptError(
        path,
        `tensor ${t.name}'s data offset ${t.offset} is not a multiple of the alignment ${alignment}`,
      );
    }
  }
  const byOffset = [...header.tensors].sort((a, b) => a.offset - b.offset);
  const infos = new Map<string, GgufTensorInfo>();
  byOffset.forEach((t, i) => {
    const start = dataOffset + t.offset;
    const next = byOffset[i + 1];
    const limit = next === undefined ? Math.max(fileSize, start) : dataOffset + next.offset;
    const byteLength = knownByteLength(t.dims, t.type, t.name, path) ?? limit - start;
    if (next !== undefined && start + byteLength > limit) {
      throw corruptError(path, `tensors ${t.name} and ${next.name} overlap`);
    }
    if (start + byteLength > fileSize) {
      throw truncatedError(
        path,
        `tensor ${t.name} needs bytes up to ${start + byteLength}, but the file has ${fileSize}`,
      );
    }
    infos.set(t.name, {
      name: t.name,
      dims: t.dims,
      type: t.type,
      typeName: ggmlTypeName(t.type),
      offset: start,
      byteLength,
    });
  });
  return header.tensors.map((t) => infos.get(t.name) as GgufTensorInfo);
}

function typed(value: GgufValue, tag: TypeTag): GgufTypedValue {
  if (typeof tag === 'string') return { type: tag, value: value as GgufScalar };
  return typedArray(value as readonly GgufValue[], tag);
}

function typedArray(value: readonly GgufValue[], tag: ArrayTag): GgufTypedValue {
  if ('items' in tag) {
    return {
      type: 'ARRAY',
      itemType: 'ARRAY',
      value: value.map((v, i) =>
        typedArray(v as readonly GgufValue[], tag.items[i] ?? { itemType: 'UINT8' }),
      ),
    };
  }
  return { type: 'ARRAY', itemType: tag.itemType, value: value as readonly GgufScalar[] };
}

class OpenGgufFile implements GgufFile {
  readonly path: string;
  readonly version: 2 | 3;
  readonly metadata: GgufMetadata;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly #fh: FileHandle;
  readonly #byName: ReadonlyMap<string, GgufTensorInfo>;
  readonly #tags: ReadonlyMap<string, TypeTag>;
  #closed = false;

  constructor(
    fh: FileHandle,
    path: string,
    header: ParsedHeader,
    tensors: readonly GgufTensorInfo[],
    layout: { alignment: number; dataOffset: number; fileSize: number },
  ) {
    this.#fh = fh;
    this.path = path;
    this.version = header.version;
    this.metadata = header.metadata;
    this.#tags = header.tags;
    this.tensors = tensors;
    this.#byName = new Map(tensors.map((t) => [t.name, t]));
    this.alignment = layout.alignment;
    this.dataOffset = layout.dataOffset;
    this.fileSize = layout.fileSize;
  }

  tensor(name: string): GgufTensorInfo | undefined {
    return this.#byName.get(name);
  }

  typedMetadata(key: string): GgufTypedValue | undefined {
    const value = this.metadata.get(key);
    const tag = this.#tags.get(key);
    return value === undefined || tag === undefined ? undefined : typed(value, tag);
  }

  #info(name: string): GgufTensorInfo {
    if (this.#closed) throw new AutoGLMError('internal', `${this.path} was read after it was closed`);
    const info = this.#byName.get(name);
    if (info === undefined)
      throw new AutoGLMError('invalid_argument', `${this.path} has no tensor named ${name}`);
    return info;
  }

  async readRaw(name: string): Promise<Uint8Array> {
    const info = this.#info(name);
    const buf = new Uint8Array(info.byteLength);
    await readInto(this.#fh, buf, info.offset, this.path);
    return buf;
  }

  readRawSync(name: string): Uint8Array {
    const info = this.#info(name);
    const buf = new Uint8Array(info.byteLength);
    let done = 0;
    while (done < buf.length) {
      const n = readSync(this.#fh.fd, buf, done, buf.length - done, info.offset + done);
      if (n === 0) throw truncatedError(this.path, `the file ended while reading tensor ${name}`);
      done += n;
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
