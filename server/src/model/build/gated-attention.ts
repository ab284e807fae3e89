/**
 * Attention with per-sequence head gating, for builds with `headGating`. Each layer takes
 * `head_index.N` [batch, active]: the query heads to compute for each row. Only those heads
 * are gathered (with their KV group's keys and values), scored and softmaxed, so the
 * attention work shrinks with the number of active heads; the skipped heads contribute zero
 * to the output projection. A row with fewer active heads than the batch's widest repeats
 * one of its heads, which computes the same values twice and writes them to one place.
 *
 * Each layer also returns `attn_entropy.N` [batch, active]: the entropy of every computed
 * head's attention, divided by the log of the keys each query could see (so 0 is one key,
 * 1 is uniform), averaged over the step's queries. The engine reads it on the steps where it
 * re-measures the heads, and gates off those at or above its threshold.
 */
import { DataType } from '../onnx/model.ts';
import { allowedMask, additiveMask, concatKv, type AttentionShared, type Ctx } from './attention.ts';

export const headIndexInput = (layer: number): string => `head_index.${layer}`;
export const headEntropyOutput = (layer: number): string => `attn_entropy.${layer}`;

/** Batch row of each [B, K] entry, and the [B, K, 2] (row, head) pairs ScatterND writes to. */
function rowHeadPairs(ctx: Ctx, idx: string): string {
  const { g } = ctx;
  const shape = g.op1('Shape', [idx]);
  const batch = g.op1('Shape', [idx], { start: 0, end: 1 });
  const rows = g.op1('Range', [
    g.constI64([0], []),
    g.op1('Squeeze', [batch, g.constI64([0])]),
    g.constI64([1], []),
  ]);
  const rowOf = g.op1('Expand', [g.op1('Unsqueeze', [rows, g.constI64([1])]), shape]);
  return g.op1(
    'Concat',
    [g.op1('Unsqueeze', [rowOf, g.constI64([-1])]), g.op1('Unsqueeze', [idx, g.constI64([-1])])],
    { axis: -1 },
  );
}

/** Normalized attention entropy per computed head, [B, K], from probabilities [B, K, S, T]. */
function entropy(ctx: Ctx, s: AttentionShared, probs: string): string {
  const { g } = ctx;
  const logp = g.op1('Log', [g.op1('Max', [probs, g.constF32([1e-30], [])])]);
  const h = g.op1('Neg', [
    g.op1('ReduceSum', [g.op1('Mul', [probs, logp]), g.constI64([-1])], { keepdims: 0 }),
  ]);
  // log(visible keys) per query row, [B, 1, S]; one visible key has zero entropy, so any
  // positive divisor serves there.
  const visible = g.op1(
    'ReduceSum',
    [g.op1('Cast', [allowedMask(ctx, s)], { to: DataType.FLOAT }), g.constI64([-1])],
    {
      keepdims: 0,
    },
  );
  const scale = g.op1('Log', [g.op1('Max', [visible, g.constF32([2], [])])]);
  return g.op1('ReduceMean', [g.op1('Div', [h, scale]), g.constI64([2])], { keepdims: 0 });
}

export function gatedAttention(
  ctx: Ctx,
  s: AttentionShared,
  q: string,
  k: string,
  v: string,
  i: number,
): string {
  const { g, c, type } = ctx;
  const { qh, presentK, presentV } = concatKv(ctx, s, q, k, v, i);
  const idx = headIndexInput(i);
  const at = g.op1('Unsqueeze', [idx, g.constI64([-1])]);
  const kvAt = g.op1('Unsqueeze', [
    g.op1('Div', [idx, g.constI64([c.numHeads / c.numKvHeads], [])]),
    g.constI64([-1]),
  ]);
  const qa = g.op1('GatherND', [qh, at], { batch_dims: 1 });
  const ka = g.op1('GatherND', [presentK, kvAt], { batch_dims: 1 });
  const va = g.op1('GatherND', [presentV, kvAt], { batch_dims: 1 });
  let scores = g.op1('MatMul', [qa, g.op1('Transpose', [ka], { perm: [0, 1, 3, 2] })]);
  if (type !== DataType.FLOAT) scores = g.op1('Cast', [scores], { to: DataType.FLOAT });
  scores = g.op1('Mul', [scores, g.constF32([1 / Math.sqrt(c.headDim)], [])]);
  const probs = g.op1('Softmax', [g.op1('Add', [scores, additiveMask(ctx, s)])], { axis: -1 });
  g.op('Identity', [entropy(ctx, s, probs)], {}, { outputs: [headEntropyOutput(i)] });
  const p = type === DataType.FLOAT ? probs : g.op1('Cast', [probs], { to: type });
  const out = g.op1('MatMul', [p, va]);
  const zero = type === DataType.FLOAT ? g.constF32([0], []) : g.constF16([0], []);
  const all = g.op1('ScatterND', [g.op1('Mul', [qh, zero]), rowHeadPairs(ctx, idx), out]);
  const bshd = g.op1('Transpose', [all], { perm: [0, 2, 1, 3] });
  return g.op1('Reshape', [bshd, g.constI64([0, 0, c.numHeads * c.headDim])]);
}
