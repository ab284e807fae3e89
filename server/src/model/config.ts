/**
 * The decoder hyper-parameters every part of the model code agrees on. Names follow
 * Hugging Face's config.json meaning, in camelCase; `toHfConfig` writes the standard file.
 */
export const ARCHITECTURES = ['llama', 'qwen2'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** Llama 3.x frequency scaling of RoPE ("rope_type": "llama3"). */
export interface Llama3RopeScaling {
  readonly type: 'llama3';
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMaxPositionEmbeddings: number;
}

export interface DecoderConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling?: Llama3RopeScaling;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2). */
  readonly attentionBias: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId?: number;
}

export function isArchitecture(name: string): name is Architecture {
  return (ARCHITECTURES as readonly string[]).includes(name);
}

/** Hugging Face weight names, in the layout transformers uses (linear weights are [out, in]). */
export const weightNames = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight',
  layer: (i: number) =>
    ({
      inputNorm: `model.layers.${i}.input_layernorm.weight`,
      postNorm: `model.layers.${i}.post_attention_layernorm.weight`,
      q: `model.layers.${i}.self_attn.q_proj.weight`,
      k: `model.layers.${i}.self_attn.k_proj.weight`,
      v: `model.layers.${i}.self_attn.v_proj.weight`,
      o: `model.layers.${i}.self_attn.o_proj.weight`,
      qBias: `model.layers.${i}.self_attn.q_proj.bias`,
      kBias: `model.layers.${i}.self_attn.k_proj.bias`,
      vBias: `model.layers.${i}.self_attn.v_proj.bias`,
      gate: `model.layers.${i}.mlp.gate_proj.weight`,
      up: `model.layers.${i}.mlp.up_proj.weight`,
      down: `model.layers.${i}.mlp.down_proj.weight`,
    }) as const,
} as const;
