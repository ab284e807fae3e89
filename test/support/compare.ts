/** Numeric comparisons shared by the model tests. */

/** max |a - b| / max |b|: robust to logits near zero, strict where it matters. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs((actual[i] ?? 0) - (expected[i] ?? 0)));
    scale = Math.max(scale, Math.abs(expected[i] ?? 0));
  }
  return err / (scale || 1);
}

export function concat(rows: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}
