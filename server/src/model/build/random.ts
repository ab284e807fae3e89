/**
 * Seeded random-weight models with real architectures' shapes. Tests build these in
 * seconds instead of downloading anything; `1b` has Llama-3.2-1B's shapes for benchmarks.
 */
import { weightNames, type Architecture, type DecoderConfig } from '../config.ts';
import type { WeightSource, WeightTensor } from '../weights.ts';

export const RANDOM_SIZES = ['tiny', 'small', '1b'] as const;
export type RandomSize = (typeof RANDOM_SIZES)[number];

const SHAPES: Record<RandomSize, Omit<DecoderConfig, 'architecture' | 'attentionBias' | 'eosTokenIds'>> = {
  tiny: {
    vocabSize: 512,
    hiddenSize: 64,
    intermediateSize: 160,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxPositionEmbeddings: 512,
    tieWordEmbeddings: true,
  },
  small: {
    vocabSize: 2048,
    hiddenSize: 256,
    intermediateSize: 704,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 32,
    rmsNormEps: 1e-5,
    ropeTheta: 100000,
    maxPositionEmbeddings: 2048,
    tieWordEmbeddings: false,
  },
  '1b': {
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
    maxPositionEmbeddings: 131072,
    tieWordEmbeddings: true,
  },
};

/** Token ids follow the synthetic tokenizer: <|endoftext|> 0, <|im_start|> 1, <|im_end|> 2. */
export function randomConfig(size: RandomSize, architecture: Architecture = 'llama'): DecoderConfig {
  const shape = SHAPES[size];
  return {
    ...shape,
    architecture,
    attentionBias: architecture === 'qwen2',
    eosTokenIds: [2],
    bosTokenId: 1,
  };
}

function hash(s: string, seed: number): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** xorshift128+ over two 32-bit halves is plenty for weights and cheap in JS. */
function fillUniform(out: Float32Array, seed: number, scale: number, offset: number): void {
  let a = seed | 1;
  let b = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) | 1;
  for (let i = 0; i < out.length; i++) {
    let t = a;
    const s = b;
    a = s;
    t ^= t << 23;
    t ^= t >>> 17;
    t ^= s ^ (s >>> 26);
    b = t;
    out[i] = offset + scale * (((t + s) >>> 0) / 4294967296 - 0.5) * 2;
  }
}

function tensor(name: string, shape: number[], seed: number): WeightTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  const isNorm = name.endsWith('norm.weight');
  const isBias = name.endsWith('.bias');
  const fanIn = shape.length === 2 ? (shape[1] ?? 1) : 1;
  // Unit-variance activations through every layer, so attention patterns are not flat.
  const scale = isNorm ? 0.1 : isBias ? 0.1 : name === weightNames.embed ? 1 : Math.sqrt(3 / fanIn);
  return {
    name,
    shape,
    sourceType: 'F32',
    float32: () => {
      const out = new Float32Array(count);
      fillUniform(out, hash(name, seed), scale, isNorm ? 1 : 0);
      return out;
    },
    q4: () => undefined,
  };
}

export function randomWeights(config: DecoderConfig, seed = 0): WeightSource {
  const c = config;
  const map = new Map<string, WeightTensor>();
  const add = (name: string, shape: number[]) => map.set(name, tensor(name, shape, seed));
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  add(weightNames.embed, [c.vocabSize, c.hiddenSize]);
  add(weightNames.finalNorm, [c.hiddenSize]);
  if (!c.tieWordEmbeddings) add(weightNames.lmHead, [c.vocabSize, c.hiddenSize]);
  for (let i = 0; i < c.numLayers; i++) {
    const n = weightNames.layer(i);
    add(n.inputNorm, [c.hiddenSize]);
    add(n.postNorm, [c.hiddenSize]);
    add(n.q, [qDim, c.hiddenSize]);
    add(n.k, [kvDim, c.hiddenSize]);
    add(n.v, [kvDim, c.hiddenSize]);
    add(n.o, [c.hiddenSize, qDim]);
    if (c.attentionBias) {
      add(n.qBias, [qDim]);
      add(n.kBias, [kvDim]);
      add(n.vBias, [kvDim]);
    }
    add(n.gate, [c.intermediateSize, c.hiddenSize]);
    add(n.up, [c.intermediateSize, c.hiddenSize]);
    add(n.down, [c.hiddenSize, c.intermediateSize]);
  }
  return { config, get: (name) => map.get(name), names: () => [...map.keys()] };
}
