/** One forward pass over a whole sequence (no cache), for the logits tests. */
import { DecoderSession } from '../../server/src/runtime/decoder.ts';

export async function sequenceLogits(s: DecoderSession, ids: readonly number[]): Promise<Float32Array> {
  const out = await s.step({
    batch: 1,
    inputIds: BigInt64Array.from(ids.map(BigInt)),
    attentionMask: new BigInt64Array(ids.length).fill(1n),
    positionIds: BigInt64Array.from(ids.map((_, i) => BigInt(i))),
    past: undefined,
  });
  return out.logits;
}

/** Opens the folder's model on CPU, runs `ids`, and closes it. */
export async function folderLogits(dir: string, ids: readonly number[]): Promise<Float32Array> {
  const s = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  try {
    return await sequenceLogits(s, ids);
  } finally {
    await s.dispose();
  }
}
