import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildRandom } from '../model/build/index.ts';
import { DecoderSession } from '../runtime/decoder.ts';
import { openKvCache } from '../runtime/open-kv.ts';
import { scoreText, tokenNll } from './perplexity.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-ppl-'));
after(() => rm(root, { recursive: true, force: true }));

test('token NLL is the negative log-softmax, stable for large logits', () => {
  const logits = Float32Array.of(1000, 1000, 1000, 1000);
  assert.ok(Math.abs(tokenNll(logits, 2) - Math.log(4)) < 1e-9);
  assert.ok(Math.abs(tokenNll(Float32Array.of(0, Math.log(3)), 1) - Math.log(4 / 3)) < 1e-6);
});

test('chunking does not change a dense perplexity; a KV window does, and bounds the cache', async () => {
  const dir = join(root, 'fast');
  await buildRandom('tiny', dir, { profile: 'fast', precision: 'fp32' }, { seed: 4 });
  const session = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  let params = { kvWindowTokens: 0, kvSinkTokens: 4, headEntropyThreshold: 0, headUpdateInterval: 32 };
  const kv = openKvCache(session, { maxSeqs: 1, capacityTokens: 256, maxModelLen: 256 }, () => params);
  try {
    const ids = Array.from({ length: 120 }, (_, i) => (i * 37 + 11) % 500);
    const whole = await scoreText(kv, ids, 119);
    const chunked = await scoreText(kv, ids, 8);
    assert.equal(whole.tokens, 119);
    assert.ok(Math.abs(whole.nll - chunked.nll) < 1e-4, `${whole.nll} vs ${chunked.nll}`);
    assert.equal(kv.usedTokens(), 0, 'scoring frees its sequence');
    params = { ...params, kvWindowTokens: 24 };
    const windowed = await scoreText(kv, ids, 8);
    assert.ok(windowed.peakCachedTokens <= 28, `${windowed.peakCachedTokens} tokens cached`);
    assert.notEqual(windowed.nll, chunked.nll);
  } finally {
    kv.dispose();
    await session.dispose();
  }
});
