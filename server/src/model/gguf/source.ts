/**
 * A GGUF file seen as Hugging Face weights: tensor names mapped, llama's Q/K rows put back
 * in rotate-half order, hyper-parameters read from metadata. Architectures other than the
 * supported ones are refused by name.
 */
import { AutoGLMError } from '../../errors.ts';
import { isArchitecture, weightNames, type Architecture, type DecoderConfig } from '../config.ts';
import type { Q4Blocks, WeightSource, WeightTensor } from '../weights.ts';
import { dequantize } from '../quant/dequant.ts';
import { q4FromGguf } from '../quant/int4.ts';
import type { GgufMetadata, GgufTensorInfo, GgufValue } from './types.ts';
import { llama3ScalingFromFactors } from './rope-freqs.ts';

export interface GgufTensors {
  readonly metadata: GgufMetadata;
  readonly tensors: readonly GgufTensorInfo[];
  raw(name: string): Uint8Array;
}

const LAYER_MAP: Readonly<Record<string, keyof ReturnType<typeof weightNames.layer>>> = {
  'attn_norm.weight': 'inputNorm',
  'ffn_norm.weight': 'postNorm',
  'attn_q.weight': 'q',
  'attn_k.weight': 'k',
  'attn_v.weight': 'v',
  'attn_output.weight': 'o',
  'attn_q.bias': 'qBias',
  'attn_k.bias': 'kBias',
  'attn_v.bias': 'vBias',
  'ffn_gate.weight': 'gate',
  'ffn_up.weight': 'up',
  'ffn_down.weight': 'down',
};

export function hfName(ggufName: string): string | undefined {
  if (ggufName === 'token_embd.weight') return weightNames.embed;
  if (ggufName === 'output_norm.weight') return weightNames.finalNorm;
  if (ggufName === 'output.weight') return weightNames.lmHead;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const key = m === null ? undefined : LAYER_MAP[m[2] ?? ''];
  return key === undefined ? undefined : weightNames.layer(Number(m?.[1]))[key];
}

function num(md: GgufMetadata, key: string): number | undefined {
  const v = md.get(key);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

function need(md: GgufMetadata, key: string): number {
  const v = num(md, key);
  if (v === undefined) {
    throw new AutoGLMError('gguf_corrupt', `GGUF metadata lacks ${key}`, {
      hint: 'the file was not written by a llama.cpp converter this tool understands; re-export it',
    });
  }
  return v;
}

function tokenIds(md: GgufMetadata, key: string): number[] {
  const v: GgufValue | undefined = md.get(key);
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return (v as GgufValue[]).filter((x): x is number => typeof x === 'number');
  return [];
}

function architectureOf(md: GgufMetadata): Architecture {
  const arch = md.get('general.architecture');
  if (typeof arch !== 'string')
    throw new AutoGLMError('gguf_corrupt', 'GGUF metadata lacks general.architecture');
  if (!isArchitecture(arch)) {
    throw new AutoGLMError('unsupported_architecture', `architecture "${arch}" is not supported`, {
      hint: 'supported architectures: llama (Llama 2/3, SmolLM2, TinyLlama, Mistral-style) and qwen2',
    });
  }
  return arch;
}

export function configFromGguf(g: GgufTensors): DecoderConfig {
  const md = g.metadata;
  const a = architectureOf(md);
  const hidden = need(md, `${a}.embedding_length`);
  const heads = need(md, `${a}.attention.head_count`);
  const headDim = num(md, `${a}.attention.key_length`) ?? hidden / heads;
  const tokens = md.get('tokenizer.ggml.tokens');
  const vocab = num(md, `${a}.vocab_size`) ?? (Array.isArray(tokens) ? tokens.length : 0);
  const eos = tokenIds(md, 'tokenizer.ggml.eos_token_id');
  const bos = num(md, 'tokenizer.ggml.bos_token_id');
  const pad = num(md, 'tokenizer.ggml.padding_token_id');
  const freqs = g.tensors.find((t) => t.name === 'rope_freqs.weight');
  const base: DecoderConfig = {
    architecture: a,
    vocabSize: vocab,
    hiddenSize: hidden,
    intermediateSize: need(md, `${a}.feed_forward_length`),
    numLayers: need(md, `${a}.block_count`),
    numHeads: heads,
    numKvHeads: num(md, `${a}.attention.head_count_kv`) ?? heads,
    headDim,
    rmsNormEps: need(md, `${a}.attention.layer_norm_rms_epsilon`),
    ropeTheta: num(md, `${a}.rope.freq_base`) ?? 10000,
    maxPositionEmbeddings: need(md, `${a}.context_length`),
    tieWordEmbeddings: !g.tensors.some((t) => t.name === 'output.weight'),
    attentionBias: g.tensors.some((t) => t.name === 'blk.0.attn_q.bias'),
    eosTokenIds: eos,
    ...(bos === undefined ? {} : { bosTokenId: bos }),
    ...(pad === undefined ? {} : { padTokenId: pad }),
  };
  if (freqs === undefined) return base;
  const factors = dequantize('F32', g.raw(freqs.name), headDim / 2);
  return { ...base, ropeScaling: llama3ScalingFromFactors(base, factors) };
}

/** GGUF's llama converter interleaves each head's rotary halves; this is the inverse row order. */
export function unpermuteRows(rows: number, heads: number): Int32Array {
  const perHead = rows / heads;
  const half = perHead / 2;
  const src = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < 2; t++) {
      for (let j = 0; j < half; j++) src[h * perHead + t * half + j] = h * perHead + 2 * j + t;
    }
  }
  return src;
}

