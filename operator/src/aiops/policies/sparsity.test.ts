import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admitted, admittedPrecisions, nextPrecision, nextSparsity, type QualityPrice } from './sparsity.ts';

const prices: QualityPrice[] = [
  { knob: 'kvWindowTokens', value: '512', perplexityIncrease: 0 },
  { knob: 'kvWindowTokens', value: '256', perplexityIncrease: 0.01 },
  { knob: 'kvWindowTokens', value: '128', perplexityIncrease: 0.03 },
  { knob: 'kvWindowTokens', value: '64', perplexityIncrease: 0.2 },
  { knob: 'headEntropyThreshold', value: '0.1', perplexityIncrease: 0.001 },
  { knob: 'headEntropyThreshold', value: '0.2', perplexityIncrease: 0.06 },
];
const calm = { peakKvUsage: 0.5, kvThreshold: 0.8, itlP99Ms: 60, itlSloMs: 100 };

describe('sparsity', () => {
  it('admits only priced settings within the bounds and the gate, densest first', () => {
    assert.deepEqual(admitted('kvWindowTokens', { min: 0, max: 100000 }, prices, 0.05), [0, 512, 256, 128]);
    assert.deepEqual(admitted('kvWindowTokens', { min: 200, max: 100000 }, prices, 0.05), [512, 256]);
    assert.deepEqual(
      admitted('kvWindowTokens', { min: 0, max: 100000 }, [], 0.05),
      [0],
      'unpriced: dense only',
    );
    assert.deepEqual(admitted('headEntropyThreshold', { min: 0, max: 1 }, prices, 0.05), [0, 0.1]);
  });

  it('moves one setting sparser under pressure, denser when it eases, and holds between', () => {
    const ladder = [0, 512, 256, 128];
    const kvFull = { ...calm, peakKvUsage: 0.85 };
    assert.equal(nextSparsity('kvWindowTokens', 0, ladder, kvFull).value, 512);
    assert.equal(nextSparsity('kvWindowTokens', 256, ladder, kvFull).value, 128);
    assert.equal(nextSparsity('kvWindowTokens', 128, ladder, kvFull).value, 128, 'the gate stops it');
    assert.equal(nextSparsity('kvWindowTokens', 256, ladder, calm).value, 256, 'dead band');
    assert.equal(nextSparsity('kvWindowTokens', 256, ladder, { ...calm, peakKvUsage: 0.3 }).value, 512);
    const slow = { ...calm, itlP99Ms: 95 };
    assert.equal(nextSparsity('headEntropyThreshold', 0, [0, 0.1], slow).value, 0.1);
    assert.equal(nextSparsity('headEntropyThreshold', 0.1, [0, 0.1], { ...calm, itlP99Ms: 20 }).value, 0);
  });

  it('steps back inside the gate at once when the current setting is no longer admitted', () => {
    const r = nextSparsity('kvWindowTokens', 64, [0, 512, 256, 128], calm);
    assert.equal(r.value, 128);
    assert.match(r.reason, /quality gate/);
    assert.equal(nextSparsity('headEntropyThreshold', 0.2, [0, 0.1], calm).value, 0.1);
  });
});

describe('precision', () => {
  const priced: QualityPrice[] = [
    { knob: 'precision', value: 'int8', perplexityIncrease: 0.001 },
    { knob: 'precision', value: 'int4', perplexityIncrease: 0.09 },
  ];
  it('admits the spec precision and priced ones within bounds and the gate, most exact first', () => {
    assert.deepEqual(admittedPrecisions('fp16', ['int8', 'int4'], priced, 0.05), ['fp16', 'int8']);
    assert.deepEqual(
      admittedPrecisions('int4', ['int8'], priced, 0.05),
      ['int8', 'int4'],
      'the spec is never gated',
    );
    assert.deepEqual(admittedPrecisions('fp16', ['fp32'], priced, 0.05), ['fp16'], 'unpriced');
  });
  it('moves one rung on latency, and back to the spec when gated out', () => {
    assert.equal(nextPrecision('fp16', 'fp16', ['fp16', 'int8'], { ...calm, itlP99Ms: 95 }).value, 'int8');
    assert.equal(nextPrecision('int8', 'fp16', ['fp16', 'int8'], { ...calm, itlP99Ms: 30 }).value, 'fp16');
    assert.equal(nextPrecision('int8', 'fp16', ['fp16', 'int8'], calm).value, 'int8');
    assert.equal(nextPrecision('int4', 'fp16', ['fp16', 'int8'], calm).value, 'fp16');
  });
});
