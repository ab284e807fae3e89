/**
 * The drain time the tuning loop reads as the client's path: it grows when the client is slow
 * to read, whether or not this process is busy meanwhile, and not when the process's own busy
 * spell is all that held the body back. It is reported while the body is still draining, the
 * node's waiting time counts overlapping waits once, and the body goes to the probe once sent.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { PathMeter } from './path-meter.ts';
import { ResponseWriter, type TransportSample } from './transport.ts';

// More than loopback's socket buffers take at once, so the body drains as the client reads.
const BODY = { text: 'x'.repeat(48 << 20) };

let server: http.Server;
let url: string;
let samples: { sample: TransportSample; at: number }[] = [];
let waited: { bytes: number; seconds: number; at: number }[] = [];
let probed: Buffer[] = [];
/** How long the handler blocks the event loop right after handing over the body. */
let busyMs = 0;

const meter = new PathMeter((bytes, seconds) => waited.push({ bytes, seconds, at: performance.now() }));

before(async () => {
  const app = express();
  app.get('/', (_req, res) => {
    void new ResponseWriter(
      res,
      undefined,
      { algorithm: 'none', level: 0 },
      {
        done: (sample) => samples.push({ sample, at: performance.now() }),
        path: meter,
        probe: { offer: (body) => probed.push(body) },
      },
    ).json(200, BODY);
    const until = performance.now() + busyMs;
    while (performance.now() < until); // the process's own work, e.g. another response's JSON
  });
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`;
});

after(() => {
  server.close();
});

beforeEach(() => {
  samples = [];
  waited = [];
  probed = [];
  busyMs = 0;
});

interface Fetched {
  wallS: number;
  length: number;
  contentLength: string | undefined;
}

/**
 * Fetches the body, reading it only `pause` ms after the headers arrive (or once `pause`
 * settles); `onHeaders` hears when they do.
 */
async function fetchWith(pause: number | Promise<unknown>, onHeaders?: () => void): Promise<Fetched> {
  const t0 = performance.now();
  const got = await new Promise<{ length: number; contentLength: string | undefined }>((resolve, reject) => {
    http
      .get(url, (res) => {
        let length = 0;
        res.pause();
        res.on('data', (d: Buffer) => (length += d.byteLength));
        onHeaders?.();
        void (typeof pause === 'number' ? sleep(pause) : pause).then(() => {
          res.resume();
          res.on('end', () => {
            resolve({ length, contentLength: res.headers['content-length'] });
          });
        });
      })
      .on('error', reject);
  });
  return { ...got, wallS: (performance.now() - t0) / 1000 };
}

/** The server's samples, once it has reported `n` responses done. */
async function sampled(n: number): Promise<{ sample: TransportSample; at: number }[]> {
  while (samples.length < n) await new Promise((r) => setTimeout(r, 5));
  return samples;
}

const sum = (xs: readonly { seconds: number }[]) => xs.reduce((n, x) => n + x.seconds, 0);

test('a client slow to read shows as drain time', async () => {
  await fetchWith(400);
  const [got] = await sampled(1);
  assert.ok(got !== undefined);
  assert.equal(got.sample.bytesOut, got.sample.bytesIn);
  assert.ok(got.sample.drainSeconds >= 0.3, `drained in ${got.sample.drainSeconds.toFixed(3)} s`);
});

test('draining is reported while the body drains, adding up to the whole', async () => {
  const fetched = await fetchWith(400);
  const [got] = await sampled(1);
  assert.ok(got !== undefined);
  assert.equal(fetched.length, got.sample.bytesOut);
  assert.equal(fetched.contentLength, String(got.sample.bytesOut));
  // The pause shows up before the response is done, not only once it is.
  const early = sum(waited.filter((d) => d.at < got.at - 50));
  assert.ok(early >= 0.3, `waited ${early.toFixed(3)} s before the end was reported`);
  assert.ok(Math.abs(sum(waited) - got.sample.drainSeconds) < 1e-9, 'the parts add up to the response');
  const bytes = waited.reduce((n, d) => n + d.bytes, 0);
  assert.ok(bytes > 0 && bytes <= got.sample.bytesOut, `${String(bytes)} bytes waited`);
  assert.equal(probed.length, 1);
  assert.equal(probed[0]?.byteLength, got.sample.bytesIn, 'the probe gets the uncompressed body');
});

test("this process's own busy work while the body drains does not", async () => {
  busyMs = 400;
  const { wallS } = await fetchWith(0);
  const [got] = await sampled(1);
  assert.ok(got !== undefined);
  assert.ok(wallS >= 0.4, `the response took ${wallS.toFixed(3)} s`);
  assert.ok(sum(waited) < 0.2, 'nor does it show in what is reported on the way');
  assert.ok(got.sample.drainSeconds < 0.2, `drained in ${got.sample.drainSeconds.toFixed(3)} s`);
});

test('a slow client still shows in full while the process is busy in short spells', async () => {
  // A busy node: 30 ms of work in every 40, as decode steps are. The kernel sends on through
  // them, so the client's pause is the path's, not the process's. (Idle time alone reads ~25 %.)
  const spells = setInterval(() => {
    const until = performance.now() + 30;
    while (performance.now() < until);
  }, 10);
  try {
    await fetchWith(600);
  } finally {
    clearInterval(spells);
  }
  const [got] = await sampled(1);
  assert.ok(got !== undefined);
  assert.ok(got.sample.drainSeconds >= 0.45, `drained in ${got.sample.drainSeconds.toFixed(3)} s`);
});

test("overlapping waits count once in the node's waiting time, and in full per response", async () => {
  // Both clients read only once both responses are under way, and then 2 s more: the two
  // responses wait on their paths at the same time.
  let started = 0;
  const both = Promise.withResolvers<undefined>();
  const release = both.promise.then(() => sleep(2000));
  const onHeaders = () => {
    if (++started === 2) both.resolve(undefined);
  };
  await Promise.all([fetchWith(release, onHeaders), fetchWith(release, onHeaders)]);
  const got = await sampled(2);
  for (const { sample } of got)
    assert.ok(sample.drainSeconds >= 0.5, `a response drained in ${sample.drainSeconds.toFixed(3)} s`);
  // Summed per response, the shared 2 s would count twice.
  const node = sum(waited);
  const responses = got.reduce((n, g) => n + g.sample.drainSeconds, 0);
  assert.ok(
    node >= 0.6 && node < 0.8 * responses,
    `node ${node.toFixed(3)} s, responses ${responses.toFixed(3)} s`,
  );
});
