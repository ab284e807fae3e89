import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureGemmPeak, requestFlops, tokensPerSecondCeiling, type ModelShape } from './ceiling.ts';

const tiny: ModelShape = {
  hidden_size: 4,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 10,
};

test('counts a request by hand: projections, attention over growing context, the head', () => {
  // head dim 2: q 4, kv 2 wide. Per layer 4·(4+2+2) + 4·4 + 3·4·8 = 32 + 16 + 96 = 144 weights.
  // 3 prompt + 2 generated tokens run 4 positions (the last token is never fed back).
  const f = requestFlops(tiny, 3, 2, true);
  assert.equal(f.matmul, 2 * 2 * 144 * 4);
  // Positions attend over 1 + 2 + 3 + 4 = 10 keys, QKᵀ and AV, q-width 4, 2 layers.
  assert.equal(f.attention, 2 * 2 * 2 * 4 * 10);
  // Logits at every prompt position and at each generated one but the last: 3 + 1.
  assert.equal(f.head, 2 * 10 * 4 * 4);
  assert.equal(requestFlops(tiny, 3, 2, false).head, 2 * 10 * 4 * 2);
  assert.equal(f.total, f.matmul + f.attention + f.head);
});

test('the ceiling is the arithmetic rate over the work per request', () => {
  const f = requestFlops(tiny, 3, 2, true);
  assert.equal(tokensPerSecondCeiling(f, 2, f.total / 1e9), 2);
});

test('the measured peaks are real products: positive and finite', async () => {
  for (const precision of ['float32', 'int8'] as const) {
    const p = await measureGemmPeak(1, precision, 64, 2);
    assert.ok(Number.isFinite(p.gflops) && p.gflops > 0, `${precision}: ${p.gflops}`);
    assert.deepEqual([p.m, p.k, p.n], [64, 128, 128]);
  }
});
