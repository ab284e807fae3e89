import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleAgd } from '../controller/sample.test-support.ts';
import { applyChanges, plan } from './plan.ts';
import type { DeploymentSignals } from './signals.ts';

const signals = (over: Partial<DeploymentSignals> = {}): DeploymentSignals => ({
  peakQueue: 0,
  peakKvUsage: 0.9,
  windowQueueSum: 0,
  windowKvSum: 0,
  ttftP99Ms: 100,
  itlP99Ms: 50,
  itlP50Ms: 30,
  batchP90: 4,
  nodes: new Map(),
  ...over,
});

const tuning = {
  mode: 'Auto',
  bounds: { kvWindowTokens: { min: 0, max: 4096 } },
  qualityPrices: [
    { knob: 'kvWindowTokens', value: 512, perplexityIncrease: 0.002 },
    { knob: 'kvWindowTokens', value: 128, perplexityIncrease: 0.3 },
  ],
};

test('KV pressure moves the window one priced rung sparser, deployment-wide', () => {
  const agd = sampleAgd({ tuning });
  const changes = plan(agd, signals(), new Date());
  const window = changes.filter((c) => c.knob === 'kvWindowTokens');
  assert.equal(window.length, 1);
  const [w] = window;
  assert.ok(w !== undefined);
  assert.deepEqual([w.from, w.to, w.node], ['0', '512', undefined]);
  assert.equal(applyChanges(undefined, changes)?.defaults.kvWindowTokens, 512);
});

test('the quality gate stops the loop: the over-priced window is never chosen', () => {
  const agd = sampleAgd({ tuning });
  agd.status = { tuning: { generation: 1, defaults: { kvWindowTokens: 512 } } };
  const window = plan(agd, signals(), new Date()).filter((c) => c.knob === 'kvWindowTokens');
  assert.deepEqual(window, [], '128 costs 30 % perplexity, over the 5 % gate');
  const looser = sampleAgd({ tuning: { ...tuning, slo: { maxPerplexityIncrease: 0.5 } } });
  looser.status = agd.status;
  assert.equal(plan(looser, signals(), new Date()).find((c) => c.knob === 'kvWindowTokens')?.to, '128');
});

test('no bounds, no move; no prices, only the dense setting', () => {
  assert.equal(
    plan(sampleAgd({ tuning: { mode: 'Auto' } }), signals(), new Date()).some(
      (c) => c.knob === 'kvWindowTokens',
    ),
    false,
  );
  const unpriced = sampleAgd({ tuning: { ...tuning, qualityPrices: [] } });
  assert.equal(
    plan(unpriced, signals(), new Date()).some((c) => c.knob === 'kvWindowTokens'),
    false,
  );
});
