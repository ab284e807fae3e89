import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { concat, relativeError } from '../../../../test/support/compare.ts';
import { sequenceLogits } from '../../../../test/support/logits.ts';
import { DecoderSession } from '../../runtime/decoder.ts';
import { writeModelFolder } from './folder.ts';
import { buildDecoder } from './decoder.ts';
import { randomConfig, randomWeights } from './random.ts';
import { ReferenceDecoder } from '../reference.ts';
import type { Architecture } from '../config.ts';
import type { BuildOptions, Precision, Profile } from './options.ts';
import type { WeightSource } from '../weights.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-decoder-'));
after(() => rm(root, { recursive: true, force: true }));

const IDS = [5, 17, 300, 42, 99, 7, 256, 3, 11, 480];

async function open(src: WeightSource, o: BuildOptions, name: string): Promise<DecoderSession> {
  const dir = join(root, name);
  await writeModelFolder(dir, {
    json: {},
    model: buildDecoder(src, o),
    modelFile: 'model.onnx',
    ...(o.externalData === true ? { externalData: true } : {}),
  });
  return DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
}

const TOLERANCE: Record<Precision, number> = { fp32: 1e-4, int8: 1e-3, int4: 1e-3, fp16: 1e-2 };

for (const arch of ['llama', 'qwen2'] as Architecture[]) {
  describe(`${arch} decoder graph matches the float64 reference`, () => {
    const src = randomWeights(randomConfig('tiny', arch), 7);
    for (const precision of ['fp32', 'int8', 'int4', 'fp16'] as Precision[]) {
      // int8 and int4 are judged against the reference run on the weights those builds store.
      const bits = precision === 'int4' ? 4 : precision === 'int8' ? 8 : undefined;
      const ref = new ReferenceDecoder(src, bits === undefined ? {} : { quantized: bits });
      const want = concat(ref.forward(IDS));
      for (const profile of ['portable', 'fast'] as Profile[]) {
        test(`${profile} ${precision}`, async () => {
          const s = await open(src, { profile, precision }, `${arch}-${profile}-${precision}`);
          try {
            const err = relativeError(await sequenceLogits(s, IDS), want);
            assert.ok(
              err < TOLERANCE[precision],
              `relative error ${err.toExponential(2)} ≥ ${TOLERANCE[precision]}`,
            );
          } finally {
            await s.dispose();
          }
        });
      }
    }
  });
}

describe('KV cache', () => {
  const src = randomWeights(randomConfig('tiny', 'llama'), 3);
  for (const profile of ['portable', 'fast'] as Profile[]) {
    test(`${profile}: token-by-token with the cache equals recomputing without it`, async () => {
      const s = await open(src, { profile, precision: 'fp32' }, `kv-${profile}`);
      try {
        const full = await sequenceLogits(s, IDS);
        const V = src.config.vocabSize;
        // Prefill 4 tokens, then one token per step, 2 tokens in the last step.
        const chunks = [IDS.slice(0, 4), [IDS[4]], [IDS[5]], [IDS[6]], [IDS[7]], IDS.slice(8)] as number[][];
        let past;
        let pos = 0;
        for (const chunk of chunks) {
          const out = await s.step({
            batch: 1,
            inputIds: BigInt64Array.from(chunk.map(BigInt)),
            attentionMask: new BigInt64Array(pos + chunk.length).fill(1n),
            positionIds: BigInt64Array.from(chunk.map((_, i) => BigInt(pos + i))),
            past,
          });
          const expected = full.subarray(pos * V, (pos + chunk.length) * V);
          const err = relativeError(out.logits, expected);
          assert.ok(err < 1e-5, `step at ${pos}: relative error ${err.toExponential(2)}`);
          past = out.present;
          pos += chunk.length;
          assert.equal(past.length, pos);
        }
      } finally {
        await s.dispose();
      }
    });
  }

  test('portable: a left-padded batch gives each row its unpadded logits', async () => {
    const s = await open(src, { profile: 'portable', precision: 'fp32' }, 'kv-batch');
    try {
      const a = IDS;
      const b = IDS.slice(0, 6);
      const V = src.config.vocabSize;
      const pad = a.length - b.length;
      const out = await s.step({
        batch: 2,
        inputIds: BigInt64Array.from([...a, ...new Array<number>(pad).fill(0), ...b].map(BigInt)),
        attentionMask: BigInt64Array.from(
          [...a.map(() => 1), ...new Array<number>(pad).fill(0), ...b.map(() => 1)].map(BigInt),
        ),
        positionIds: BigInt64Array.from(
          [...a.map((_, i) => i), ...new Array<number>(pad).fill(0), ...b.map((_, i) => i)].map(BigInt),
        ),
        past: undefined,
      });
      const rowA = out.logits.subarray(0, a.length * V);
      const rowB = out.logits.subarray((a.length + pad) * V, 2 * a.length * V);
      assert.ok(relativeError(rowA, await sequenceLogits(s, a)) < 1e-5);
      assert.ok(relativeError(rowB, await sequenceLogits(s, b)) < 1e-5);
    } finally {
      await s.dispose();
    }
  });
});

test('weights in an external data file load and give the same logits', async () => {
  const src = randomWeights(randomConfig('tiny', 'llama'), 5);
  const inline = await open(src, { profile: 'fast', precision: 'fp32' }, 'inline');
  const external = await open(src, { profile: 'fast', precision: 'fp32', externalData: true }, 'external');
  try {
    assert.deepEqual(await sequenceLogits(external, IDS), await sequenceLogits(inline, IDS));
  } finally {
    await inline.dispose();
    await external.dispose();
  }
});

test('a random 1b-shaped config has Llama-3.2-1B dimensions', () => {
  const c = randomConfig('1b');
  const params =
    c.vocabSize * c.hiddenSize +
    c.numLayers *
      (2 * c.hiddenSize * c.numHeads * c.headDim +
        2 * c.hiddenSize * c.numKvHeads * c.headDim +
        3 * c.hiddenSize * c.intermediateSize);
  assert.ok(params > 1.2e9 && params < 1.3e9, `${params} parameters`);
});
