/**
 * Head gating on real onnxruntime: a gated build with every head on is the ungated model;
 * each row computes only its own heads; a head switched off changes the output as zeroing
 * its attention output would; and the HeadGate measures, gates and counts what it skipped.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ort from 'onnxruntime-node';
import { buildRandom } from '../model/build/index.ts';
import { DecoderSession, floatData } from './decoder.ts';
import { int64 } from './kv.ts';
import { openKvCache } from './open-kv.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-head-gate-'));
let gated: DecoderSession;
let plain: DecoderSession;
before(async () => {
  const options = { seed: 9 };
  await buildRandom(
    'tiny',
    join(root, 'gated'),
    { profile: 'fast', precision: 'fp32', headGating: true },
    options,
  );
  await buildRandom('tiny', join(root, 'plain'), { profile: 'portable', precision: 'fp32' }, options);
  gated = await DecoderSession.open(join(root, 'gated'), { device: 'cpu', intraOpThreads: 1 });
  plain = await DecoderSession.open(join(root, 'plain'), { device: 'cpu', intraOpThreads: 1 });
});
after(async () => {
  await gated.dispose();
  await plain.dispose();
  await rm(root, { recursive: true, force: true });
});

const IDS = [
  [3, 17, 42, 8, 99, 5],
  [7, 7, 120, 64, 2, 31],
];
const LAYERS = 2;
const HEADS = 4;

function feeds(rows: number[][], heads?: number[][][]): Record<string, ort.Tensor> {
  const seq = rows[0]?.length ?? 0;
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', int64(rows.flat()), [rows.length, seq]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(rows.length * seq).fill(1n), [
      rows.length,
      seq,
    ]),
    position_ids: new ort.Tensor('int64', int64(rows.flatMap((r) => r.map((_, i) => i))), [rows.length, seq]),
  };
  for (let l = 0; l < LAYERS; l++) {
    for (const kv of ['key', 'value'])
      f[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [
        rows.length,
        2,
        0,
        16,
      ]);
    if (heads !== undefined) {
      const lists = heads.map((h) => h[l] ?? []);
      const width = lists[0]?.length ?? 0;
      f[`head_index.${l}`] = new ort.Tensor('int64', int64(lists.flat()), [rows.length, width]);
    }
  }
  return f;
}

async function logits(s: DecoderSession, rows: number[][], heads?: number[][][]): Promise<Float32Array> {
  const out = await s.run(feeds(rows, heads));
  return floatData(out['logits'] as ort.Tensor);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

const all = [0, 1, 2, 3];

test('with every head on, a gated build computes the ungated model', async () => {
  const want = await logits(plain, IDS);
  const got = await logits(gated, IDS, [
    [all, all],
    [all, all],
  ]);
  assert.ok(maxDiff(got, want) < 1e-4, `differs by ${maxDiff(got, want)}`);
});

test('rows compute their own heads, and a repeated head changes nothing', async () => {
  const row0 = [[0, 2], [1]];
  const row1 = [[3, 3], [0]];
  const alone0 = await logits(gated, [IDS[0] as number[]], [[[0, 2], [1]]]);
  const alone1 = await logits(gated, [IDS[1] as number[]], [[[3], [0]]]);
  // Batched, the second row's lists are padded to the first's width by repeating a head.
  const both = await logits(gated, IDS, [row0, row1]);
  const half = both.length / 2;
  assert.ok(maxDiff(both.subarray(0, half), alone0) < 1e-5);
  assert.ok(maxDiff(both.subarray(half), alone1) < 1e-5);
  const dense = await logits(gated, [IDS[0] as number[]], [[all, all]]);
  assert.ok(maxDiff(alone0, dense) > 1e-3, 'skipping heads changes the output');
});

test('entropies are normalized: 0 for a query that sees one key, within [0, 1] otherwise', async () => {
  const out = await gated.run(
    feeds(IDS, [
      [all, all],
      [all, all],
    ]),
  );
  for (let l = 0; l < LAYERS; l++) {
    const e = out[`attn_entropy.${l}`];
    assert.ok(e !== undefined);
    assert.deepEqual(e.dims, [2, HEADS]);
    for (const v of e.data as Float32Array) assert.ok(v >= 0 && v <= 1 + 1e-6, `entropy ${v}`);
  }
  const first = await gated.run(
    feeds(
      [[5], [9]],
      [
        [all, all],
        [all, all],
      ],
    ),
  );
  for (const v of first['attn_entropy.0']?.data as Float32Array) assert.ok(Math.abs(v) < 1e-6);
});

test('the HeadGate measures every interval, skips heads above the threshold, and counts the work', async () => {
  let params = { kvWindowTokens: 0, kvSinkTokens: 0, headEntropyThreshold: 0, headUpdateInterval: 4 };
  const dense = openKvCache(plain, { maxSeqs: 2, capacityTokens: 256, maxModelLen: 128 });
  const kv = openKvCache(gated, { maxSeqs: 2, capacityTokens: 256, maxModelLen: 128 }, () => params);
  try {
    for (const c of [dense, kv]) {
      c.allocate('a');
      await c.prefill('a', IDS[0] as number[]);
    }
    // Threshold 0: the gated model decodes exactly as the dense one, every head computed.
    for (let t = 0; t < 3; t++) {
      const [x] = await kv.decode([{ seqId: 'a', token: t + 10 }]);
      const [y] = await dense.decode([{ seqId: 'a', token: t + 10 }]);
      assert.ok(maxDiff(x as Float32Array, y as Float32Array) < 1e-4, `step ${t}`);
    }
    const before = kv.attentionWork();
    assert.equal(before.computed, before.total);
    assert.equal(before.total, (IDS[0]?.length ?? 0) * LAYERS * HEADS + 3 * LAYERS * HEADS);
    // A threshold above every head's entropy leaves one head per layer once measured: one
    // step with all heads, then three with one head per layer, then a measurement again.
    params = { ...params, headEntropyThreshold: 1 };
    for (let t = 0; t < 5; t++) {
      const [x] = await kv.decode([{ seqId: 'a', token: t + 20 }]);
      assert.ok((x as Float32Array).every(Number.isFinite));
    }
    const w = kv.attentionWork();
    assert.equal(w.total - before.total, 5 * LAYERS * HEADS);
    assert.equal(w.computed - before.computed, 2 * LAYERS * HEADS + 3 * LAYERS);
  } finally {
    dense.dispose();
    kv.dispose();
  }
});
