import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dequantizeQ8, quantizeInt8 } from './int8.ts';

test('int8 blocks come back within half a step of their block scale', () => {
  const rows = 3;
  const cols = 70; // two whole blocks and a short one
  const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 5)));
  const q = quantizeInt8(values, rows, cols);
  assert.equal(q.scales.length, rows * 3);
  assert.equal(q.codes.length, rows * 3 * 32);
  const back = dequantizeQ8(q);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const scale = q.scales[r * 3 + Math.floor(c / 32)] ?? 0;
      const err = Math.abs((back[r * cols + c] ?? 0) - (values[r * cols + c] ?? 0));
      assert.ok(err <= scale / 2 + 1e-6, `row ${r} col ${c}: error ${err} over half of scale ${scale}`);
    }
  }
  // The padding of the short block holds the zero code, so it adds nothing to a product.
  assert.ok(q.codes.subarray(2 * 32 + 6, 3 * 32).every((c) => c === 128));
});

test('an all-zero block keeps scale 0 and non-finite values are refused', () => {
  const q = quantizeInt8(new Float32Array(32), 1, 32);
  assert.equal(q.scales[0], 0);
  assert.deepEqual([...dequantizeQ8(q)], new Array<number>(32).fill(0));
  assert.throws(() => quantizeInt8(Float32Array.of(1, Number.NaN), 1, 2), /not finite/);
});
