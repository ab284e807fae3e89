import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from './queue.ts';

describe('WorkQueue', () => {
  it('merges duplicate keys', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    assert.equal(q.depth, 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.depth, 0);
  });

  it('never hands one key to two workers; an add while active runs it again afterwards', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    assert.equal(key, 'a');
    q.add('a');
    assert.equal(q.depth, 0, 'held back while active');
    q.done('a');
    assert.equal(q.depth, 1);
    assert.equal(await q.get(), 'a');
  });

  it('backs off exponentially per key and resets on forget', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 35 });
    assert.equal(q.addRateLimited('k'), 10);
    assert.equal(q.addRateLimited('k'), 20);
    assert.equal(q.addRateLimited('k'), 35);
    assert.equal(q.addRateLimited('other'), 10);
    assert.equal(q.failures('k'), 3);
    q.forget('k');
    assert.equal(q.failures('k'), 0);
    assert.equal(await q.get(), 'k');
    q.shutDown();
  });

  it('wakes a waiting worker and ends waiters on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    assert.equal(await waiting, 'x');
    const idle = q.get();
    q.shutDown();
    assert.equal(await idle, undefined);
  });
});
