/**
 * llama.cpp stores Llama 3.x RoPE scaling as a `rope_freqs.weight` tensor of per-frequency
 * divisors instead of the Hugging Face parameters. We recover the parameters by matching
 * the known Llama 3 settings, so config.json can state them the standard way.
 */
import { AutoGLMError } from '../../errors.ts';
import type { DecoderConfig, Llama3RopeScaling } from '../config.ts';
import { ropeInverseFrequencies } from '../rope.ts';

const CANDIDATES: readonly Llama3RopeScaling[] = [8, 16, 32, 64].map((factor) => ({
  type: 'llama3',
  factor,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
}));

export function llama3ScalingFromFactors(base: DecoderConfig, divisors: Float32Array): Llama3RopeScaling {
  const plain = ropeInverseFrequencies(base, undefined);
  for (const cand of CANDIDATES) {
    const scaled = ropeInverseFrequencies(base, cand);
    const fits = plain.every(
      (f, i) => Math.abs(f / (scaled[i] ?? 1) - (divisors[i] ?? 0)) <= 1e-3 * (divisors[i] ?? 1),
    );
    if (fits) return cand;
  }
  throw new AutoGLMError(
    'unsupported_architecture',
    'rope_freqs.weight does not match any known Llama 3 RoPE scaling',
    {
      hint: 'only the llama3 rope scaling (factor 8-64, low 1, high 4, original context 8192) is supported',
    },
  );
}
