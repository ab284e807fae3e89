/**
 * Self-attention with rotary positions and grouped KV heads, in both profiles. The
 * portable path never materializes repeated KV heads: queries of one KV group are folded
 * into the sequence axis, so one MatMul serves the whole group.
 */
import { weightNames, type DecoderConfig } from '../config.ts';
import { DataType } from '../onnx/model.ts';
import type { GraphBuilder } from '../onnx/graph.ts';
import type { WeightSource } from '../weights.ts';
import type { BuildOptions } from './options.ts';
import { linear, requireWeight } from './weights.ts';
import { gatedAttention } from './gated-attention.ts';

export interface AttentionShared {
  readonly cosCache: string;
  readonly sinCache: string;
  readonly positions: string;
  readonly mask: string;
  readonly ids: string;
  /** Values computed once per graph and reused by every layer. */
  readonly cache: Map<string, string>;
}

export interface Ctx {
  readonly g: GraphBuilder;
  readonly o: BuildOptions;
  readonly c: DecoderConfig;
  readonly src: WeightSource;
  readonly type: DataType;
}

export function once(s: AttentionShared, key: string, make: () => string): string {
  const hit = s.cache.get(key);
  if (hit !== undefined) return hit;
  const v = make();
  s.cache.set(key, v);
  return v;
}

function projections(ctx: Ctx, h: string, i: number): { q: string; k: string; v: string } {
  const { g, o, src, c } = ctx;
  const n = weightNames.layer(i);
  const bias = (name: string) => (c.attentionBias ? requireWeight(src, name) : undefined);
  return {
    q: linear(g, o, h, requireWeight(src, n.q), bias(n.qBias)),
    k: linear(g, o, h, requireWeight(src, n.k), bias(n.kBias)),
    v: linear(g, o, h, requireWeight(src, n.v), bias(n.vBias)),
  };
}

export function attention(ctx: Ctx, s: AttentionShared, h: string, i: number): string {
  const { g, o, src } = ctx;
  const { q, k, v } = projections(ctx, h, i);
  const out =
    o.headGating === true
      ? gatedAttention(ctx, s, q, k, v, i)
      : o.profile === 'fast'
        ? fastAttention(ctx, s, q, k, v, i)
        : portableAttention(ctx, s, q, k, v, i);
  return linear(g, o, out, requireWeight(src, weightNames.layer(i).o), undefined);
}

function fastAttention(ctx: Ctx, s: AttentionShared, q: string, k: string, v: string, i: number): string {
  const { g, c } = ctx;
  // GroupQueryAttention takes per-sequence lengths: seqlens_k = sum(mask) - 1, total = mask width.
  const seqlens = once(s, 'seqlens', () => {
    const sum = g.op1('ReduceSum', [s.mask, g.constI64([1])], { keepdims: 0 });
    return g.op1('Cast', [g.op1('Sub', [sum, g.constI64([1], [])])], { to: DataType.INT32 });
  });
  const total = once(s, 'total', () => {
    const width = g.op1('Shape', [s.mask], { start: 1, end: 2 });
    return g.op1('Cast', [g.op1('Squeeze', [width, g.constI64([0])])], { to: DataType.INT32 });
  });
  const rot = (x: string, heads: number) =>
    g.ms('RotaryEmbedding', [x, s.positions, s.cosCache, s.sinCache], { interleaved: 0, num_heads: heads });
  const [out] = g.op(
    'GroupQueryAttention',
    [
      rot(q, c.numHeads),
      rot(k, c.numKvHeads),
      v,
      `past_key_values.${i}.key`,
      `past_key_values.${i}.value`,
      seqlens,
      total,
    ],
    { num_heads: c.numHeads, kv_num_heads: c.numKvHeads, scale: { float: 1 / Math.sqrt(c.headDim) } },
    {
      outputs: [`/model/layers.${i}/attn/out`, `present.${i}.key`, `present.${i}.value`],
      domain: 'com.microsoft',
    },
  );
  return out as string;
}

/** Whether each query row may see each column, [B, 1, S, T]: causal over buffer columns, and the mask. */
export function allowedMask(ctx: Ctx, s: AttentionShared): string {
  const { g } = ctx;
  return once(s, 'allowed', () => {
    const scalar = (x: string) => g.op1('Squeeze', [x, g.constI64([0])]);
    const total = scalar(g.op1('Shape', [s.mask], { start: 1, end: 2 }));
    const seq = scalar(g.op1('Shape', [s.ids], { start: 1, end: 2 }));
    const past = g.op1('Sub', [total, seq]);
    const rows = g.op1('Range', [past, total, g.constI64([1], [])]);
    const cols = g.op1('Range', [g.constI64([0], []), total, g.constI64([1], [])]);
    const causal = g.op1('LessOrEqual', [
      g.op1('Unsqueeze', [cols, g.constI64([0])]),
      g.op1('Unsqueeze', [rows, g.constI64([1])]),
    ]);
    const keep = g.op1('Unsqueeze', [g.op1('Cast', [s.mask], { to: DataType.BOOL }), g.constI64([1, 2])]);
    return g.op1('And', [causal, keep]);
  });
}

