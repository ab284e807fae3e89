/**
 * Damaged files: every one must fail with gguf_truncated or gguf_corrupt (never a RangeError,
 * a hang or a huge allocation), and the message must say what is wrong. The files are built
 * byte by byte here, independently of writer.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoGLMError, type ErrorCode } from '../../errors.ts';
import { openGguf } from './reader.ts';

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const u64 = (n: number | bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
};
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const str = (s: string): Uint8Array => {
  const b = new TextEncoder().encode(s);
  return cat(u64(b.length), b);
};
const MAGIC = new TextEncoder().encode('GGUF');

const kvU32 = (key: string, v: number) => cat(str(key), u32(4), u32(v));
const kvStr = (key: string, v: string) => cat(str(key), u32(8), str(v));
const kvStrings = (key: string, items: string[]) =>
  cat(str(key), u32(9), u32(8), u64(items.length), ...items.map(str));
const info = (name: string, dims: (number | bigint)[], type: number, offset: number | bigint) =>
  cat(str(name), u32(dims.length), ...dims.map(u64), u32(type), u64(offset));

interface Parts {
  version?: number;
  kvs?: Uint8Array[];
  infos?: Uint8Array[];
  counts?: [number | bigint, number | bigint];
  data?: Uint8Array;
}

/** A GGUF file: header, metadata, tensor infos, padding to 32, data. */
function gguf(p: Parts = {}): Uint8Array {
  const kvs = p.kvs ?? [
    kvStr('general.architecture', 'llama'),
    kvStrings('tokenizer.ggml.tokens', ['a', 'bc']),
  ];
  const infos = p.infos ?? [info('a', [8], 0, 0), info('b', [32, 2], 8, 32)];
  const [tensors, kv] = p.counts ?? [infos.length, kvs.length];
  const head = cat(MAGIC, u32(p.version ?? 3), u64(tensors), u64(kv), ...kvs, ...infos);
  const data = p.data ?? new Uint8Array(32 + 68).map((_, i) => i);
  return cat(head, new Uint8Array((32 - (head.length % 32)) % 32), data);
}

let dir = '';
let n = 0;
async function openBytes(bytes: Uint8Array) {
  dir ||= await mkdtemp(join(tmpdir(), 'autoglm-gguf-bad-'));
  const path = join(dir, `f${n++}.gguf`);
  await writeFile(path, bytes);
  return openGguf(path);
}

