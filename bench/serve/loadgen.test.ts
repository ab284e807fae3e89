/**
 * The load generator against a small local SSE server that streams one chunk per token at
 * a fixed pace: what it sends, how it counts and times, and that its bounds hold.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { requestBody, StreamRecord, streamRequest, type Endpoint } from './client.ts';
import { runClosedLoop, runOpenLoop } from './loadgen.ts';

const PACE_MS = 4;
let server: http.Server;
let inFlight = 0;
let peak = 0;
const bodies: Record<string, unknown>[] = [];

async function stream(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let raw = '';
  for await (const chunk of req) raw += String(chunk);
  const body = JSON.parse(raw) as Record<string, unknown>;
  bodies.push(body);
  if (body['prompt'] === 'fail') {
    res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"no"}}');
    return;
  }
  inFlight++;
  peak = Math.max(peak, inFlight);
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const n = Number(body['max_tokens']);
  for (let i = 0; i < n && !res.destroyed; i++) {
    await sleep(PACE_MS);
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: `t${i}` }] })}\n\n`);
  }
  res.write(
    `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: n } })}\n\n`,
  );
  res.end('data: [DONE]\n\n');
  inFlight--;
}

let ep: Endpoint;
before(async () => {
  server = http.createServer((req, res) => void stream(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  ep = {
    name: 'fake',
    baseUrl: `http://127.0.0.1:${port}`,
    model: 'm',
    api: 'completions',
    extraBody: { ignore_eos: true },
  };
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('the request body streams with usage, greedy, with the endpoint extras', () => {
  assert.deepEqual(requestBody({ ...ep, api: 'chat' }, 'hi', 5), {
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 5,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: true,
  });
});

test('a stream record times text chunks and derives TTFT, ITL and TPOT', () => {
  const r = new StreamRecord();
  r.onEvent('{"choices":[{"delta":{"role":"assistant","content":""}}]}', 105); // no text: not a token
  r.onEvent('{"choices":[{"delta":{"content":"a"}}]}', 110);
  r.onEvent('{"choices":[{"delta":{"content":"b"}}]}', 130);
  r.onEvent('{"choices":[{"delta":{"content":"c"}}]}', 160);
  r.onEvent('[DONE]', 161);
  const o = r.outcome(100, 170, 50);
  assert.equal(o.ok, true);
  assert.equal(o.startMs, 50);
  assert.equal(o.ttftMs, 10);
  assert.equal(o.e2eMs, 70);
  assert.equal(o.outputTokens, 3);
  assert.deepEqual(o.itlMs, [20, 30]);
  assert.equal(o.tpotMs, 30); // (70 − 10) / 2
  assert.equal(o.promptTokens, null);
});

test('usage, when sent, sets the token counts; a missing [DONE] or an error chunk fails', () => {
  const r = new StreamRecord();
  r.onEvent('{"choices":[{"text":"ab"}]}', 1);
  r.onEvent('{"choices":[],"usage":{"prompt_tokens":64,"completion_tokens":2}}', 2);
  const o = r.outcome(0, 3, 0);
  assert.equal(o.ok, false);
  assert.match(o.error ?? '', /without \[DONE\]/);
  assert.equal(o.outputTokens, 2);
  assert.equal(o.promptTokens, 64);
  const e = new StreamRecord();
  e.onEvent('{"error":{"message":"boom"}}', 1);
  e.onEvent('[DONE]', 2);
  assert.match(e.outcome(0, 3, 0).error ?? '', /boom/);
});

test('one streamed request against a server', async () => {
  const o = await streamRequest(ep, 'hello', 10, performance.now(), new AbortController().signal);
  assert.equal(o.ok, true, o.error);
  assert.equal(o.outputTokens, 10);
  assert.equal(o.promptTokens, 7);
  assert.equal(o.itlMs.length, 9);
  assert.ok((o.ttftMs ?? 0) >= PACE_MS - 1 && o.e2eMs >= 10 * (PACE_MS - 1));
  const bad = await streamRequest(ep, 'fail', 10, performance.now(), new AbortController().signal);
  assert.equal(bad.ok, false);
  assert.match(bad.error ?? '', /HTTP 400/);
});

test('a closed loop keeps exactly N requests in flight and sends the asked count', async () => {
  peak = 0;
  bodies.length = 0;
  const l = await runClosedLoop(ep, 4, {
    requests: 12,
    maxTokens: 5,
    timeLimitMs: 10_000,
    prompt: (i) => `p${i}`,
  });
  assert.equal(l.sent, 12);
  assert.equal(l.ok, 12);
  assert.equal(l.offLength, 0);
  assert.equal(peak, 4);
  assert.deepEqual(
    bodies.map((b) => b['prompt']).sort(),
    Array.from({ length: 12 }, (_, i) => `p${i}`).sort(),
  );
  assert.ok(l.outputTokensPerSec > 0 && l.ttftMs.n === 12 && l.itlMs.n === 12 * 4);
  assert.deepEqual(l.promptTokens, [7]);
});

test('the time limit cuts a run short and counts the cut requests as failed', async () => {
  const t0 = performance.now();
  const l = await runClosedLoop(ep, 2, { requests: 100, maxTokens: 50, timeLimitMs: 300, prompt: () => 'x' });
  assert.ok(performance.now() - t0 < 1500);
  assert.equal(l.timedOut, true);
  assert.ok(l.sent < 100 && l.failed === 2, `${l.sent} sent, ${l.failed} failed`);
  assert.ok(l.errors.some((e) => /time limit/.test(e)));
  assert.ok(l.outputTokens > 0 && l.outputTokensPerSec > 0, 'the tokens of cut requests count');
});

test('an open loop sends on its schedule without waiting for replies', async () => {
  peak = 0;
  const l = await runOpenLoop(ep, 200, 3, {
    requests: 20,
    maxTokens: 20,
    timeLimitMs: 10_000,
    prompt: () => 'y',
  });
  assert.equal(l.ok, 20);
  assert.equal(l.ratePerSec, 200);
  // 20 arrivals at 200/s take ~100 ms; each reply takes ~80 ms, so many overlap.
  assert.ok(peak > 3, `peak ${peak}`);
});
