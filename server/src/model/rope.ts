import type { DecoderConfig, Llama3RopeScaling } from './config.ts';

/**
 * Inverse RoPE frequencies for rotate-half layout, including Llama 3's frequency scaling.
 * Shared by the graph builder and the float64 reference so both rotate identically.
 */
export function ropeInverseFrequencies(
  config: Pick<DecoderConfig, 'headDim' | 'ropeTheta'>,
  s: Llama3RopeScaling | undefined,
): Float64Array {
  const half = config.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
  if (s === undefined) return inv;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = inv[i] ?? 0;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) {
      inv[i] = f / s.factor;
    } else if (wavelen >= highWavelen) {
      const smooth =
        (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - smooth) * (f / s.factor) + smooth * f;
    }
  }
  return inv;
}

/** cos/sin tables of shape [positions, headDim/2] (the half that rotate-half repeats). */
export function ropeTables(
  config: DecoderConfig,
  positions: number,
): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInverseFrequencies(config, config.ropeScaling);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * (inv[i] ?? 0);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}
