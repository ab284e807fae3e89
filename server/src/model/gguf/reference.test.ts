/**
 * The reader, writer, quantizers and dequantizers against gguf-py, llama.cpp's own Python
 * GGUF library (test/fixtures/gguf_reference.py). Needs the environment that
 * scripts/setup-python.sh creates; without it these tests skip and say so.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoGLMError } from '../../errors.ts';
import { dequantize } from '../quant/dequant.ts';
import { dequantizeQ4, q4FromGguf } from '../quant/int4.ts';
import { quantize } from '../quant/quantize.ts';
import { openGguf } from './reader.ts';
import { isGgmlTypeName, type GgufFile, type GgufTypedValue, type GgufValue } from './types.ts';
import { writeGguf } from './writer.ts';

const HOME = process.env.AUTOGLM_HOME ?? join(homedir(), '.cache', 'autoglm');
const PYTHON = join(HOME, 'pyenv', 'bin', 'python');
const SCRIPT = fileURLToPath(new URL('../../../../test/fixtures/gguf_reference.py', import.meta.url));
const ready = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import gguf, numpy']).status === 0;
const SKIP = ready
  ? false
  : `SKIPPED: no gguf-py reference environment at ${PYTHON}; run scripts/setup-python.sh to create it`;
if (SKIP !== false) console.warn(`\n!!! ${SKIP}\n`);

// CI that ran scripts/setup-python.sh sets AUTOGLM_REQUIRE_PYREF=1, so a broken setup fails instead of skipping
test(
  'the gguf-py reference environment is present when required',
  {
    skip: process.env.AUTOGLM_REQUIRE_PYREF !== '1' && 'set AUTOGLM_REQUIRE_PYREF=1 to require it',
  },
  () => {
    assert.equal(SKIP, false, SKIP === false ? '' : SKIP);
  },
);

interface Manifest {
  metadata: Record<string, unknown>;
  tensors: { name: string; type: string; typeId: number; dims: number[] }[];
}

function python(args: string[]): string {
  const res = spawnSync(PYTHON, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(res.status, 0, `gguf_reference.py ${args[0] ?? ''} failed:\n${res.stderr}`);
  return res.stdout;
}

/** The manifest's JSON, with {"bigint": "..."} turned back into bigints. */
function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (typeof v !== 'object' || v === null) return v;
  if ('bigint' in v && typeof v.bigint === 'string') return BigInt(v.bigint);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)]));
}

