/**
 * Which binding a model is served through: the C API where it applies (GroupQueryAttention on
 * the CPU), onnxruntime-node where asked or where the C API cannot serve, and a clear refusal
 * when the C API is demanded for a model it cannot run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildRandom } from '../model/build/index.ts';
import { openServingModel, type Binding } from './open-kv.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-open-kv-'));
const fast = join(root, 'fast');
const portable = join(root, 'portable');
const SIZING = { maxSeqs: 2, capacityTokens: 256, maxModelLen: 128 };

before(async () => {
  await buildRandom('tiny', fast, { profile: 'fast', precision: 'fp32' }, { seed: 3 });
  await buildRandom('tiny', portable, { profile: 'portable', precision: 'fp32' }, { seed: 3 });
});
after(() => rm(root, { recursive: true, force: true }));

const open = (dir: string, binding: Binding) =>
  openServingModel(dir, { device: 'cpu', binding, threads: 1 }, SIZING);

test('auto serves a GroupQueryAttention model through the C API, and both bindings agree', async () => {
  const capi = await open(fast, 'auto');
  const node = await open(fast, 'node');
  try {
    assert.equal(capi.binding, 'capi');
    assert.equal(capi.provider, 'cpu');
    assert.equal(capi.layout, 'shared-slots');
    assert.equal(node.binding, 'node');
    for (const m of [capi, node]) m.kv.allocate('s');
    const a = (await capi.kv.prefill('s', [1, 2, 3])).slice();
    const b = await node.kv.prefill('s', [1, 2, 3]);
    assert.ok(
      a.every((x, i) => Math.abs(x - (b[i] ?? NaN)) < 1e-4),
      'same logits',
    );
  } finally {
    await capi.dispose();
    await node.dispose();
  }
});

test('a padded-layout model goes through onnxruntime-node under auto, and capi refuses it', async () => {
  const m = await open(portable, 'auto');
  try {
    assert.equal(m.binding, 'node');
    assert.equal(m.layout, 'padded');
  } finally {
    await m.dispose();
  }
  await assert.rejects(open(portable, 'capi'), /needs a model with GroupQueryAttention/);
  await assert.rejects(
    openServingModel(fast, { device: 'webgpu', binding: 'capi', threads: 1 }, SIZING),
    /runs on cpu or cuda, not webgpu/,
  );
});
