/**
 * Writes a random-weight llama or qwen2 model as a GGUF file the way llama.cpp's converter
 * does (tensor names, ggml dims, llama's Q/K row permutation, tokenizer metadata), so the
 * whole GGUF → ONNX path is tested without a download.
 */
import { weightNames, type DecoderConfig } from '../../server/src/model/config.ts';
import { writeGguf } from '../../server/src/model/gguf/writer.ts';
import type { GgmlTypeName, GgufValue } from '../../server/src/model/gguf/types.ts';
import { quantize } from '../../server/src/model/quant/quantize.ts';
import { syntheticTokenizerMetadata } from '../../server/src/model/tokenizer/synthetic.ts';
import type { WeightSource } from '../../server/src/model/weights.ts';

/** llama.cpp's HF → GGUF permutation of Q/K rows (the inverse of what the builder undoes). */
function permute(values: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const out = new Float32Array(values.length);
  const perHead = rows / heads;
  const half = perHead / 2;
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < 2; t++) {
      for (let j = 0; j < half; j++) {
        const from = h * perHead + t * half + j;
        const to = h * perHead + 2 * j + t;
        out.set(values.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

const GGUF_NAMES: Record<string, string> = {
  inputNorm: 'attn_norm.weight',
  postNorm: 'ffn_norm.weight',
  q: 'attn_q.weight',
  k: 'attn_k.weight',
  v: 'attn_v.weight',
  o: 'attn_output.weight',
  qBias: 'attn_q.bias',
  kBias: 'attn_k.bias',
  vBias: 'attn_v.bias',
  gate: 'ffn_gate.weight',
  up: 'ffn_up.weight',
  down: 'ffn_down.weight',
};

function metadata(c: DecoderConfig): Map<string, GgufValue> {
  const a = c.architecture;
  const md = new Map<string, GgufValue>(syntheticTokenizerMetadata(c.vocabSize));
  md.set('general.architecture', a);
  md.set('general.name', `random ${a}`);
  md.set(`${a}.context_length`, c.maxPositionEmbeddings);
  md.set(`${a}.embedding_length`, c.hiddenSize);
  md.set(`${a}.block_count`, c.numLayers);
  md.set(`${a}.feed_forward_length`, c.intermediateSize);
  md.set(`${a}.attention.head_count`, c.numHeads);
  md.set(`${a}.attention.head_count_kv`, c.numKvHeads);
  md.set(`${a}.rope.freq_base`, c.ropeTheta);
  md.set(`${a}.attention.layer_norm_rms_epsilon`, c.rmsNormEps);
  md.set(`${a}.rope.dimension_count`, c.headDim);
  return md;
}

/**
 * `types` picks a ggml type per HF weight role (e.g. { q: 'Q4_1', embed: 'Q8_0' }); norms
 * and biases are always F32, everything unnamed uses `fallback`.
 */
export async function writeRandomGguf(
  path: string,
  src: WeightSource,
  types: Partial<Record<string, GgmlTypeName>>,
  fallback: GgmlTypeName = 'F32',
): Promise<void> {
  const c = src.config;
  const tensors: { name: string; dims: number[]; typeName: GgmlTypeName; data: Uint8Array }[] = [];
  const add = (hf: string, gguf: string, role: string, heads?: number) => {
    const t = src.get(hf);
    if (t === undefined) return;
    const [rows, cols] = t.shape.length === 1 ? [1, t.shape[0] ?? 0] : (t.shape as [number, number]);
    let values = t.float32();
    if (heads !== undefined && c.architecture === 'llama') {
      values = t.shape.length === 1 ? permute(values, cols, 1, heads) : permute(values, rows, cols, heads);
    }
    const type = t.shape.length === 1 ? 'F32' : (types[role] ?? fallback);
    tensors.push({
      name: gguf,
      dims: t.shape.length === 1 ? [cols] : [cols, rows],
      typeName: type,
      data: quantize(type, values),
    });
  };
  add(weightNames.embed, 'token_embd.weight', 'embed');
  add(weightNames.finalNorm, 'output_norm.weight', 'norm');
  add(weightNames.lmHead, 'output.weight', 'lmHead');
  for (let i = 0; i < c.numLayers; i++) {
    const n = weightNames.layer(i);
    for (const [role, gguf] of Object.entries(GGUF_NAMES)) {
      const heads =
        role === 'q' || role === 'qBias'
          ? c.numHeads
          : role === 'k' || role === 'kBias'
            ? c.numKvHeads
            : undefined;
      add(n[role as keyof typeof n], `blk.${i}.${gguf}`, role, heads);
    }
  }
  await writeGguf(path, { metadata: metadata(c), tensors });
}
