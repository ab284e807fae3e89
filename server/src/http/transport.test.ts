/**
 * The drain time the tuning loop reads as the client's path: it grows when the client is slow
 * to read, and not when this process is busy with other work while the body drains. It is also
 * reported while the body is still draining, and the body goes to the probe once sent.
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
let drained: { bytes: number; waitS: number; at: number }[] = [];
let probed: Buffer[] = [];
/** How long the handler blocks the event loop right after handing over the body. */
let busyMs = 0;

before(async () => {
  const app = express();
  app.get('/', (_req, res) => {
    void new ResponseWriter(
      res,
      undefined,
      { algorithm: 'none', level: 0 },
      {
        done: (s) => {
          onSample(s);
        },
        drained: (bytes, waitS) => drained.push({ bytes, waitS, at: performance.now() }),
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

interface Fetched {
  sample: TransportSample;
  wallS: number;
  /** When the server reported the whole response drained. */
  doneAt: number;
  length: number;
  contentLength: string | undefined;
}

/** Fetches the body, pausing `pauseMs` before reading the rest; resolves with the server's sample. */
async function fetchWith(pauseMs: number): Promise<Fetched> {
  drained = [];
  probed = [];
  const sampled = new Promise<{ sample: TransportSample; doneAt: number }>(
    (resolve) =>
      (onSample = (sample) => {
        resolve({ sample, doneAt: performance.now() });
      }),
  );
  const t0 = performance.now();
  const got = await new Promise<{ length: number; contentLength: string | undefined }>((resolve, reject) => {
    http
      .get(url, (res) => {
        let length = 0;
        res.pause();
        res.on('data', (d: Buffer) => (length += d.byteLength));
        setTimeout(() => {
          res.resume();
          res.on('end', () => {
            resolve({ length, contentLength: res.headers['content-length'] });
          });
        }, pauseMs);
      })
      .on('error', reject);
  });
  const { sample, doneAt } = await sampled;
  return { sample, doneAt, ...got, wallS: (performance.now() - t0) / 1000 };
}

test('a client slow to read shows as drain time', async () => {
  busyMs = 0;
  const { sample } = await fetchWith(400);
  assert.equal(sample.bytesOut, sample.bytesIn);
  assert.ok(sample.drainSeconds >= 0.3, `drained in ${sample.drainSeconds.toFixed(3)} s`);
});

test('draining is reported while the body drains, adding up to the whole', async () => {
  busyMs = 0;
  const got = await fetchWith(400);
  assert.equal(got.length, got.sample.bytesOut);
  assert.equal(got.contentLength, String(got.sample.bytesOut));
  const waited = drained.filter((d) => d.waitS > 0);
  // The pause shows up before the response is done, not only once it is.
  const early = waited.filter((d) => d.at < got.doneAt - 50).reduce((n, d) => n + d.waitS, 0);
  assert.ok(early >= 0.3, `waited ${early.toFixed(3)} s before the end was reported`);
  const total = drained.reduce((n, d) => n + d.waitS, 0);
  assert.ok(Math.abs(total - got.sample.drainSeconds) < 1e-9, 'the parts add up to the response');
  assert.equal(
    drained.reduce((n, d) => n + d.bytes, 0),
    got.sample.bytesOut,
  );
  assert.equal(probed.length, 1);
  assert.equal(probed[0]?.byteLength, got.sample.bytesIn, 'the probe gets the uncompressed body');
});

test("this process's own busy work while the body drains does not", async () => {
  busyMs = 400;
  const { sample, wallS } = await fetchWith(0);
  assert.ok(
    drained.reduce((n, d) => n + d.waitS, 0) < 0.2,
    'nor does it show in what is reported on the way',
  );
  assert.ok(wallS >= 0.4, `the response took ${wallS.toFixed(3)} s`);
  assert.ok(sample.drainSeconds < 0.2, `drained in ${sample.drainSeconds.toFixed(3)} s`);
});
