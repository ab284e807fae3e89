/**
 * The decoder graph for llama-family models (llama, qwen2), in the Hugging Face ONNX I/O
 * layout: input_ids, attention_mask, position_ids, past_key_values.N.key/value in;
 * logits, present.N.key/value out. Two profiles compute the same function:
 *   portable  standard ONNX operators (opset 21), so every execution provider runs it;
 *   fast      ONNX Runtime contrib operators: SimplifiedLayerNormalization and its Skip
 *             variant, RotaryEmbedding, GroupQueryAttention and MatMulNBits.
 * With `headGating`, attention computes only the heads each row asks for (gated-attention.ts),
 * in either profile; such graphs concatenate past and present as the portable profile does.
 */
import { weightNames, type DecoderConfig } from '../config.ts';
import { DataType, type ModelDef } from '../onnx/model.ts';
import { GraphBuilder } from '../onnx/graph.ts';
import type { WeightSource } from '../weights.ts';
import { ropeTables } from '../rope.ts';
import type { BuildOptions } from './options.ts';
import { attention, type AttentionShared } from './attention.ts';
import { headEntropyOutput, headIndexInput } from './gated-attention.ts';
import { computeType, floatInitializer, linear, requireWeight } from './weights.ts';

export const OPSET = 21;
export const IR_VERSION = 10;

interface Ctx {
  readonly g: GraphBuilder;
  readonly o: BuildOptions;
  readonly c: DecoderConfig;
  readonly src: WeightSource;
  readonly type: DataType;
}

function norm(ctx: Ctx, x: string, weightName: string): string {
  const { g, c, type } = ctx;
  const w = floatInitializer(
    g,
    weightName,
    [c.hiddenSize],
    requireWeight(ctx.src, weightName).float32(),
    type,
  );
  if (ctx.o.profile === 'fast') {
    return g.op1('SimplifiedLayerNormalization', [x, w], {
      axis: -1,
      epsilon: { float: c.rmsNormEps },
      stash_type: 1,
    });
  }
  // RMSNorm in fp32 whatever the compute type: fp16 squares overflow.
  const x32 = type === DataType.FLOAT ? x : g.op1('Cast', [x], { to: DataType.FLOAT });
  const ms = g.op1('ReduceMean', [g.op1('Mul', [x32, x32]), g.constI64([-1])], { keepdims: 1 });
  const rms = g.op1('Sqrt', [g.op1('Add', [ms, g.constF32([c.rmsNormEps], [])])]);
  const y32 = g.op1('Div', [x32, rms]);
  const y = type === DataType.FLOAT ? y32 : g.op1('Cast', [y32], { to: type });
  return g.op1('Mul', [y, w]);
}

/** residual + x, then normalized; returns [normed, sum]. Fused into one op in the fast profile. */
function addNorm(ctx: Ctx, x: string, residual: string, weightName: string): [string, string] {
  const { g, c, type } = ctx;
  if (ctx.o.profile === 'portable') {
    const sum = g.op1('Add', [residual, x]);
    return [norm(ctx, sum, weightName), sum];
  }
  const w = floatInitializer(
    g,
    weightName,
    [c.hiddenSize],
    requireWeight(ctx.src, weightName).float32(),
    type,
  );
  const [normed, , , sum] = g.op(
    'SkipSimplifiedLayerNormalization',
    [x, residual, w],
    { epsilon: { float: c.rmsNormEps } },
    {
      outputs: 4,
      domain: 'com.microsoft',
    },
  );
  return [normed as string, sum as string];
}

function mlp(ctx: Ctx, h: string, i: number): string {
  const { g, o, src } = ctx;
  const n = weightNames.layer(i);
  const gate = linear(g, o, h, requireWeight(src, n.gate), undefined);
  const up = linear(g, o, h, requireWeight(src, n.up), undefined);
  const act = g.op1('Mul', [g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), up]);
  return linear(g, o, act, requireWeight(src, n.down), undefined);
}

