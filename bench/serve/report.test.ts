import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LevelResult } from './loadgen.ts';
import { computeRatios, throughputAt, type TargetResult } from './report.ts';
import { summarize } from './stats.ts';

function level(concurrency: number, outputTokensPerSec: number, timedOut = false): LevelResult {
  const none = summarize([]);
  return {
    mode: 'closed',
    concurrency,
    requests: 1,
    sent: 1,
    ok: timedOut ? 0 : 1,
    failed: timedOut ? 1 : 0,
    offLength: 0,
    timedOut,
    wallSec: 1,
    outputTokens: Math.round(outputTokensPerSec),
    outputTokensPerSec,
    requestsPerSec: 1,
    ttftMs: none,
    tpotMs: none,
    itlMs: none,
    e2eMs: none,
    promptTokens: [],
    errors: [],
  };
}

const server = (name: TargetResult['name'], closed: LevelResult[]): TargetResult => ({
  name,
  status: 'ok',
  closed,
  open: [],
});

test('throughput at a level is its output rate, cut levels flagged, missing or failed is null', () => {
  const ours = server('ours', [level(1, 10), level(32, 100, true)]);
  assert.deepEqual(throughputAt(ours, 1), { value: 10, cut: false });
  assert.deepEqual(throughputAt(ours, 32), { value: 100, cut: true });
  assert.equal(throughputAt(ours, 64), null);
  assert.equal(throughputAt({ ...ours, status: 'failed' }, 1), null);
  assert.equal(throughputAt(undefined, 1), null);
});

test('the target ratios divide aggregate rates and say when one is missing', () => {
  const ratios = computeRatios(
    [
      server('ours', [level(1, 10), level(32, 90)]),
      server('llama-server', [level(1, 30), level(32, 45, true)]),
    ],
    32,
  );
  const byName = new Map(ratios.map((r) => [r.name, r]));
  assert.equal(byName.get('ours 32 concurrent ÷ ours single stream')?.value, 9);
  assert.equal(byName.get('ours 32 concurrent ÷ ours single stream')?.goal, 8);
  const vsLlama = byName.get('ours 32 concurrent ÷ llama-server 32 concurrent');
  assert.ok(vsLlama !== undefined);
  assert.equal(vsLlama.value, 2);
  assert.match(vsLlama.detail, /time limit/);
  assert.equal(byName.get('ours 32 concurrent ÷ transformers.js batch 32')?.value, null);
  assert.equal(byName.get('llama-server 32 concurrent ÷ its single stream')?.value, 1.5);
});
