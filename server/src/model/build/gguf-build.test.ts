import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { concat, relativeError } from '../../../../test/support/compare.ts';
import { writeRandomGguf } from '../../../../test/support/gguf-model.ts';
import { folderLogits } from '../../../../test/support/logits.ts';
import { AutoGLMError } from '../../errors.ts';
import type { Architecture } from '../config.ts';
import { ggufWeights } from '../gguf/source.ts';
import { ReferenceDecoder } from '../reference.ts';
import { buildFromGguf, loadGgufTensors } from './index.ts';
import type { BuildOptions } from './options.ts';
import { randomConfig, randomWeights } from './random.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-gguf-build-'));
after(() => rm(root, { recursive: true, force: true }));

const IDS = [1, 40, 300, 77, 5, 260, 9, 2];

async function build(name: string, gguf: string, o: BuildOptions): Promise<string> {
  const dir = join(root, name);
  await buildFromGguf(gguf, dir, o);
  return dir;
}

for (const arch of ['llama', 'qwen2'] as Architecture[]) {
  test(`${arch}: names, dimensions and Q/K row order survive GGUF (F32 weights)`, async () => {
    const original = randomWeights(randomConfig('tiny', arch), 11);
    const gguf = join(root, `${arch}-f32.gguf`);
    await writeRandomGguf(gguf, original, {}, 'F32');
    const want = concat(new ReferenceDecoder(original).forward(IDS));
    for (const profile of ['fast', 'portable'] as const) {
      const err = relativeError(
        await folderLogits(await build(`${arch}-f32-${profile}`, gguf, { profile, precision: 'fp32' }), IDS),
        want,
      );
      assert.ok(err < 1e-4, `${profile}: relative error ${err.toExponential(2)}`);
    }
  });
}

describe('quantized GGUF tensors', () => {
  const original = randomWeights(randomConfig('small', 'llama'), 12);
  const gguf = join(root, 'mixed.gguf');
  const types = {
    embed: 'Q8_0',
    lmHead: 'Q8_0',
    q: 'Q4_1',
    k: 'Q4_1',
    v: 'Q4_0',
    o: 'Q6_K',
    gate: 'Q4_K',
    up: 'F16',
    down: 'BF16',
  } as const;

  test('every supported type dequantizes into a graph that matches the reference', async () => {
    await writeRandomGguf(gguf, original, types);
    const src = ggufWeights(await loadGgufTensors(gguf));
    const plain = concat(new ReferenceDecoder(src).forward(IDS));
    const stored = concat(new ReferenceDecoder(src, { quantized: 4 }).forward(IDS));
    for (const profile of ['fast', 'portable'] as const) {
      const fp32 = relativeError(
        await folderLogits(await build(`mixed-fp32-${profile}`, gguf, { profile, precision: 'fp32' }), IDS),
        plain,
      );
      assert.ok(fp32 < 1e-4, `${profile} fp32: ${fp32.toExponential(2)}`);
      const int4 = relativeError(
        await folderLogits(await build(`mixed-int4-${profile}`, gguf, { profile, precision: 'int4' }), IDS),
        stored,
      );
      assert.ok(int4 < 1e-3, `${profile} int4: ${int4.toExponential(2)}`);
    }
  });

  test('Q4_0/Q4_1 map onto int4 blocks exactly: no error beyond the source quantization', async () => {
    const exact = join(root, 'q4.gguf');
    await writeRandomGguf(exact, original, { embed: 'Q8_0', v: 'Q4_0' }, 'Q4_1');
    const src = ggufWeights(await loadGgufTensors(exact));
    // Reference on the plain dequantized GGUF weights: nothing re-quantized.
    const want = concat(new ReferenceDecoder(src).forward(IDS));
    for (const profile of ['fast', 'portable'] as const) {
      const err = relativeError(
        await folderLogits(await build(`q4-int4-${profile}`, exact, { profile, precision: 'int4' }), IDS),
        want,
      );
      assert.ok(err < 1e-5, `${profile}: ${err.toExponential(2)}`);
    }
  });
});

describe('refusals leave nothing behind', () => {
  async function leftovers(): Promise<string[]> {
    return (await readdir(root)).filter((n) => n.startsWith('.'));
  }

  test('an unsupported architecture is refused by name', async () => {
    const gguf = join(root, 'gemma.gguf');
    await writeRandomGguf(gguf, randomWeights(randomConfig('tiny'), 1), {});
    const bytes = await readFile(gguf);
    // Same-length rename of the architecture value: "llama" -> "gemma".
    const at = bytes.indexOf(
      Buffer.from('llama', 'utf8'),
      bytes.indexOf(Buffer.from('general.architecture')),
    );
    bytes.write('gemma', at, 'utf8');
    const renamed = join(root, 'gemma2.gguf');
    await (await import('node:fs/promises')).writeFile(renamed, bytes);
    await assert.rejects(
      build('gemma-out', renamed, { profile: 'fast', precision: 'fp32' }),
      (e: unknown) => {
        assert.ok(e instanceof AutoGLMError);
        assert.equal(e.code, 'unsupported_architecture');
        assert.match(e.message, /gemma/);
        return true;
      },
    );
    await assert.rejects(readdir(join(root, 'gemma-out')), { code: 'ENOENT' });
    assert.deepEqual(await leftovers(), []);
  });

  test('an unsupported tensor type fails the build before anything is renamed into place', async () => {
    const gguf = join(root, 'q5.gguf');
    const src = randomWeights(randomConfig('tiny'), 2);
    await writeRandomGguf(gguf, src, {});
    // Retag the first attn_q tensor as Q5_0 (id 6) by rewriting it with raw bytes of that size.
    const { writeGguf } = await import('../gguf/writer.ts');
    const loaded = await loadGgufTensors(gguf);
    const tensors = loaded.tensors.map((t) => {
      const data = loaded.raw(t.name);
      if (t.name !== 'blk.1.attn_q.weight')
        return { name: t.name, dims: [...t.dims], typeName: t.typeName ?? 'F32', data };
      const blocks = ((t.dims[0] ?? 0) * (t.dims[1] ?? 0)) / 32;
      return { name: t.name, dims: [...t.dims], typeName: 6, data: new Uint8Array(blocks * 22) };
    });
    const bad = join(root, 'q5-bad.gguf');
    await writeGguf(bad, { metadata: loaded.metadata, tensors });
    await assert.rejects(build('q5-out', bad, { profile: 'fast', precision: 'int4' }), (e: unknown) => {
      assert.ok(e instanceof AutoGLMError);
      assert.equal(e.code, 'unsupported_quantization');
      assert.match(e.message, /Q5_0|type 6/);
      return true;
    });
    await assert.rejects(readdir(join(root, 'q5-out')), { code: 'ENOENT' });
    assert.deepEqual(await leftovers(), []);
  });
});