function gatherRows(values: Float32Array, order: Int32Array, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  order.forEach((from, to) => {
    out.set(values.subarray(from * cols, (from + 1) * cols), to * cols);
  });
  return out;
}

/** Reorders whole rows of 4-bit blocks (16 bytes of codes each). */
function gatherBlocks(q: Q4Blocks, order: Int32Array | undefined, blockBytes = 16): Q4Blocks {
  if (order === undefined) return q;
  const nb = Math.ceil(q.cols / 32);
  const row = nb * blockBytes;
  const codes = new Uint8Array(q.codes.length);
  order.forEach((from, to) => {
    codes.set(q.codes.subarray(from * row, (from + 1) * row), to * row);
  });
  return {
    ...q,
    scales: gatherRows(q.scales, order, nb),
    zeroPoints: gatherRows(q.zeroPoints, order, nb),
    codes,
  };
}

function tensorOf(
  g: GgufTensors,
  info: GgufTensorInfo,
  name: string,
  order: Int32Array | undefined,
): WeightTensor {
  const dims = info.dims;
  const cols = dims[0] ?? 1;
  const rows = dims.slice(1).reduce((x, y) => x * y, 1);
  const type = info.typeName;
  if (type === undefined) {
    throw new AutoGLMError(
      'unsupported_quantization',
      `tensor ${info.name} has ggml type ${info.type}, which is not supported`,
      {
        hint: 'supported types: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K; re-quantize the model to one of them',
      },
    );
  }
  const shape = dims.length === 1 ? [cols] : [rows, cols];
  // A permuted bias moves single values; a permuted matrix moves whole rows.
  const rowWidth = dims.length === 1 ? 1 : cols;
  return {
    name,
    shape,
    sourceType: type,
    float32: () => {
      const v = dequantize(type, g.raw(info.name), rows * cols);
      return order === undefined ? v : gatherRows(v, order, rowWidth);
    },
    q4: () =>
      (type === 'Q4_0' || type === 'Q4_1') && dims.length === 2
        ? gatherBlocks(q4FromGguf(type, g.raw(info.name), rows, cols), order)
        : undefined,
  };
}

export function ggufWeights(g: GgufTensors): WeightSource {
  const config = configFromGguf(g);
  const map = new Map<string, WeightTensor>();
  for (const info of g.tensors) {
    const name = hfName(info.name);
    if (name === undefined) continue;
    let order: Int32Array | undefined;
    if (config.architecture === 'llama' && /attn_[qk]\.(weight|bias)$/.test(info.name)) {
      const heads = info.name.includes('attn_q') ? config.numHeads : config.numKvHeads;
      order = unpermuteRows(info.dims.length === 1 ? (info.dims[0] ?? 0) : (info.dims[1] ?? 0), heads);
    }
    map.set(name, tensorOf(g, info, name, order));
  }
  return { config, get: (n) => map.get(n), names: () => [...map.keys()] };
}
