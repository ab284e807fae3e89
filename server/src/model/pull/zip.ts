/**
 * Just enough of the zip format (APPNOTE 6.3) to take one member out of a wheel: the central
 * directory (zip64 included), the local header, and stored or deflated data, streamed to disk
 * with its CRC-32 and sha256 checked on the way. Encrypted members are refused.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw, crc32 } from 'node:zlib';
import { AutoGLMError, asStorageError } from '../../errors.ts';
import type { TransferOptions } from './types.ts';

export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflate. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

function corrupt(path: string, what: string): AutoGLMError {
  return new AutoGLMError('download_failed', `${path} is not a readable zip archive: ${what}`, {
    hint: 'the download may be truncated; run the command again to fetch it afresh',
  });
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

function u64(buf: Buffer, at: number): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('zip64 field beyond 2^53');
  return Number(value);
}

interface Directory {
  readonly offset: number;
  readonly size: number;
  readonly count: number;
}

/** Finds the end-of-central-directory record (and its zip64 form) in the file's tail. */
async function findDirectory(fh: FileHandle, path: string, fileSize: number): Promise<Directory> {
  const tailLength = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT);
  const tailStart = fileSize - tailLength;
  const tail = await readAt(fh, tailStart, tailLength);
  let at = tail.length - EOCD_SIZE;
  while (at >= 0 && tail.readUInt32LE(at) !== SIG_EOCD) at--;
  if (at < 0) throw corrupt(path, 'no end of central directory record');
  const dir = {
    count: tail.readUInt16LE(at + 10),
    size: tail.readUInt32LE(at + 12),
    offset: tail.readUInt32LE(at + 16),
  };
  if (dir.count !== U16_MAX && dir.size !== U32_MAX && dir.offset !== U32_MAX) return dir;
  const locator = await readAt(fh, tailStart + at - 20, 20);
  if (locator.length < 20 || locator.readUInt32LE(0) !== SIG_ZIP64_LOCATOR) {
    throw corrupt(path, 'zip64 locator missing');
  }
  const record = await readAt(fh, u64(locator, 8), 56);
  if (record.length < 56 || record.readUInt32LE(0) !== SIG_ZIP64_EOCD) {
    throw corrupt(path, 'bad zip64 record');
  }
  return { count: u64(record, 32), size: u64(record, 40), offset: u64(record, 48) };
}

/** Applies the zip64 extended-information extra field (id 1) to the fields saturated at 0xffffffff. */
function applyZip64(
  extra: Buffer,
  sizes: { size: number; compressedSize: number; localHeaderOffset: number },
): void {
  for (let at = 0; at + 4 <= extra.length;) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    if (id === 1) {
      let field = at + 4;
      const next = (): number => {
        const value = u64(extra, field);
        field += 8;
        return value;
      };
      if (sizes.size === U32_MAX) sizes.size = next();
      if (sizes.compressedSize === U32_MAX) sizes.compressedSize = next();
      if (sizes.localHeaderOffset === U32_MAX) sizes.localHeaderOffset = next();
      return;
    }
    at += 4 + length;
  }
}

function parseEntries(buf: Buffer, count: number, path: string): ZipEntry[] {
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > buf.length || buf.readUInt32LE(at) !== SIG_CENTRAL) {
      throw corrupt(path, `bad central entry ${i}`);
    }
    const nameLength = buf.readUInt16LE(at + 28);
    const extraLength = buf.readUInt16LE(at + 30);
    const commentLength = buf.readUInt16LE(at + 32);
    const end = at + 46 + nameLength + extraLength;
    if (end > buf.length) throw corrupt(path, `central entry ${i} overruns the directory`);
    const sizes = {
      compressedSize: buf.readUInt32LE(at + 20),
      size: buf.readUInt32LE(at + 24),
      localHeaderOffset: buf.readUInt32LE(at + 42),
    };
    applyZip64(buf.subarray(at + 46 + nameLength, end), sizes);
    entries.push({
      name: buf.toString('utf8', at + 46, at + 46 + nameLength),
      flags: buf.readUInt16LE(at + 8),
      method: buf.readUInt16LE(at + 10),
      crc32: buf.readUInt32LE(at + 16),
      ...sizes,
    });
    at = end + commentLength;
  }
  return entries;
}