/** Additive mask [B, 1, S, T] from `allowedMask`. */
export function additiveMask(ctx: Ctx, s: AttentionShared): string {
  const { g } = ctx;
  // A large finite negative keeps fully padded rows finite (uniform) instead of NaN.
  return once(s, 'bias', () =>
    g.op1('Where', [allowedMask(ctx, s), g.constF32([0], []), g.constF32([-1e9], [])]),
  );
}

/** The additive mask tiled per KV group, [B, 1, g·S, T], for queries folded into the sequence axis. */
function maskBias(ctx: Ctx, s: AttentionShared): string {
  const { g, c } = ctx;
  return once(s, 'maskBias', () => {
    const bias = additiveMask(ctx, s);
    const group = c.numHeads / c.numKvHeads;
    return group === 1 ? bias : g.op1('Tile', [bias, g.constI64([1, 1, group, 1])]);
  });
}

function ropeHalf(ctx: Ctx, s: AttentionShared): { cos: string; sin: string } {
  const { g } = ctx;
  const gather = (table: string) => {
    const half = g.op1('Gather', [table, s.positions]);
    const full = g.op1('Concat', [half, half], { axis: -1 });
    return g.op1('Unsqueeze', [full, g.constI64([1])]);
  };
  return { cos: once(s, 'cos', () => gather(s.cosCache)), sin: once(s, 'sin', () => gather(s.sinCache)) };
}

export function rotate(ctx: Ctx, s: AttentionShared, x: string): string {
  const { g, c } = ctx;
  const { cos, sin } = ropeHalf(ctx, s);
  const half = c.headDim / 2;
  const [x1, x2] = g.op('Split', [x, g.constI64([half, half])], { axis: -1 }, { outputs: 2 }) as [
    string,
    string,
  ];
  const rotated = g.op1('Concat', [g.op1('Neg', [x2]), x1], { axis: -1 });
  return g.op1('Add', [g.op1('Mul', [x, cos]), g.op1('Mul', [rotated, sin])]);
}

export function heads(ctx: Ctx, x: string, n: number): string {
  const { g, c } = ctx;
  const r = g.op1('Reshape', [x, g.constI64([0, 0, n, c.headDim])]);
  return g.op1('Transpose', [r], { perm: [0, 2, 1, 3] });
}

/** Rotated query heads [B, Hq, S, D] and this layer's present key/value [B, Hkv, T, D]. */
export function concatKv(
  ctx: Ctx,
  s: AttentionShared,
  q: string,
  k: string,
  v: string,
  i: number,
): { qh: string; presentK: string; presentV: string } {
  const { g, c } = ctx;
  const qh = rotate(ctx, s, heads(ctx, q, c.numHeads));
  const kh = rotate(ctx, s, heads(ctx, k, c.numKvHeads));
  const vh = heads(ctx, v, c.numKvHeads);
  const presentK = g.op(
    'Concat',
    [`past_key_values.${i}.key`, kh],
    { axis: 2 },
    { outputs: [`present.${i}.key`] },
  )[0] as string;
  const presentV = g.op(
    'Concat',
    [`past_key_values.${i}.value`, vh],
    { axis: 2 },
    { outputs: [`present.${i}.value`] },
  )[0] as string;
  return { qh, presentK, presentV };
}

function portableAttention(ctx: Ctx, s: AttentionShared, q: string, k: string, v: string, i: number): string {
  const { g, c, type } = ctx;
  const { qh, presentK, presentV } = concatKv(ctx, s, q, k, v, i);
  // [B, Hq, S, D] -> [B, Hkv, group·S, D]: heads of one group are contiguous, as in HF's repeat_kv.
  const grouped = g.op1('Reshape', [qh, g.constI64([0, c.numKvHeads, -1, c.headDim])]);
  const kt = g.op1('Transpose', [presentK], { perm: [0, 1, 3, 2] });
  let scores = g.op1('MatMul', [grouped, kt]);
  if (type !== DataType.FLOAT) scores = g.op1('Cast', [scores], { to: DataType.FLOAT });
  scores = g.op1('Mul', [scores, g.constF32([1 / Math.sqrt(c.headDim)], [])]);
  let probs = g.op1('Softmax', [g.op1('Add', [scores, maskBias(ctx, s)])], { axis: -1 });
  if (type !== DataType.FLOAT) probs = g.op1('Cast', [probs], { to: type });
  const ctxV = g.op1('MatMul', [probs, presentV]);
  const perHead = g.op1('Reshape', [ctxV, g.constI64([0, c.numHeads, -1, c.headDim])]);
  const bshd = g.op1('Transpose', [perHead], { perm: [0, 2, 1, 3] });
  return g.op1('Reshape', [bshd, g.constI64([0, 0, c.numHeads * c.headDim])]);
}
