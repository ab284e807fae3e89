/**
 * KV-cache sparsity (StreamingLLM) in the shared-slot cache is exact: decoding with a window
 * gives the logits of a plain cache whose evicted tokens are masked out. The portable
 * profile (present = concat(past, new), an attention mask over every column) computes that
 * reference; the fast profile evicts for real.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildRandom } from '../model/build/index.ts';
import { DecoderSession, type KvState } from './decoder.ts';
import { int64 } from './kv.ts';
import { CapiSession } from './capi/session.ts';
import { CapiSlotStore } from './capi/kv-store.ts';
import { SlotKvCache, type SlotStore } from './kv-slots.ts';
import { NodeSlotStore } from './kv-store-node.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-kv-window-'));
after(() => rm(root, { recursive: true, force: true }));

const PROMPT = [1, 5, 9, 14, 3, 22];
const STEPS = 40;
const SINKS = 2;
const WINDOW = 12;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

const STORES = {
  node: async (dir: string, slots: number, len: number) => {
    const session = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
    return {
      store: new NodeSlotStore(session, slots, len, len) as SlotStore,
      close: () => session.dispose(),
    };
  },
  capi: (dir: string, slots: number, len: number) => {
    const session = CapiSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
    const store: SlotStore = new CapiSlotStore(session, slots, len, len);
    return Promise.resolve({
      store,
      close: () => {
        session.dispose();
        return Promise.resolve();
      },
    });
  },
};

for (const [binding, open] of Object.entries(STORES))
  test(`a windowed shared-slot cache equals a full cache with the evicted tokens masked (${binding})`, async () => {
    const fastDir = join(root, `fast-${binding}`);
    const portableDir = join(root, `portable-${binding}`);
    await buildRandom('tiny', fastDir, { profile: 'fast', precision: 'fp32' }, { seed: 5 });
    await buildRandom('tiny', portableDir, { profile: 'portable', precision: 'fp32' }, { seed: 5 });
    const fast = await open(fastDir, 2, 128);
    const portable = await DecoderSession.open(portableDir, { device: 'cpu', intraOpThreads: 1 });
    const kv = new SlotKvCache(fast.store, () => ({ sinks: SINKS, window: WINDOW }));
    try {
      // Windowed run: the prompt, then one token per step; record what stayed cached.
      const tokens = [...PROMPT];
      kv.allocate('a');
      const got = [(await kv.prefill('a', PROMPT)).slice()];
      const cached = [kv.length('a')];
      for (let t = 0; t < STEPS; t++) {
        const next = (t * 7 + 3) % 60;
        tokens.push(next);
        const [row] = await kv.decode([{ seqId: 'a', token: next }]);
        got.push((row as Float32Array).slice());
        cached.push(kv.length('a'));
        assert.ok(kv.length('a') <= SINKS + WINDOW, `step ${t}: ${kv.length('a')} tokens cached`);
      }
      assert.ok(Math.min(...cached.slice(1)) < Math.max(...cached), 'the window evicted tokens');

      // Reference: every token kept, the evicted ones hidden by the mask at each step.
      let past: KvState | undefined;
      const out = await portable.step({
        batch: 1,
        inputIds: int64(PROMPT),
        attentionMask: new BigInt64Array(PROMPT.length).fill(1n),
        positionIds: int64(PROMPT.map((_, i) => i)),
        past,
      });
      past = out.present;
      const want = [out.logits.subarray((PROMPT.length - 1) * out.vocabSize)];
      for (let t = 0; t < STEPS; t++) {
        const pos = PROMPT.length + t;
        const mask = new BigInt64Array(pos + 1);
        // cached[t + 1] tokens after this step: the sinks, then the newest ones up to this token.
        const recent = (cached[t + 1] ?? 0) - SINKS;
        mask.fill(1n, 0, SINKS);
        mask.fill(1n, pos + 1 - recent, pos + 1);
        const step = await portable.step({
          batch: 1,
          inputIds: int64([tokens[pos] ?? 0]),
          attentionMask: mask,
          positionIds: int64([pos]),
          past,
        });
        past = step.present;
        want.push(step.logits);
      }
      want.forEach((w, i) => {
        const diff = maxAbsDiff(got[i] as Float32Array, w);
        assert.ok(diff < 1e-3, `position ${i}: logits differ by ${diff}`);
      });
    } finally {
      kv.dispose();
      await fast.close();
      await portable.dispose();
    }
  });

test('with a window wider than the sequence nothing changes, and usage stays bounded when it is not', async () => {
  const dir = join(root, 'fast-bounds');
  await buildRandom('tiny', dir, { profile: 'fast', precision: 'fp32' }, { seed: 6 });
  const session = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  let window = { sinks: 4, window: 1000 };
  const windowed = new SlotKvCache(new NodeSlotStore(session, 2, 256, 128), () => window);
  const plain = new SlotKvCache(new NodeSlotStore(session, 2, 256, 128));
  try {
    for (const kv of [windowed, plain]) kv.allocate('s');
    const a = await windowed.prefill('s', PROMPT);
    const b = await plain.prefill('s', PROMPT);
    assert.equal(maxAbsDiff(a, b), 0);
    for (let t = 0; t < 10; t++) {
      const [x] = await windowed.decode([{ seqId: 's', token: t + 2 }]);
      const [y] = await plain.decode([{ seqId: 's', token: t + 2 }]);
      assert.equal(maxAbsDiff(x as Float32Array, y as Float32Array), 0, `step ${t}`);
    }
    // A live change takes effect on the next step.
    window = { sinks: 4, window: 8 };
    await windowed.decode([{ seqId: 's', token: 9 }]);
    assert.ok(windowed.usedTokens() <= 12, `${windowed.usedTokens()} tokens held`);
    assert.equal(plain.usedTokens(), PROMPT.length + 10);
  } finally {
    windowed.dispose();
    plain.dispose();
    await session.dispose();
  }
});
