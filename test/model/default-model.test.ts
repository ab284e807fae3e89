/**
 * The default model (SmolLM2-135M-Instruct, Q4_1 GGUF) built to ONNX and judged against the
 * float64 reference forward pass run on the GGUF's own dequantized weights.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildFromGguf, loadGgufTensors } from '../../server/src/model/build/index.ts';
import type { BuildOptions } from '../../server/src/model/build/options.ts';
import { ggufWeights } from '../../server/src/model/gguf/source.ts';
import { ReferenceDecoder } from '../../server/src/model/reference.ts';
import { Tokenizer } from '../../server/src/model/tokenizer/tokenizer.ts';
import { DecoderSession, type KvState } from '../../server/src/runtime/decoder.ts';
import { concat, relativeError } from '../support/compare.ts';
import { folderLogits, sequenceLogits } from '../support/logits.ts';
import { defaultGgufPath, defaultModelDir } from '../support/default-model.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-default-'));
after(() => rm(root, { recursive: true, force: true }));

let ids: number[] = [];
let reference: Float64Array;
let gguf: string;

before(async () => {
  gguf = await defaultGgufPath();
  const tokenizer = await Tokenizer.load(await defaultModelDir());
  ids = tokenizer.encode('The capital of France is', { addSpecialTokens: false });
  const src = ggufWeights(await loadGgufTensors(gguf));
  reference = concat(new ReferenceDecoder(src).forward(ids));
});

describe('default model logits match the float64 reference on the dequantized GGUF weights', () => {
  for (const [o, tolerance] of [
    [{ profile: 'fast', precision: 'fp32' }, 1e-4],
    [{ profile: 'portable', precision: 'fp32' }, 1e-4],
    [{ profile: 'portable', precision: 'int4' }, 1e-3],
  ] as [BuildOptions, number][]) {
    test(`${o.profile} ${o.precision}: relative error < ${tolerance}`, async (t) => {
      const dir = join(root, `${o.profile}-${o.precision}`);
      await buildFromGguf(gguf, dir, o);
      const err = relativeError(await folderLogits(dir, ids), reference);
      t.diagnostic(`relative error ${err.toExponential(2)}`);
      assert.ok(err < tolerance, `relative error ${err.toExponential(2)}`);
    });
  }

  test('the default build (fast int4, from Q4_1 blocks): relative error < 1e-3', async (t) => {
    const err = relativeError(await folderLogits(await defaultModelDir(), ids), reference);
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < 1e-3, `relative error ${err.toExponential(2)}`);
  });
});

test('default model: generating with the KV cache gives the logits of recomputing without it', async () => {
  const s = await DecoderSession.open(await defaultModelDir(), { device: 'cpu' });
  try {
    const full = await sequenceLogits(s, ids);
    const V = full.length / ids.length;
    let past: KvState | undefined;
    for (let p = 0; p < ids.length; p++) {
      const out = await s.step({
        batch: 1,
        inputIds: BigInt64Array.of(BigInt(ids[p] ?? 0)),
        attentionMask: new BigInt64Array(p + 1).fill(1n),
        positionIds: BigInt64Array.of(BigInt(p)),
        past,
      });
      const err = relativeError(out.logits, full.subarray(p * V, (p + 1) * V));
      assert.ok(err < 1e-4, `position ${p}: relative error ${err.toExponential(2)}`);
      past = out.present;
    }
  } finally {
    await s.dispose();
  }
});
