/**
 * 1,000 requests, a fifth of them streams the client abandons: afterwards nothing is
 * running, the KV cache is empty, and memory has not grown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { metricValue, useServedModel } from '../support/server.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const served = useServedModel();

async function one(i: number): Promise<void> {
  const prompt = `request ${i} says hello`;
  if (i % 5 !== 0) {
    await served.client.completions.create({ model: 'test-model', prompt, max_tokens: 4, temperature: 0 });
    return;
  }
  const abort = new AbortController();
  const stream = await served.client.completions.create(
    { model: 'test-model', prompt, max_tokens: 64, temperature: 0, stream: true },
    { signal: abort.signal },
  );
  try {
    for await (const chunk of stream) {
      if (chunk.choices.length === 0) continue;
      abort.abort();
      break;
    }
  } catch {
    // aborted
  }
}

async function batch(from: number, count: number, concurrency: number): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < from + count) await one(next++);
    }),
  );
}

async function settled(): Promise<number> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  return process.memoryUsage().heapUsed;
}

test('after 1,000 requests including aborted streams, KV usage is zero and memory is flat', async (t) => {
  await batch(0, 200, 16);
  const warm = await settled();
  await batch(200, 800, 16);
  const engine = served.server.context.model?.engine;
  for (let i = 0; i < 100 && (engine?.running ?? 1) + (engine?.waiting ?? 1) > 0; i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.equal(engine?.running, 0);
  assert.equal(engine.waiting, 0);
  assert.equal(engine.kvUsage(), 0);
  const end = await settled();
  const growth = (end - warm) / 1e6;
  t.diagnostic(
    `heap after 200 requests ${(warm / 1e6).toFixed(1)} MB, after 1000 ${(end / 1e6).toFixed(1)} MB`,
  );
  assert.ok(growth < 8, `heap grew ${growth.toFixed(1)} MB over 800 requests`);
  const text = await (await fetch(`${served.server.url}/metrics`)).text();
  assert.equal(metricValue(text, 'autoglm_kv_cache_usage_perc'), 0);
  assert.equal(metricValue(text, 'autoglm_num_requests_running'), 0);
  const finished = ['stop', 'length', 'abort'].reduce(
    (n, r) => n + (metricValue(text, 'autoglm_request_success_total', { finished_reason: r }) ?? 0),
    0,
  );
  assert.equal(finished, 1000);
});
