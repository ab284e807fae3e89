/**
 * The shared-slot cache gives the same logits over either store: onnxruntime-node's host
 * buffers or the C API binding's. The script moves sequences between slots (decode batches
 * in changing order, a sequence leaving mid-way), grows every slot past its first length with
 * a long prompt and shrinks them again when it leaves: each of those copies cached tokens,
 * and a wrong copy changes the next logits.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildRandom } from '../../model/build/index.ts';
import { DecoderSession } from '../decoder.ts';
import { MIN_LEN, SlotKvCache } from '../kv-slots.ts';
import { NodeSlotStore } from '../kv-store-node.ts';
import { CapiSlotStore } from './kv-store.ts';
import { CapiSession } from './session.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-capi-store-'));
const dir = join(root, 'tiny');
before(() => buildRandom('tiny', dir, { profile: 'fast', precision: 'fp32' }, { seed: 21 }));
after(() => rm(root, { recursive: true, force: true }));

const MAX_LEN = 512;
const TOLERANCE = 1e-4;

type Step =
  | { readonly op: 'prefill'; readonly seq: string; readonly tokens: readonly number[] }
  | { readonly op: 'decode'; readonly seqs: readonly string[] }
  | { readonly op: 'free'; readonly seq: string };

const prompt = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + 1) % 90);

const SCRIPT: readonly Step[] = [
  { op: 'prefill', seq: 'a', tokens: prompt(5, 1) },
  { op: 'prefill', seq: 'b', tokens: prompt(20, 2) },
  { op: 'decode', seqs: ['b', 'a'] },
  { op: 'decode', seqs: ['a', 'b'] },
  // Past the first slot length: every slot is reallocated longer, cached tokens kept.
  { op: 'prefill', seq: 'c', tokens: prompt(MIN_LEN + 20, 3) },
  { op: 'decode', seqs: ['c', 'a', 'b'] },
  { op: 'decode', seqs: ['b', 'c'] },
  { op: 'free', seq: 'a' },
  { op: 'prefill', seq: 'd', tokens: prompt(3, 4) },
  { op: 'decode', seqs: ['d', 'b', 'c'] },
  // The long one leaves: slots shrink back.
  { op: 'free', seq: 'c' },
  { op: 'decode', seqs: ['b', 'd'] },
  { op: 'decode', seqs: ['d', 'b'] },
  { op: 'decode', seqs: ['d'] },
];

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
  return Number.isNaN(worst) ? Infinity : worst;
}

/** Runs one step on a cache; returns copies of the logits it produced. */
async function run(kv: SlotKvCache, step: Step, t: number): Promise<Float32Array[]> {
  switch (step.op) {
    case 'prefill':
      kv.allocate(step.seq);
      return [(await kv.prefill(step.seq, step.tokens)).slice()];
    case 'decode': {
      const rows = await kv.decode(step.seqs.map((seqId, r) => ({ seqId, token: (t * 13 + r * 5) % 90 })));
      return rows.map((r) => r.slice());
    }
    case 'free':
      kv.free(step.seq);
      return [];
  }
}

test('SlotKvCache over the C API store matches it over onnxruntime-node, through moves and resizes', async () => {
  const node = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  const capi = CapiSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  const capiStore = new CapiSlotStore(capi, 4, MAX_LEN, MIN_LEN);
  const reference = new SlotKvCache(new NodeSlotStore(node, 4, MAX_LEN, MIN_LEN));
  const kv = new SlotKvCache(capiStore);
  const lengths = new Set<number>([capiStore.len]);
  try {
    for (const [t, step] of SCRIPT.entries()) {
      const want = await run(reference, step, t);
      const got = await run(kv, step, t);
      lengths.add(capiStore.len);
      want.forEach((w, r) => {
        const d = maxDiff(got[r] as Float32Array, w);
        assert.ok(d <= TOLERANCE, `step ${t} (${step.op}), row ${r}: logits differ by ${d}`);
      });
      assert.equal(kv.usedTokens(), reference.usedTokens(), `step ${t}: tokens held`);
    }
    // The script grew the slots and shrank them again, or it proved less than it claims.
    assert.ok(Math.max(...lengths) > MIN_LEN, `slot lengths seen: ${[...lengths].join(', ')}`);
    assert.equal(capiStore.len, MIN_LEN);
  } finally {
    kv.dispose();
    reference.dispose();
    capi.dispose();
    await node.dispose();
  }
});

test('a copy that does not fit its slot is refused', () => {
  const capi = CapiSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  const store = new CapiSlotStore(capi, 2, 64, 64);
  try {
    assert.throws(() => {
      store.copyTokens(0, 60, 0, 8);
    }, /do not fit/);
    assert.throws(() => {
      store.swap(0, 2, 5, 2);
    }, /do not fit/);
  } finally {
    store.dispose();
    capi.dispose();
  }
});
