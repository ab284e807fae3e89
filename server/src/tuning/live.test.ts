import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SERVING_PARAMS_DEFAULTS, type ServingParams } from '../../../crds/tuning.ts';
import { AutoGLMError } from '../errors.ts';
import { LiveParams, sameParams, type ParamsChange } from './live.ts';

const bigger: ServingParams = { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 64 };

test('starts from the defaults and hands out frozen snapshots', () => {
  const live = new LiveParams();
  assert.equal(live.get(), SERVING_PARAMS_DEFAULTS);
  live.set(bigger);
  assert.deepEqual(live.get(), bigger);
  assert.ok(Object.isFrozen(live.get()));
  assert.ok(Object.isFrozen(live.get().compression));
});

test('a change reaches subscribers with the old and new values; no change, no call', () => {
  const live = new LiveParams();
  const seen: ParamsChange[] = [];
  const unsubscribe = live.subscribe((change) => seen.push(change));
  assert.equal(live.set(bigger), true);
  assert.equal(live.set({ ...bigger }), false);
  const [change, ...more] = seen;
  assert.deepEqual(more, []);
  assert.ok(change !== undefined);
  assert.equal(change.previous, SERVING_PARAMS_DEFAULTS);
  assert.deepEqual(change.next, bigger);
  unsubscribe();
  live.set(SERVING_PARAMS_DEFAULTS);
  assert.equal(seen.length, 1);
});

test('invalid parameters are refused and change nothing', () => {
  const live = new LiveParams();
  assert.throws(
    () => live.set({ ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 0 }),
    (err: unknown) => err instanceof AutoGLMError && err.code === 'invalid_argument',
  );
  assert.throws(() => new LiveParams({ ...SERVING_PARAMS_DEFAULTS, streamChunkTokens: 65 }), AutoGLMError);
  assert.equal(live.get(), SERVING_PARAMS_DEFAULTS);
});

test('a throwing listener does not stop the others or the change', () => {
  const live = new LiveParams();
  let reached = false;
  live.subscribe(() => {
    throw new Error('boom');
  });
  live.subscribe(() => {
    reached = true;
  });
  assert.throws(() => live.set(bigger), AggregateError);
  assert.equal(reached, true);
  assert.deepEqual(live.get(), bigger);
});

test('compression level does not count when compression is off', () => {
  const a: ServingParams = { ...SERVING_PARAMS_DEFAULTS, compression: { algorithm: 'none' } };
  const b: ServingParams = { ...SERVING_PARAMS_DEFAULTS, compression: { algorithm: 'none', level: 5 } };
  const gzip = (level: number): ServingParams => ({
    ...SERVING_PARAMS_DEFAULTS,
    compression: { algorithm: 'gzip', level },
  });
  assert.equal(sameParams(a, b), true);
  assert.equal(sameParams(gzip(1), gzip(2)), false);
  assert.equal(sameParams(gzip(3), gzip(3)), true);
});
