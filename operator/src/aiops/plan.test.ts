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
  windowQueueMax: 0,
  windowKvMax: 0,
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
    { knob: 'kvWindowTokens', value: '512', perplexityIncrease: 0.002 },
    { knob: 'kvWindowTokens', value: '128', perplexityIncrease: 0.3 },
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

const precisionTuning = {
  mode: 'Auto',
  slo: { itlP99Ms: 100 },
  bounds: { precision: ['int4', 'int8'] },
  qualityPrices: [
    { knob: 'precision', value: 'int4', perplexityIncrease: 0.01 },
    { knob: 'precision', value: 'int8', perplexityIncrease: 0.002 },
  ],
};

test('latency pressure rolls out a cheaper priced precision, through status, never the spec', () => {
  const agd = sampleAgd({ model: { source: 'hf:org/repo', precision: 'fp16' }, tuning: precisionTuning });
  const changes = plan(agd, signals({ itlP99Ms: 95 }), new Date());
  const p = changes.find((c) => c.knob === 'precision');
  assert.deepEqual([p?.from, p?.to], ['fp16', 'int8'], 'one rung at a time');
  assert.equal(applyChanges(undefined, changes)?.precision, 'int8');
  assert.equal(agd.spec.model.precision, 'fp16');
});

test('a precision change waits for the rollout cooldown after any slow knob, and holds for a replica change', () => {
  const now = new Date();
  const agd = sampleAgd({ model: { source: 'hf:org/repo', precision: 'fp16' }, tuning: precisionTuning });
  agd.status = {
    decisions: [
      {
        time: new Date(now.getTime() - 60_000).toISOString(),
        knob: 'replicas',
        from: '1',
        to: '2',
        reason: 'load',
        applied: true,
      },
    ],
  };
  assert.equal(
    plan(agd, signals({ itlP99Ms: 95 }), now).some((c) => c.knob === 'precision'),
    false,
  );
  const scaling = sampleAgd({
    model: { source: 'hf:org/repo', precision: 'fp16' },
    autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 4 },
    tuning: precisionTuning,
  });
  scaling.status = { readyReplicas: 1 };
  const both = plan(scaling, signals({ itlP99Ms: 95, peakQueue: 20 }), now);
  assert.ok(both.some((c) => c.knob === 'replicas'));
  assert.equal(
    both.some((c) => c.knob === 'precision'),
    false,
  );
});

test('an unpriced or out-of-bounds precision is never rolled out, and one past the gate goes back', () => {
  const unpriced = sampleAgd({
    model: { source: 'hf:org/repo', precision: 'fp16' },
    tuning: { ...precisionTuning, qualityPrices: [] },
  });
  assert.equal(
    plan(unpriced, signals({ itlP99Ms: 95 }), new Date()).some((c) => c.knob === 'precision'),
    false,
  );
  const past = sampleAgd({ model: { source: 'hf:org/repo', precision: 'fp16' }, tuning: precisionTuning });
  past.status = { tuning: { generation: 1, defaults: {}, precision: 'fp32' } };
  const back = plan(past, signals({ itlP99Ms: 60 }), new Date()).find((c) => c.knob === 'precision');
  assert.deepEqual([back?.from, back?.to], ['fp32', 'fp16']);
});