function declareIo(ctx: Ctx): { ids: string; mask: string; positions: string } {
  const { g, c, type } = ctx;
  const ids = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const positions = g.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  for (let i = 0; i < c.numLayers; i++) {
    for (const kv of ['key', 'value']) {
      g.input(`past_key_values.${i}.${kv}`, type, [
        'batch_size',
        c.numKvHeads,
        'past_sequence_length',
        c.headDim,
      ]);
    }
  }
  if (ctx.o.headGating === true) {
    for (let i = 0; i < c.numLayers; i++)
      g.input(headIndexInput(i), DataType.INT64, ['batch_size', `active_heads_${i}`]);
  }
  g.output('logits', DataType.FLOAT, ['batch_size', 'sequence_length', c.vocabSize]);
  for (let i = 0; i < c.numLayers; i++) {
    for (const kv of ['key', 'value']) {
      g.output(`present.${i}.${kv}`, type, ['batch_size', c.numKvHeads, 'total_sequence_length', c.headDim]);
    }
  }
  if (ctx.o.headGating === true) {
    for (let i = 0; i < c.numLayers; i++)
      g.output(headEntropyOutput(i), DataType.FLOAT, ['batch_size', `active_heads_${i}`]);
  }
  return { ids, mask, positions };
}

function lmHead(ctx: Ctx, h: string): string {
  const { g, o, c, src, type } = ctx;
  const head = src.get(weightNames.lmHead);
  let logits: string;
  if (head !== undefined) {
    logits = linear(g, o, h, head, undefined);
  } else {
    // A tied head reads the embedding matrix in place (Gemm with transB): no second copy on
    // disk, and in int4 builds the head keeps float precision, which is where 4 bits cost
    // the most quality (llama.cpp keeps its output matrix at higher precision for the same reason).
    const flat = g.op1('Reshape', [h, g.constI64([-1, c.hiddenSize])]);
    const gemm = g.op1('Gemm', [flat, weightNames.embed], { transB: 1 });
    const shape = g.op1('Concat', [g.op1('Shape', [h], { end: 2 }), g.constI64([c.vocabSize])], { axis: 0 });
    logits = g.op1('Reshape', [gemm, shape]);
  }
  return type === DataType.FLOAT ? logits : g.op1('Cast', [logits], { to: DataType.FLOAT });
}

function ropeShared(ctx: Ctx, positions: string, mask: string, ids: string): AttentionShared {
  const { g, c, o, type } = ctx;
  const maxPos = o.maxPositions ?? c.maxPositionEmbeddings;
  const { cos, sin } = ropeTables(c, maxPos);
  const half = c.headDim / 2;
  const cosT = floatInitializer(g, '/rope/cos_cache', [maxPos, half], cos, type);
  const sinT = floatInitializer(g, '/rope/sin_cache', [maxPos, half], sin, type);
  return { cosCache: cosT, sinCache: sinT, positions, mask, ids, cache: new Map() };
}

export function buildDecoder(src: WeightSource, o: BuildOptions): ModelDef {
  const c = src.config;
  const g = new GraphBuilder();
  const ctx: Ctx = { g, o, c, src, type: computeType(o) };
  const { ids, mask, positions } = declareIo(ctx);
  const embed = requireWeight(src, weightNames.embed);
  const table = floatInitializer(
    g,
    weightNames.embed,
    [c.vocabSize, c.hiddenSize],
    embed.float32(),
    ctx.type,
  );
  let residual = g.op1('Gather', [table, ids]);
  const shared = ropeShared(ctx, positions, mask, ids);
  let h = norm(ctx, residual, weightNames.layer(0).inputNorm);
  for (let i = 0; i < c.numLayers; i++) {
    g.withScope(`/model/layers.${i}/`, () => {
      const n = weightNames.layer(i);
      const attn = attention({ g, o, c, src, type: ctx.type }, shared, h, i);
      [h, residual] = addNorm(ctx, attn, residual, n.postNorm);
      const next = i + 1 < c.numLayers ? weightNames.layer(i + 1).inputNorm : weightNames.finalNorm;
      [h, residual] = addNorm(ctx, mlp(ctx, h, i), residual, next);
    });
  }
  g.op('Identity', [lmHead(ctx, h)], {}, { outputs: ['logits'] });
  const opsets = [{ domain: '', version: OPSET }];
  if (o.profile === 'fast') opsets.push({ domain: 'com.microsoft', version: 1 });
  return {
    irVersion: IR_VERSION,
    opsets,
    producerName: 'autoglm',
    producerVersion: '0.1.0',
    graph: g.build(`${c.architecture}-decoder`),
    metadata: {
      'autoglm.profile': o.profile,
      'autoglm.precision': o.precision,
      ...(o.headGating === true ? { 'autoglm.head_gating': 'true' } : {}),
    },
  };
}
