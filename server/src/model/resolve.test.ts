import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeRandomGguf } from '../../../test/support/gguf-model.ts';
import { randomConfig, randomWeights } from './build/random.ts';
import { resolveModel } from './resolve.ts';

let root = '';
let gguf = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'autoglm-resolve-'));
  process.env['AUTOGLM_HOME'] = join(root, 'home');
  gguf = join(root, 'tiny.gguf');
  await writeRandomGguf(gguf, randomWeights(randomConfig('tiny'), 1), {}, 'Q4_1');
});
after(async () => {
  delete process.env['AUTOGLM_HOME'];
  await rm(root, { recursive: true, force: true });
});

test('a GGUF is built once and reused; a build by another builder version is rebuilt', async () => {
  const first = await resolveModel(gguf);
  const model = join(first.dir, 'onnx', 'model.onnx');
  const built = (await stat(model)).mtimeMs;
  const again = await resolveModel(gguf);
  assert.equal(again.dir, first.dir);
  assert.equal((await stat(model)).mtimeMs, built, 'reused, not rebuilt');

  const configPath = join(first.dir, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as { autoglm: { builder: number } };
  const current = config.autoglm.builder;
  config.autoglm.builder = current - 1;
  await writeFile(configPath, JSON.stringify(config));
  await resolveModel(gguf);
  const rebuilt = JSON.parse(await readFile(configPath, 'utf8')) as { autoglm: { builder: number } };
  assert.equal(rebuilt.autoglm.builder, current);
  assert.ok((await stat(model)).mtimeMs > built, 'rebuilt');
});
