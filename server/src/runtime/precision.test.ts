/**
 * Every precision the builder writes runs through both KV layouts on real onnxruntime:
 * float16 models included, whose tensors onnxruntime-node cannot read from a Float16Array.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildRandom } from '../model/build/index.ts';
import { PRECISIONS, PROFILES } from '../model/build/options.ts';
import { DecoderSession } from './decoder.ts';
import { openKvCache } from './open-kv.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-precision-'));
after(() => rm(root, { recursive: true, force: true }));

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if ((xs[i] ?? -Infinity) > (xs[best] ?? -Infinity)) best = i;
  return best;
}

/** Greedy tokens after a prompt: one prefill, then batched decode steps of two sequences. */
async function greedy(dir: string): Promise<number[][]> {
  const session = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  const kv = openKvCache(session, { maxSeqs: 2, capacityTokens: 256, maxModelLen: 128 });
  try {
    const prompts = [
      [1, 5, 9, 14, 3],
      [1, 7, 2, 40],
    ];
    const out = prompts.map(() => [] as number[]);
    for (const [i, p] of prompts.entries()) {
      kv.allocate(`s${i}`);
      const logits = await kv.prefill(`s${i}`, p);
      assert.ok(logits.every(Number.isFinite), 'prefill logits are finite');
      out[i]?.push(argmax(logits));
    }
    for (let step = 0; step < 4; step++) {
      const rows = out.map((toks, i) => ({ seqId: `s${i}`, token: toks.at(-1) ?? 0 }));
      const logits = await kv.decode(rows);
      logits.forEach((l, i) => {
        assert.ok(l.every(Number.isFinite), 'decode logits are finite');
        out[i]?.push(argmax(l));
      });
    }
    return out;
  } finally {
    kv.dispose();
    await session.dispose();
  }
}

for (const profile of PROFILES) {
  test(`${profile}: every precision decodes through the ${profile === 'fast' ? 'shared-slot' : 'padded'} cache`, async () => {
    const results = new Map<string, number[][]>();
    for (const precision of PRECISIONS) {
      const dir = join(root, `${profile}-${precision}`);
      await buildRandom('tiny', dir, { profile, precision }, { seed: 3 });
      results.set(precision, await greedy(dir));
    }
    const reference = results.get('fp32');
    // A tiny random model's top logits are far apart: lower precision keeps its first choice.
    assert.deepEqual(
      results.get('fp16')?.map((t) => t[0]),
      reference?.map((t) => t[0]),
    );
    for (const [precision, tokens] of results) {
      assert.equal(tokens.flat().length, 10, `${precision} produced every token`);
    }
  });
}
