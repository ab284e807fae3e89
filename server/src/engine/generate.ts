/**
 * Single-sequence generation with a KV cache: prefill the prompt, then one token per step.
 * The serving engine batches many of these; this loop is what `autoglm generate` and the
 * model tests use.
 */
import type { DecoderSession, KvState } from '../runtime/decoder.ts';
import { GREEDY, sample } from './sampler.ts';
import { seededRandom } from '../util/seeded-random.ts';
import type { SamplingOptions } from './types.ts';

export interface GenerateOptions {
  readonly maxTokens: number;
  readonly stopTokenIds: readonly number[];
  readonly sampling?: SamplingOptions;
  readonly signal?: AbortSignal;
}

export interface GeneratedToken {
  readonly id: number;
  /** Logits row the token was chosen from (for tests and logprobs). */
  readonly logits: Float32Array;
}

function ones(n: number): BigInt64Array {
  return new BigInt64Array(n).fill(1n);
}

export async function* generate(
  session: DecoderSession,
  promptIds: readonly number[],
  options: GenerateOptions,
): AsyncGenerator<GeneratedToken> {
  const sampling = options.sampling ?? GREEDY;
  const random = seededRandom(sampling.seed ?? Date.now());
  let past: KvState | undefined;
  let input = promptIds;
  for (let produced = 0; produced < options.maxTokens; produced++) {
    options.signal?.throwIfAborted();
    const pastLen = past?.length ?? 0;
    const out = await session.step({
      batch: 1,
      inputIds: BigInt64Array.from(input.map((x) => BigInt(x))),
      attentionMask: ones(pastLen + input.length),
      positionIds: BigInt64Array.from(input.map((_, i) => BigInt(pastLen + i))),
      past,
    });
    past = out.present;
    const last = out.logits.subarray((input.length - 1) * out.vocabSize, input.length * out.vocabSize);
    const id = sample(last, sampling, random);
    yield { id, logits: last };
    if (options.stopTokenIds.includes(id)) return;
    input = [id];
  }
}
