import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoGLMError } from '../../errors.ts';
import { dequantize } from '../quant/dequant.ts';
import { quantize } from '../quant/quantize.ts';
import { openGguf } from './reader.ts';
import type { GgmlTypeName, GgufFile, GgufTypedValue, GgufValue } from './types.ts';
import { writeGguf, type GgufTensorToWrite } from './writer.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'autoglm-gguf-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const TYPED: [string, GgufTypedValue][] = [
  ['t.u8', { type: 'UINT8', value: 255 }],
  ['t.i8', { type: 'INT8', value: -128 }],
  ['t.u16', { type: 'UINT16', value: 65535 }],
  ['t.i16', { type: 'INT16', value: -32768 }],
  ['t.u32', { type: 'UINT32', value: 4294967295 }],
  ['t.i32', { type: 'INT32', value: -2147483648 }],
  ['t.f32', { type: 'FLOAT32', value: Math.fround(0.1) }],
  ['t.f64', { type: 'FLOAT64', value: 0.1 }],
  ['t.u64', { type: 'UINT64', value: 2n ** 64n - 1n }],
  ['t.u64small', { type: 'UINT64', value: 12 }],
  ['t.i64', { type: 'INT64', value: -(2n ** 63n) }],
  ['t.bool', { type: 'BOOL', value: true }],
  ['t.string', { type: 'STRING', value: 'héllo 🦙 <|im_start|>' }],
  ['t.u8s', { type: 'ARRAY', itemType: 'UINT8', value: [0, 1, 255] }],
  ['t.f64s', { type: 'ARRAY', itemType: 'FLOAT64', value: [0.1, -1e300] }],
  ['t.i64s', { type: 'ARRAY', itemType: 'INT64', value: [-1, 2n ** 62n] }],
  ['t.emptys', { type: 'ARRAY', itemType: 'STRING', value: [] }],
  [
    't.nested',
    {
      type: 'ARRAY',
      itemType: 'ARRAY',
      value: [
        { type: 'ARRAY', itemType: 'UINT16', value: [1, 2] },
        { type: 'ARRAY', itemType: 'ARRAY', value: [{ type: 'ARRAY', itemType: 'BOOL', value: [false] }] },
      ],
    },
  ],
];

/** Untyped JS values and the on-disk type the writer should choose for each. */
const DEFAULTS: [string, GgufValue, GgufTypedValue['type'], string?][] = [
  ['d.count', 30, 'UINT32'],
  ['d.big', 2 ** 40, 'UINT64'],
  ['d.neg', -3, 'INT32'],
  ['d.bigneg', -(2 ** 40), 'INT64'],
  ['d.eps', 1e-5, 'FLOAT32'],
  ['d.bigint', 5n, 'UINT64'],
  ['d.name', 'llama', 'STRING'],
  ['d.flag', false, 'BOOL'],
  ['d.tokens', ['a', 'b'], 'ARRAY', 'STRING'],
  ['d.types', [1, 3, 6], 'ARRAY', 'INT32'],
  ['d.wide', [1, 2 ** 32 - 1], 'ARRAY', 'UINT32'],
  ['d.scores', [0.5, -1], 'ARRAY', 'FLOAT32'],
  ['d.bools', [true], 'ARRAY', 'BOOL'],
  ['d.empty', [], 'ARRAY', 'INT32'],
  ['d.nested', [[1], ['x']], 'ARRAY', 'ARRAY'],
];

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = (s / 2 ** 31 - 0.5) * 4;
  }
  return out;
}

const TYPES: GgmlTypeName[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q6_K'];

function tensorsToWrite(): GgufTensorToWrite[] {
  const tensors: GgufTensorToWrite[] = TYPES.map((typeName, i) => ({
    name: `t.${typeName}`,
    dims: [256, 3],
    typeName,
    data: quantize(typeName, values(768, i + 1)),
  }));
  tensors.push({ name: 'norm', dims: [7], typeName: 'F32', data: quantize('F32', values(7, 99)) });
  tensors.push({ name: 'odd', dims: [5], typeName: 77, data: new Uint8Array([1, 2, 3, 4, 5]) });
  return tensors;
}

function checkMetadata(f: GgufFile, written: ReadonlyMap<string, unknown>): void {
  assert.deepEqual([...f.metadata.keys()], [...written.keys()]);
  for (const [key, tv] of TYPED) assert.deepEqual(f.typedMetadata(key), tv, key);
  assert.equal(f.metadata.get('t.u64'), 2n ** 64n - 1n);
  assert.equal(f.metadata.get('t.u64small'), 12);
  for (const [key, value, type, itemType] of DEFAULTS) {
    const got = f.typedMetadata(key);
    assert.ok(got, key);
    assert.equal(got.type, type, key);
    if (itemType !== undefined) assert.equal(got.type === 'ARRAY' ? got.itemType : '', itemType, key);
    // floats come back rounded to float32, safe 64-bit integers as numbers
    const float = type === 'FLOAT32' ? Math.fround(value as number) : value;
    assert.deepEqual(f.metadata.get(key), typeof value === 'bigint' ? Number(value) : float, key);
  }
  assert.equal(f.typedMetadata('missing'), undefined);
}

async function checkTensors(f: GgufFile, written: readonly GgufTensorToWrite[]): Promise<void> {
  assert.deepEqual(
    f.tensors.map((t) => t.name),
    written.map((t) => t.name),
  );
  for (const t of written) {
    const info = f.tensor(t.name);
    assert.ok(info, t.name);
    assert.deepEqual(info.dims, t.dims);
    assert.equal(info.offset % 32, 0);
    // a type the reader does not know spans up to the next tensor, padding included
    const n = t.data.length;
    assert.deepEqual((await f.readRaw(t.name)).subarray(0, n), t.data, t.name);
    assert.deepEqual(f.readRawSync(t.name).subarray(0, n), t.data, t.name);
  }
  const odd = f.tensor('odd');
  assert.deepEqual([odd?.typeName, odd?.type, odd?.byteLength], [undefined, 77, 32]);
  const q6 = f.tensor('t.Q6_K');
  assert.deepEqual([q6?.typeName, q6?.byteLength], ['Q6_K', 3 * 210]);
}

for (const version of [2, 3] as const) {
  test(`GGUF v${version}: metadata of every type and tensors survive a write and a read`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, 'm.gguf');
      const metadata = new Map<string, GgufValue | GgufTypedValue>(TYPED);
      for (const [key, value] of DEFAULTS) metadata.set(key, value);
      const tensors = tensorsToWrite();
      await writeGguf(path, { metadata, tensors }, version);

      await using f = await openGguf(path);
      assert.equal(f.version, version);
      assert.equal(f.alignment, 32);
      assert.equal(f.dataOffset % 32, 0);
      assert.equal(f.fileSize, (await stat(path)).size);
      checkMetadata(f, metadata);
      await checkTensors(f, tensors);
    });
  });
}