async function expectError(bytes: Uint8Array, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(openBytes(bytes), (e: unknown) => {
    assert.ok(e instanceof AutoGLMError, `not an AutoGLMError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    assert.ok(e.hint !== undefined && e.hint.length > 0, 'a hint says what to do');
    return true;
  });
}

test.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the hand-built file is valid', async () => {
  await using f = await openBytes(gguf());
  assert.deepEqual(
    f.tensors.map((t) => [t.name, t.typeName, t.byteLength]),
    [
      ['a', 'F32', 32],
      ['b', 'Q8_0', 68],
    ],
  );
  assert.deepEqual(f.metadata.get('tokenizer.ggml.tokens'), ['a', 'bc']);
});

test('a file cut short anywhere before the end of the tensor data is gguf_truncated', async () => {
  const whole = gguf();
  for (let len = 0; len < whole.length; len++) {
    await expectError(whole.subarray(0, len), 'gguf_truncated', /truncated/);
  }
});

test('a file that is not GGUF, or a GGUF version we do not read, is gguf_corrupt', async () => {
  const bad = gguf();
  bad.set(new TextEncoder().encode('GGML'), 0);
  await expectError(bad, 'gguf_corrupt', /not a GGUF file/);
  await expectError(new TextEncoder().encode('{"model_type": "llama", "padding": "...."}'), 'gguf_corrupt');
  await expectError(gguf({ version: 1 }), 'gguf_corrupt', /version 1 .* not supported/);
  await expectError(gguf({ version: 4 }), 'gguf_corrupt', /unknown GGUF version 4/);
  await expectError(gguf({ version: 0x03000000 }), 'gguf_corrupt', /big-endian/);
});

test('impossible counts and lengths are gguf_corrupt, and nothing huge is allocated', async () => {
  await expectError(gguf({ counts: [2n ** 63n, 1] }), 'gguf_corrupt', /tensor count .* impossibly large/);
  await expectError(gguf({ counts: [2, 2n ** 62n] }), 'gguf_corrupt', /metadata entry count/);
  const longKey = cat(u64(2n ** 60n), new Uint8Array(4));
  await expectError(gguf({ kvs: [longKey] }), 'gguf_corrupt', /length of a metadata key/);
  const longArray = cat(str('x'), u32(9), u32(0), u64(2n ** 61n));
  await expectError(gguf({ kvs: [longArray] }), 'gguf_corrupt', /array of UINT8/);
  // plausible but more than the file holds: reported as truncated, after no large allocation
  const bigArray = cat(str('x'), u32(9), u32(8), u64(1e9));
  await expectError(gguf({ kvs: [bigArray] }), 'gguf_truncated');
});

test('malformed metadata is gguf_corrupt', async () => {
  await expectError(
    gguf({ kvs: [cat(str('x'), u32(13), u32(0))] }),
    'gguf_corrupt',
    /unknown metadata value type 13/,
  );
  await expectError(gguf({ kvs: [cat(str('x'), u32(9), u32(99), u64(1))] }), 'gguf_corrupt', /value type 99/);
  await expectError(gguf({ kvs: [cat(str('x'), u32(7), new Uint8Array([2]))] }), 'gguf_corrupt', /boolean/);
  await expectError(gguf({ kvs: [kvU32('x', 1), kvU32('x', 2)] }), 'gguf_corrupt', /appears twice/);
  let nested = cat(u32(0), u64(0));
  for (let i = 0; i < 10; i++) nested = cat(u32(9), u64(1), nested);
  await expectError(gguf({ kvs: [cat(str('deep'), u32(9), nested)] }), 'gguf_corrupt', /nested/);
  await expectError(gguf({ kvs: [kvU32('general.alignment', 24)] }), 'gguf_corrupt', /alignment/);
  await expectError(gguf({ kvs: [kvStr('general.alignment', '32')] }), 'gguf_corrupt', /alignment/);
});

test('malformed tensor infos and data layouts are gguf_corrupt, or gguf_truncated past the end', async () => {
  const a = info('a', [8], 0, 0);
  await expectError(gguf({ infos: [a, info('b', [1, 1, 1, 1, 32], 8, 32)] }), 'gguf_corrupt', /5 dimensions/);
  await expectError(
    gguf({ infos: [a, info('b', [2n ** 40n, 2n ** 40n], 0, 32)] }),
    'gguf_corrupt',
    /impossibly large/,
  );
  await expectError(
    gguf({ infos: [a, info('b', [32, 2], 8, 36)] }),
    'gguf_corrupt',
    /not a multiple of the alignment/,
  );
  await expectError(gguf({ infos: [a, info('a', [32, 2], 8, 32)] }), 'gguf_corrupt', /appears twice/);
  await expectError(
    gguf({ infos: [a, info('b'.repeat(64), [32, 2], 8, 32)] }),
    'gguf_corrupt',
    /tensor name is longer/,
  );
  await expectError(
    gguf({ infos: [info('a', [16], 0, 0), info('b', [32, 2], 8, 32)] }),
    'gguf_corrupt',
    /overlap/,
  );
  await expectError(gguf({ infos: [a, info('b', [33, 2], 2, 32)] }), 'gguf_corrupt', /not a multiple of 32/);
  await expectError(gguf({ infos: [a, info('b', [32, 2], 8, 2n ** 40n)] }), 'gguf_truncated', /tensor b/);
  await expectError(
    gguf({ infos: [a, info('b', [32, 2], 8, 2n ** 60n)] }),
    'gguf_corrupt',
    /impossibly large/,
  );
  await expectError(
    gguf({ infos: [a, info('b', [32, 4], 8, 32)] }),
    'gguf_truncated',
    /tensor b needs bytes/,
  );
});

test('random damage never escapes as anything but an AutoGLMError', async () => {
  const whole = gguf();
  let seed = 12345;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % k;
  };
  let opened = 0;
  for (let i = 0; i < 400; i++) {
    const bytes = whole.slice();
    for (let j = 0; j <= rand(4); j++) bytes[rand(bytes.length)] = rand(256);
    try {
      const f = await openBytes(bytes);
      await f.close();
      opened++;
    } catch (e) {
      assert.ok(e instanceof AutoGLMError, `damage ${i} escaped as ${String(e)}`);
      assert.ok(e.code === 'gguf_corrupt' || e.code === 'gguf_truncated', e.code);
    }
  }
  assert.ok(opened > 0 && opened < 400);
});