/** The archive's table of contents, from its central directory. */
export async function readZipEntries(path: string): Promise<ZipEntry[]> {
  const fh = await open(path, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const dir = await findDirectory(fh, path, fileSize);
    if (dir.offset + dir.size > fileSize) throw corrupt(path, 'central directory beyond the end of the file');
    return parseEntries(await readAt(fh, dir.offset, dir.size), dir.count, path);
  } catch (err) {
    throw err instanceof RangeError ? corrupt(path, err.message) : err;
  } finally {
    await fh.close();
  }
}

/** Where the member's data starts: after its local header, whose name and extra lengths may differ. */
async function dataOffset(path: string, entry: ZipEntry): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const header = await readAt(fh, entry.localHeaderOffset, 30);
    if (header.length < 30 || header.readUInt32LE(0) !== SIG_LOCAL) {
      throw corrupt(path, `bad local header for ${entry.name}`);
    }
    return entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  } finally {
    await fh.close();
  }
}

/** Counts, hashes and CRCs the bytes passing through; refuses more than the directory promised. */
class Digest extends Transform {
  readonly sha256 = createHash('sha256');
  crc = 0;
  bytes = 0;
  readonly #limit: number;
  readonly #report: (done: number) => void;

  constructor(limit: number, report: (done: number) => void) {
    super();
    this.#limit = limit;
    this.#report = report;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      done(new RangeError(`inflates past its recorded size of ${this.#limit} bytes`));
      return;
    }
    this.sha256.update(chunk);
    this.crc = crc32(chunk, this.crc);
    this.#report(this.bytes);
    done(null, chunk);
  }
}

function wrapStreamError(err: unknown, path: string, entry: ZipEntry, dest: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof RangeError || code?.startsWith('Z_') === true) {
    return corrupt(path, `${entry.name}: ${(err as Error).message}`);
  }
  return asStorageError(err, dest);
}

/**
 * Streams one member to `dest` (created or truncated), checking its size and CRC-32 against
 * the directory. Returns the member's sha256. The caller owns `dest` and removes it on failure.
 */
export async function extractZipEntry(
  path: string,
  entry: ZipEntry,
  dest: string,
  opts: TransferOptions = {},
): Promise<string> {
  if ((entry.flags & 1) !== 0) throw corrupt(path, `${entry.name} is encrypted`);
  if (entry.method !== 0 && entry.method !== 8) {
    throw corrupt(
      path,
      `${entry.name} uses compression method ${entry.method}; only stored and deflate are read`,
    );
  }
  const start = await dataOffset(path, entry);
  const digest = new Digest(entry.size, (done) => {
    opts.onProgress?.({ phase: 'extract', file: entry.name, done, total: entry.size });
  });
  const source =
    entry.compressedSize === 0
      ? Readable.from([])
      : createReadStream(path, { start, end: start + entry.compressedSize - 1 });
  const stages = entry.method === 8 ? [createInflateRaw(), digest] : [digest];
  try {
    await pipeline([source, ...stages, createWriteStream(dest)], opts.signal ? { signal: opts.signal } : {});
  } catch (err) {
    throw wrapStreamError(err, path, entry, dest);
  }
  if (digest.bytes !== entry.size) {
    throw corrupt(path, `${entry.name} is ${digest.bytes} bytes, expected ${entry.size}`);
  }
  if (digest.crc !== entry.crc32) throw corrupt(path, `${entry.name} fails its CRC-32 check`);
  return digest.sha256.digest('hex');
}
