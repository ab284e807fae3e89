import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planStep, type RunningSeq, type WaitingSeq } from './policy.ts';

const limits = { maxBatchSize: 4, maxBatchedTokens: 64, freeSlots: 10 };
const decoding = (id: string): RunningSeq => ({ id, remainingPrompt: 0 });
const waiting = (id: string, promptTokens: number): WaitingSeq => ({ id, promptTokens });

test('decodes come first, then waiting requests are admitted within the budget', () => {
  const plan = planStep([decoding('a'), decoding('b')], [waiting('c', 20), waiting('d', 30)], limits);
  assert.deepEqual(plan.decode, ['a', 'b']);
  assert.deepEqual(plan.admit, ['c', 'd']);
  assert.deepEqual(plan.prefill, [
    { id: 'c', tokens: 20 },
    { id: 'd', tokens: 30 },
  ]);
});

test('a long prompt is chunked to the remaining budget and does not stall decodes', () => {
  const plan = planStep([decoding('a')], [waiting('long', 1000)], limits);
  assert.deepEqual(plan.decode, ['a']);
  assert.deepEqual(plan.prefill, [{ id: 'long', tokens: 63 }]);
  const next = planStep([decoding('a'), { id: 'long', remainingPrompt: 937 }], [], limits);
  assert.deepEqual(next.decode, ['a']);
  assert.deepEqual(next.prefill, [{ id: 'long', tokens: 63 }]);
});

test('the sequence cap and the free KV slots bound admission', () => {
  const four = [decoding('a'), decoding('b'), decoding('c')];
  assert.deepEqual(planStep(four, [waiting('d', 1), waiting('e', 1)], limits).admit, ['d']);
  assert.deepEqual(planStep([], [waiting('d', 1), waiting('e', 1)], { ...limits, freeSlots: 1 }).admit, [
    'd',
  ]);
  assert.deepEqual(planStep([], [waiting('d', 1)], { ...limits, freeSlots: 0 }).admit, []);
});

test('arrival order is kept: a request that does not fit is not overtaken', () => {
  const plan = planStep([], [waiting('big', 100), waiting('small', 1)], { ...limits, maxBatchedTokens: 64 });
  assert.deepEqual(plan.admit, ['big']);
  assert.deepEqual(plan.prefill, [{ id: 'big', tokens: 64 }]);
});

test('with more decodes than budget, the budget caps the step', () => {
  const running = ['a', 'b', 'c'].map(decoding);
  assert.deepEqual(planStep(running, [waiting('d', 5)], { ...limits, maxBatchedTokens: 2 }).decode, [
    'a',
    'b',
  ]);
});
