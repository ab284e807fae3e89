import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Value } from 'typebox/value';
import { AutoGLMDeploymentSpecSchema } from '../../crds/deployment.ts';
import { paretoFront, qualityPrices, safeRange, type Row } from './report.ts';

const params = { kvWindowTokens: 0, kvSinkTokens: 4, headEntropyThreshold: 0, headUpdateInterval: 32 };
const row = (knob: Row['knob'], setting: string, perplexity: number, tps: number, kvMiB: number): Row => ({
  knob,
  setting,
  variant: 'v',
  params,
  perplexity,
  decodeTokensPerSecond: tps,
  kvMiB,
  weightsMiB: 10,
  attentionSkipped: undefined,
});

test('the front keeps settings nothing beats on every axis', () => {
  const rows = [
    row('kvWindowTokens', 'all', 10, 100, 40),
    row('kvWindowTokens', '256', 10.2, 110, 20),
    row('kvWindowTokens', 'worse', 10.5, 105, 30), // beaten by 256 on all three
    row('kvWindowTokens', '64', 12, 120, 5),
  ];
  assert.deepEqual(paretoFront(rows), ['kvWindowTokens: all', 'kvWindowTokens: 256', 'kvWindowTokens: 64']);
});

test('the safe range holds settings within the allowed increase and recommends the leanest', () => {
  const rows = [
    row('kvWindowTokens', 'all', 10, 100, 40),
    row('kvWindowTokens', '256', 10.4, 110, 20),
    row('kvWindowTokens', '128', 10.6, 115, 10),
    row('precision', 'fp32', 9, 50, 40),
  ];
  const r = safeRange(rows, 'kvWindowTokens', 0.05);
  assert.equal(r.limit, 10.5);
  assert.deepEqual(r.safe, ['all', '256']);
  assert.equal(r.recommended, '256');
  assert.throws(() => safeRange(rows, 'headEntropyThreshold', 0.05), /no rows/);
});

test('quality prices take the settings that differ from the baseline in their knob alone', () => {
  const withParams = (r: Row, p: Partial<Row['params']>): Row => ({ ...r, params: { ...r.params, ...p } });
  const rows = [
    row('kvWindowTokens', 'all', 10, 100, 40),
    withParams(row('kvWindowTokens', '256', 10.2, 110, 20), { kvWindowTokens: 256 }),
    withParams(row('kvWindowTokens', 'no sinks', 12, 110, 20), { kvWindowTokens: 256, kvSinkTokens: 0 }),
    row('precision', 'fp32', 9, 50, 40),
  ];
  const fp16 = { ...row('precision', 'fp16', 9.09, 60, 20), variant: 'fp16' };
  const fp16a8 = { ...row('precision', 'fp16, int8 activations', 9.5, 70, 20), variant: 'fp16-a8' };
  assert.deepEqual(qualityPrices([...rows, fp16, fp16a8]), [
    { knob: 'precision', value: 'fp16', perplexityIncrease: 0.01 },
    { knob: 'kvWindowTokens', value: '256', perplexityIncrease: 0.02 },
  ]);
});

test('the prices fit spec.tuning.qualityPrices as the CRD validates it', () => {
  const rows = [
    row('precision', 'fp32', 9, 50, 40),
    { ...row('precision', 'int8', 9.1, 60, 40), variant: 'int8' },
    row('kvWindowTokens', 'all', 10, 100, 40),
    { ...row('kvWindowTokens', '256', 10.2, 110, 20), params: { ...params, kvWindowTokens: 256 } },
  ];
  const spec = Value.Default(AutoGLMDeploymentSpecSchema, {
    model: { source: 'hf:org/repo' },
    tuning: { qualityPrices: qualityPrices(rows) },
  });
  assert.deepEqual([...Value.Errors(AutoGLMDeploymentSpecSchema, spec)], []);
});