async function floats(path: string): Promise<Float32Array> {
  const b = await readFile(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Equal bit patterns, or both NaN. Returns the first index that differs, or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  const ab = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const bb = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    if (ab[i] !== bb[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

describe('against gguf-py, llama.cpp’s reference implementation', { skip: SKIP }, () => {
  let dir = '';
  let manifest: Manifest;
  let file: GgufFile;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoglm-gguf-ref-'));
    python(['write', dir]);
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    file = await openGguf(join(dir, 'ref.gguf'));
  });
  after(async () => {
    await file.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('reads the metadata gguf-py wrote, with its on-disk types', () => {
    assert.equal(file.version, 3);
    assert.equal(file.metadata.get('general.architecture'), 'llama');
    for (const [key, expected] of Object.entries(manifest.metadata)) {
      assert.deepEqual(file.typedMetadata(key), fromJson(expected), key);
    }
  });

  test('reads the tensor infos gguf-py wrote', () => {
    assert.deepEqual(
      file.tensors.map((t) => [t.name, t.type, t.dims]),
      manifest.tensors.map((t) => [t.name, t.typeId, t.dims]),
    );
    for (const t of manifest.tensors) {
      assert.equal(file.tensor(t.name)?.typeName, isGgmlTypeName(t.type) ? t.type : undefined, t.name);
    }
  });

  test('dequantizes every supported type bit for bit as gguf-py does', async () => {
    for (const t of manifest.tensors.filter((x) => !x.name.startsWith('unsupported.'))) {
      const count = (t.dims[0] ?? 0) * (t.dims[1] ?? 0);
      const ours = dequantize(t.type, await file.readRaw(t.name), count);
      const theirs = await floats(join(dir, `${t.name}.f32`));
      const at = firstDifference(ours, theirs);
      assert.equal(at, -1, `${t.name}: element ${at} is ${ours[at]}, gguf-py has ${theirs[at]}`);
    }
  });

  test('quantizes F32, F16, BF16, Q8_0, Q4_0 and Q4_1 to the same bytes as gguf-py', async () => {
    for (const t of manifest.tensors.filter((x) => x.name.startsWith('quant.'))) {
      const src = await floats(join(dir, `${t.name}.src.f32`));
      assert.ok(isGgmlTypeName(t.type));
      assert.deepEqual(quantize(t.type, src), await file.readRaw(t.name), t.name);
    }
  });

  test('repacks gguf-py’s Q4_1 and Q4_0 blocks into MatMulNBits form exactly', async () => {
    for (const type of ['Q4_0', 'Q4_1'] as const) {
      for (const name of [`raw.${type}`, `quant.${type}`]) {
        const info = file.tensor(name);
        assert.ok(info);
        const [cols = 0, rows = 0] = info.dims;
        const raw = await file.readRaw(name);
        const want = dequantize(type, raw, rows * cols);
        const got = dequantizeQ4(q4FromGguf(type, raw, rows, cols));
        for (let b = 0; b < want.length; b += 32) {
          const block = want.subarray(b, b + 32);
          const size = Math.max(...Array.from(block, Math.abs));
          for (let i = b; i < b + 32; i++) {
            const err = Math.abs((got[i] ?? 0) - (want[i] ?? 0));
            assert.ok(err <= 1e-6 * size, `${name}[${i}]: ${got[i]} vs ${want[i]}`);
          }
        }
      }
    }
  });

  test('types AutoGLM cannot read open, then fail naming the type', async () => {
    assert.equal(file.tensor('unsupported.Q5_0')?.typeName, 'Q5_0');
    assert.equal(file.tensor('unsupported.IQ4_NL')?.typeName, undefined);
    for (const [name, label] of [
      ['unsupported.Q5_0', 'Q5_0'],
      ['unsupported.IQ4_NL', 'IQ4_NL'],
    ] as const) {
      const info = file.tensor(name);
      assert.ok(info);
      const raw = await file.readRaw(name);
      assert.throws(
        () => dequantize(info.typeName ?? info.type, raw, 64),
        (e: unknown) =>
          e instanceof AutoGLMError && e.code === 'unsupported_quantization' && e.message.includes(label),
      );
    }
  });

  test('gguf-py reads what our writer writes', async () => {
    const path = join(dir, 'ours.gguf');
    const metadata = new Map<string, GgufValue | GgufTypedValue>([
      ['general.architecture', 'llama'],
      ['llama.block_count', 30],
      ['llama.rope.freq_base', 100000.5],
      ['t.i8', { type: 'INT8', value: -5 }],
      ['t.u64', { type: 'UINT64', value: 2n ** 64n - 1n }],
      ['t.f64', { type: 'FLOAT64', value: 0.1 }],
      ['t.bool', true],
      ['tokenizer.ggml.tokens', ['<s>', 'ü', 'Ġt']],
      ['tokenizer.ggml.token_type', [3, 1, 1]],
    ]);
    const data = quantize(
      'Q4_K',
      new Float32Array(512).map((_, i) => Math.sin(i)),
    );
    await writeGguf(path, { metadata, tensors: [{ name: 'w', dims: [256, 2], typeName: 'Q4_K', data }] });
    const seen = JSON.parse(python(['read', path])) as {
      metadata: Record<string, { types: string[]; value: unknown }>;
      tensors: { name: string; type: string; shape: number[]; data: string }[];
    };
    assert.deepEqual(fromJson(seen.metadata), {
      'general.architecture': { types: ['STRING'], value: 'llama' },
      'llama.block_count': { types: ['UINT32'], value: 30 },
      'llama.rope.freq_base': { types: ['FLOAT32'], value: 100000.5 },
      't.i8': { types: ['INT8'], value: -5 },
      't.u64': { types: ['UINT64'], value: 2n ** 64n - 1n },
      't.f64': { types: ['FLOAT64'], value: 0.1 },
      't.bool': { types: ['BOOL'], value: true },
      'tokenizer.ggml.tokens': { types: ['ARRAY', 'STRING'], value: ['<s>', 'ü', 'Ġt'] },
      'tokenizer.ggml.token_type': { types: ['ARRAY', 'INT32'], value: [3, 1, 1] },
    });
    assert.deepEqual(seen.tensors, [
      { name: 'w', type: 'Q4_K', shape: [256, 2], data: Buffer.from(data).toString('hex') },
    ]);
  });
});
