/**
 * Which waits the meter counts as the path's, and how the node's waiting time adds up. A
 * response here is a stand-in writable whose kernel queue the test sets, since a real socket's
 * cannot be made to refuse or take bytes on cue (transport.test.ts runs the meter on real ones).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { PathMeter } from './path-meter.ts';

class Response extends EventEmitter {
  writableLength = 64 << 10;
  destroyed = false;
  readonly socket = { _handle: { writeQueueSize: 0 } };
  constructor(refusing: boolean) {
    super();
    this.socket._handle.writeQueueSize = refusing ? 1 : 0;
  }
  /** The kernel takes what was held back, after `ms`. */
  async drainAfter(ms: number): Promise<void> {
    await sleep(ms);
    this.socket._handle.writeQueueSize = 0;
    this.writableLength = 0;
    this.emit('drain');
  }
}

function meter() {
  const seen = { bytes: 0, seconds: 0 };
  const m = new PathMeter((bytes, seconds) => {
    seen.bytes += bytes;
    seen.seconds += seconds;
  });
  return { m, seen };
}

test('a wait while the kernel refuses bytes counts its time and bytes', async () => {
  const { m, seen } = meter();
  const res = new Response(true);
  const [s] = await Promise.all([m.wait(res, 'drain'), res.drainAfter(100)]);
  assert.ok(s >= 0.08 && s < 0.2, `${s.toFixed(3)} s`);
  assert.equal(seen.bytes, 64 << 10);
  assert.ok(Math.abs(seen.seconds - s) < 1e-9);
});

test('a wait the kernel never refused (only the stream catching up) counts nothing', async () => {
  const { m, seen } = meter();
  const res = new Response(false);
  const [s] = await Promise.all([m.wait(res, 'drain'), res.drainAfter(100)]);
  assert.equal(s, 0);
  assert.deepEqual(seen, { bytes: 0, seconds: 0 });
});

test('the kernel refusing midway, as the timer sees it, makes the wait count', async () => {
  const { m } = meter();
  const res = new Response(false);
  setTimeout(() => (res.socket._handle.writeQueueSize = 1), 30);
  const [s] = await Promise.all([m.wait(res, 'drain'), res.drainAfter(100)]);
  assert.ok(s >= 0.08, `${s.toFixed(3)} s`);
});

test('a wait that one busy spell of the process covers counts nothing', async () => {
  const { m, seen } = meter();
  const res = new Response(true);
  await sleep(10); // the event loop is running (before it is, its utilization reads zero)
  const waited = m.wait(res, 'drain');
  const until = performance.now() + 150;
  while (performance.now() < until); // the process's own work; the kernel sent meanwhile
  res.socket._handle.writeQueueSize = 0;
  res.writableLength = 0;
  res.emit('drain');
  assert.equal(await waited, 0);
  assert.equal(seen.seconds, 0);
});

test('overlapping waits count once in the node waiting time', async () => {
  const { m, seen } = meter();
  const a = new Response(true);
  const b = new Response(true);
  const both = Promise.all([
    m.wait(a, 'drain'),
    a.drainAfter(200),
    sleep(100).then(() => Promise.all([m.wait(b, 'drain'), b.drainAfter(200)])),
  ]);
  const [sa, , [sb]] = await both;
  assert.ok(sa >= 0.18 && sb >= 0.18, `${sa.toFixed(3)} s and ${sb.toFixed(3)} s`);
  // a from 0 to 200 ms, b from 100 to 300 ms: 300 ms of the node's time, not 400.
  assert.ok(seen.seconds >= 0.28 && seen.seconds < 0.36, `${seen.seconds.toFixed(3)} s`);
  assert.equal(seen.bytes, 2 * (64 << 10));
});

test('a client that went away adds nothing', async () => {
  const { m, seen } = meter();
  const res = new Response(true);
  const waited = m.wait(res, 'drain');
  await sleep(50);
  res.destroyed = true;
  res.emit('close');
  assert.equal(await waited, 0);
  assert.equal(seen.seconds, 0);
});
