/** config.json and generation_config.json in the shape transformers and transformers.js read. */
import type { DecoderConfig } from '../config.ts';
import type { BuildOptions } from './options.ts';

const CLASS = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM' } as const;

/**
 * Bumped whenever the builder's output changes (graph, weights layout, files), so cached
 * builds of an unchanged source are rebuilt rather than served stale.
 */
export const BUILDER_VERSION = 4;

export interface BuildProvenance {
  readonly source: string;
  readonly sourceSha256?: string;
}

export function hfConfig(
  c: DecoderConfig,
  o: BuildOptions,
  provenance: BuildProvenance,
): Record<string, unknown> {
  const eos = c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : [...c.eosTokenIds];
  const kvDtype = o.precision === 'fp16' ? 'float16' : 'float32';
  return {
    architectures: [CLASS[c.architecture]],
    model_type: c.architecture,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling:
      c.ropeScaling === undefined
        ? null
        : {
            rope_type: 'llama3',
            factor: c.ropeScaling.factor,
            low_freq_factor: c.ropeScaling.lowFreqFactor,
            high_freq_factor: c.ropeScaling.highFreqFactor,
            original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
          },
    attention_bias: c.attentionBias,
    mlp_bias: false,
    tie_word_embeddings: c.tieWordEmbeddings,
    bos_token_id: c.bosTokenId ?? null,
    eos_token_id: eos ?? null,
    pad_token_id: c.padTokenId ?? null,
    torch_dtype: o.precision === 'fp16' ? 'float16' : 'float32',
    use_cache: true,
    // transformers.js allocates the empty past in this type whatever dtype it loads.
    'transformers.js_config': { kv_cache_dtype: kvDtype },
    autoglm: { builder: BUILDER_VERSION, profile: o.profile, precision: o.precision, ...provenance },
  };
}

export function generationConfig(c: DecoderConfig): Record<string, unknown> {
  return {
    bos_token_id: c.bosTokenId ?? null,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : [...c.eosTokenIds],
    pad_token_id: c.padTokenId ?? null,
    do_sample: false,
  };
}
