/**
 * Live tuning through the mounted file: a change applies without a restart, the node's own
 * section wins over the defaults, and a broken file changes nothing but raises an error.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../server/src/http/server.ts';
import { metricValue, randomModel, serve } from '../support/server.ts';

let model: Awaited<ReturnType<typeof randomModel>>;
let server: RunningServer;
let dir: string;
let file: string;
let textCache = '';

before(async () => {
  model = await randomModel('fast');
  dir = await mkdtemp(join(tmpdir(), 'autoglm-tuning-'));
  file = join(dir, 'tuning.yaml');
  process.env['NODE_NAME'] = 'node-b';
  server = await serve(model.dir, { tuningFile: file });
});
after(async () => {
  delete process.env['NODE_NAME'];
  await server.close(1000);
  await model.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function until(
  check: () => boolean,
  refresh: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await refresh();
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail('condition not reached in 5 s');
}

/** A raw streamed chat request: headers, and the number of tokens in each content event. */
function streamRaw(url: string): Promise<{ encoding: string | undefined; tokensPerEvent: number[] }> {
  const body = JSON.stringify({
    messages: [{ role: 'user', content: 'count' }],
    max_tokens: 12,
    temperature: 0,
    stream: true,
    logprobs: true,
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/chat/completions`,
      { method: 'POST', headers: { 'accept-encoding': 'gzip' } },
      (res) => {
        const encoding = res.headers['content-encoding'];
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          import('node:zlib')
            .then((zlib) => {
              const raw = Buffer.concat(chunks);
              const text = (encoding === 'gzip' ? zlib.gunzipSync(raw) : raw).toString();
              const events = text.split('\n\n').filter((e) => e.startsWith('data: {'));
              const tokensPerEvent = events
                .map(
                  (e) => JSON.parse(e.slice(6)) as { choices: { logprobs: { content: unknown[] } | null }[] },
                )
                .map((c) => c.choices[0]?.logprobs?.content.length ?? 0)
                .filter((n) => n > 0);
              resolve({ encoding, tokensPerEvent });
            })
            .catch(reject);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('a new file applies without a restart; the node section wins over the defaults', async () => {
  const before = await streamRaw(server.url);
  assert.equal(before.encoding, undefined);
  assert.ok(before.tokensPerEvent.every((n) => n === 1));
  await writeFile(
    file,
    [
      'apiVersion: serving.autoglm.io/v1alpha1',
      'kind: ServingTuning',
      'defaults:',
      '  streamChunkTokens: 2',
      'nodes:',
      '  node-b:',
      '    streamChunkTokens: 4',
      '    compression: { algorithm: gzip, level: 6 }',
      '  node-a:',
      '    streamChunkTokens: 8',
    ].join('\n'),
  );
  await until(() => server.context.live.get().streamChunkTokens === 4);
  const after = await streamRaw(server.url);
  assert.equal(after.encoding, 'gzip');
  assert.deepEqual(after.tokensPerEvent, [4, 4, 4]);
  const text = await (await fetch(`${server.url}/metrics`)).text();
  assert.equal(metricValue(text, 'autoglm_tuning_value', { param: 'streamChunkTokens' }), 4);
  assert.ok((metricValue(text, 'autoglm_compression_seconds_count', { encoding: 'gzip' }) ?? 0) >= 1);
});

test('a broken file keeps the last good values and counts an error', async () => {
  const good = server.context.live.get();
  const errorsBefore =
    metricValue(await (await fetch(`${server.url}/metrics`)).text(), 'autoglm_tuning_errors_total') ?? 0;
  await writeFile(
    file,
    'apiVersion: serving.autoglm.io/v1alpha1\nkind: ServingTuning\ndefaults:\n  maxBatchSize: -3\n',
  );
  await until(
    () => (metricValue(textCache, 'autoglm_tuning_errors_total') ?? 0) > errorsBefore,
    async () => {
      textCache = await (await fetch(`${server.url}/metrics`)).text();
    },
  );
  assert.deepEqual(server.context.live.get(), good);
  const r = await streamRaw(server.url);
  assert.deepEqual(r.tokensPerEvent, [4, 4, 4], 'still serving with the last good values');
});
