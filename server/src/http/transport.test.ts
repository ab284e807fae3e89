/**
 * The drain time the tuning loop reads as the client's path: it grows when the client is slow
 * to read, and not when this process is busy with other work while the body drains.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import express from 'express';
import { ResponseWriter, type TransportSample } from './transport.ts';

// More than loopback's socket buffers take at once, so the body drains as the client reads.
const BODY = { text: 'x'.repeat(48 << 20) };

let server: http.Server;
let url: string;
let onSample: (s: TransportSample) => void = () => undefined;
/** How long the handler blocks the event loop right after handing over the body. */
let busyMs = 0;

before(async () => {
  const app = express();
  app.get('/', (_req, res) => {
    new ResponseWriter(res, undefined, { algorithm: 'none', level: 0 }, (s) => {
      onSample(s);
    }).json(200, BODY);
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

/** Fetches the body, pausing `pauseMs` before reading the rest; resolves with the server's sample. */
async function fetchWith(pauseMs: number): Promise<{ sample: TransportSample; wallS: number }> {
  const sampled = new Promise<TransportSample>((resolve) => (onSample = resolve));
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    http
      .get(url, (res) => {
        res.pause();
        setTimeout(() => {
          res.resume();
          res.on('end', resolve);
        }, pauseMs);
      })
      .on('error', reject);
  });
  return { sample: await sampled, wallS: (performance.now() - t0) / 1000 };
}

test('a client slow to read shows as drain time', async () => {
  busyMs = 0;
  const { sample } = await fetchWith(400);
  assert.equal(sample.bytesOut, sample.bytesIn);
  assert.ok(sample.drainSeconds >= 0.3, `drained in ${sample.drainSeconds.toFixed(3)} s`);
});

test("this process's own busy work while the body drains does not", async () => {
  busyMs = 400;
  const { sample, wallS } = await fetchWith(0);
  assert.ok(wallS >= 0.4, `the response took ${wallS.toFixed(3)} s`);
  assert.ok(sample.drainSeconds < 0.2, `drained in ${sample.drainSeconds.toFixed(3)} s`);
});