test('tensors dequantize to the values that were quantized', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'm.gguf');
    await writeGguf(path, { metadata: new Map(), tensors: tensorsToWrite() });
    await using f = await openGguf(path);
    const x = await f.readRaw('t.F32');
    assert.deepEqual(dequantize('F32', x, 768), values(768, 1));
    const q8 = dequantize('Q8_0', f.readRawSync('t.Q8_0'), 768);
    const src = values(768, 4);
    q8.forEach((v, i) => {
      assert.ok(Math.abs(v - (src[i] ?? 0)) < 0.01);
    });
  });
});

test('unknown tensor types open but do not dequantize, and name their type', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'm.gguf');
    await writeGguf(path, { metadata: new Map(), tensors: tensorsToWrite() });
    await using f = await openGguf(path);
    const odd = f.tensor('odd');
    assert.ok(odd);
    // unknown size: the span up to the end of the file (it is the last tensor)
    assert.equal(odd.offset + odd.byteLength, f.fileSize);
    assert.throws(
      () => dequantize(odd.type, f.readRawSync('odd'), 5),
      (e: unknown) =>
        e instanceof AutoGLMError && e.code === 'unsupported_quantization' && /77/.test(e.message),
    );
  });
});

test('general.alignment moves the data section and the tensor offsets', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'm.gguf');
    const tensors = [
      { name: 'a', dims: [3], typeName: 'F32' as const, data: quantize('F32', values(3, 1)) },
      { name: 'b', dims: [5], typeName: 'F32' as const, data: quantize('F32', values(5, 2)) },
    ];
    await writeGguf(path, { metadata: new Map([['general.alignment', 64]]), tensors });
    await using f = await openGguf(path);
    assert.equal(f.alignment, 64);
    assert.equal(f.dataOffset % 64, 0);
    assert.equal(f.tensor('b')?.offset, f.dataOffset + 64);
    assert.deepEqual(await f.readRaw('b'), tensors[1]?.data);
  });
});

test('a closed file refuses reads, a second close is harmless, unknown names are an error', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'm.gguf');
    await writeGguf(path, { metadata: new Map(), tensors: tensorsToWrite() });
    const f = await openGguf(path);
    assert.throws(() => f.readRawSync('nope'), { code: 'invalid_argument' });
    await f.close();
    await f.close();
    await assert.rejects(f.readRaw('norm'), AutoGLMError);
    await assert.rejects(openGguf(join(dir, 'absent.gguf')), { code: 'model_not_found' });
  });
});

test('the writer refuses what it cannot write faithfully', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'm.gguf');
    const write = (metadata: Map<string, GgufValue | GgufTypedValue>, tensors: GgufTensorToWrite[] = []) =>
      writeGguf(path, { metadata, tensors });
    await assert.rejects(write(new Map([['x', { type: 'UINT8', value: 256 }]])), {
      code: 'invalid_argument',
    });
    await assert.rejects(write(new Map([['x', { type: 'INT64', value: 2n ** 63n }]])), {
      code: 'invalid_argument',
    });
    await assert.rejects(write(new Map([['x', ['a', 1]]])), { code: 'invalid_argument' });
    await assert.rejects(write(new Map([['general.alignment', 48]])), { code: 'invalid_argument' });
    const t = { name: 'a', dims: [32], typeName: 'Q8_0' as const, data: new Uint8Array(33) };
    await assert.rejects(write(new Map(), [t]), { code: 'invalid_argument' });
    await assert.rejects(
      write(new Map(), [
        { ...t, data: new Uint8Array(34) },
        { ...t, data: new Uint8Array(34) },
      ]),
      {
        code: 'invalid_argument',
      },
    );
  });
});
