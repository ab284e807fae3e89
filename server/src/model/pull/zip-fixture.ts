/**
 * Writes small zip archives for tests, byte by byte after APPNOTE 6.3, so the reader is
 * checked against the format rather than against itself. `zip64` stores every size and
 * offset in zip64 extra fields and adds the zip64 end records, as large wheels have.
 */
import { deflateRawSync, crc32 } from 'node:zlib';

export interface ZipInput {
  readonly name: string;
  readonly data: Buffer;
  readonly method?: 'stored' | 'deflate';
}

const U32_MAX = 0xffffffff;

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(value);
  return b;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

function u64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

function zip64Extra(fields: readonly number[]): Buffer {
  return Buffer.concat([u16(1), u16(fields.length * 8), ...fields.map(u64)]);
}

interface Member {
  readonly local: Buffer;
  readonly central: Buffer;
}

/** The local header plus data, and the central directory entry, of one member at `offset`. */
function member(entry: ZipInput, offset: number, zip64: boolean): Member {
  const method = entry.method === 'stored' ? 0 : 8;
  const payload = method === 8 ? deflateRawSync(entry.data) : entry.data;
  const name = Buffer.from(entry.name, 'utf8');
  const sizes = zip64 ? [u32(U32_MAX), u32(U32_MAX)] : [u32(payload.length), u32(entry.data.length)];
  const localExtra = zip64 ? zip64Extra([entry.data.length, payload.length]) : Buffer.alloc(0);
  const centralExtra = zip64 ? zip64Extra([entry.data.length, payload.length, offset]) : Buffer.alloc(0);
  // version needed, flags (UTF-8 names), method, time, date, CRC-32, sizes
  const common = [
    u16(zip64 ? 45 : 20),
    u16(0x0800),
    u16(method),
    u16(0),
    u16(0x21),
    u32(crc32(entry.data)),
    ...sizes,
  ];
  const local = Buffer.concat([
    u32(0x04034b50),
    ...common,
    u16(name.length),
    u16(localExtra.length),
    name,
    localExtra,
  ]);
  // name, extra and comment lengths, disk, internal and external attributes, local header offset
  const tail = [u16(name.length), u16(centralExtra.length), u16(0), u16(0), u16(0), u32(0)];
  const central = Buffer.concat([
    u32(0x02014b50),
    u16(0x031e),
    ...common,
    ...tail,
    u32(zip64 ? U32_MAX : offset),
    name,
    centralExtra,
  ]);
  return { local: Buffer.concat([local, payload]), central };
}

/** The zip64 end record and locator (when asked for), then the classic end record. */
function endRecords(
  count: number,
  dirSize: number,
  dirOffset: number,
  zip64: boolean,
  comment: Buffer,
): Buffer {
  const records: Buffer[] = [];
  if (zip64) {
    const fixed = [
      u16(0x031e),
      u16(45),
      u32(0),
      u32(0),
      u64(count),
      u64(count),
      u64(dirSize),
      u64(dirOffset),
    ];
    records.push(Buffer.concat([u32(0x06064b50), u64(44), ...fixed]));
    records.push(Buffer.concat([u32(0x07064b50), u32(0), u64(dirOffset + dirSize), u32(1)]));
  }
  const shown = zip64 ? 0xffff : count;
  records.push(
    Buffer.concat([
      u32(0x06054b50),
      u16(0),
      u16(0),
      u16(shown),
      u16(shown),
      u32(zip64 ? U32_MAX : dirSize),
      u32(zip64 ? U32_MAX : dirOffset),
      u16(comment.length),
      comment,
    ]),
  );
  return Buffer.concat(records);
}

export function buildZip(
  entries: readonly ZipInput[],
  opts: { zip64?: boolean; comment?: string } = {},
): Buffer {
  const zip64 = opts.zip64 === true;
  const members: Member[] = [];
  let offset = 0;
  for (const entry of entries) {
    const m = member(entry, offset, zip64);
    members.push(m);
    offset += m.local.length;
  }
  const directory = Buffer.concat(members.map((m) => m.central));
  const comment = Buffer.from(opts.comment ?? '', 'utf8');
  const end = endRecords(entries.length, directory.length, offset, zip64, comment);
  return Buffer.concat([...members.map((m) => m.local), directory, end]);
}
