import assert from 'node:assert/strict';
import { test } from 'node:test';
import { floorMs, renderReport, type ModelRow, type Report } from './report.ts';

const GB = 1e9;

function row(model: string, provider: string, steps: Record<number, number>, deviceKv = false): ModelRow {
  return {
    model,
    provider,
    deviceKv,
    weightBytes: 2 * GB,
    decode: Object.entries(steps).map(([b, ms]) => ({ batch: Number(b), stepMs: ms, kvBytes: 0 })),
    prefill: [{ tokens: 512, ms: 100 }],
  };
}

const report = (rows: ModelRow[]): Report => ({
  date: '2026-01-01T00:00:00Z',
  seconds: 1,
  context: 512,
  ortVersion: '1.30.0',
  gpu: 'test GPU',
  autoPicked: 'cuda',
  bandwidth: { gbs: 2000, how: 'given' },
  skipped: [],
  rows,
});

test('the bandwidth floor is the bytes a step reads over the copy bandwidth', () => {
  // 2 GB of weights and 1 GB of cache at 2000 GB/s: 1.5 ms.
  assert.equal(floorMs(row('m', 'cuda', {}), 1 * GB, 2000), 1.5);
});

test('the goals are computed from the rows they name, and judged', () => {
  const md = renderReport(
    report([
      row('1b-fp16', 'cuda', { 1: 2, 32: 10, 64: 5 }),
      row('1b-fp16', 'webgpu', { 32: 60 }),
      row('1b-fp16', 'webgpu', { 32: 20 }, true),
      row('1b-fp16', 'cuda (C API)', { 1: 4, 32: 2, 64: 8 }),
    ]),
  );
  // Batch 1 at 2 ms against a 1 ms floor; batch 64 moves 64 tokens in 5 ms, 25.6× batch 1.
  assert.match(md, /\| 1b-fp16 cuda decode, batch 1: step ÷ bandwidth floor \| 2\.0× \| ≤ 3× \| met \|/);
  assert.match(
    md,
    /\| 1b-fp16 cuda aggregate decode tokens\/s, batch 64 ÷ batch 1 \| 25\.6× \| ≥ 25× \| met \|/,
  );
  assert.match(md, /\| 1b-fp16 cuda ÷ WebGPU decode throughput, batch 32 \| 6\.0× \| ≥ 5× \| met \|/);
  assert.match(
    md,
    /\| 1b-fp16 cuda ÷ WebGPU \(KV on device\) decode throughput, batch 32 \| 2\.0× \| ≥ 5× \| not met \|/,
  );
  // Each way CUDA ran is judged on its own rows.
  assert.match(
    md,
    /\| 1b-fp16 cuda \(C API\) decode, batch 1: step ÷ bandwidth floor \| 4\.0× \| ≤ 3× \| not met \|/,
  );
  assert.match(
    md,
    /\| 1b-fp16 cuda \(C API\) aggregate decode tokens\/s, batch 64 ÷ batch 1 \| 32\.0× \| ≥ 25× \| met \|/,
  );
  assert.match(
    md,
    /\| 1b-fp16 cuda \(C API\) ÷ WebGPU \(KV on device\) decode throughput, batch 32 \| 10\.0× \| ≥ 5× \| met \|/,
  );
  assert.match(md, /\| 1b-fp16 \| cuda \| 1 \| 2\.00 \| 500 \| 2000 MB \| 1\.000 \| 2\.0× \| 50\.0 % \|/);
});

test('a failed batch or model is reported, not dropped', () => {
  const failed = row('default-int4', 'webgpu', {});
  failed.error = 'could not open';
  const partial = row('default-int4', 'cuda', { 1: 3 });
  partial.decode.push({ batch: 256, error: 'out of memory' });
  const md = renderReport(report([failed, partial]));
  assert.match(md, /\| default-int4 \| webgpu \| \| failed: could not open \|/);
  assert.match(md, /\| default-int4 \| cuda \| 256 \| failed: out of memory \|/);
});
