/**
 * SIGTERM as Kubernetes sends it: readiness drops at once, new work gets 503, running
 * streams finish, and the process exits 0. A second signal exits at once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { randomModel } from '../support/server.ts';

let model: Awaited<ReturnType<typeof randomModel>>;
before(async () => {
  model = await randomModel('fast');
});
after(() => model.cleanup());

function start(
  extra: string[] = [],
): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    ['bin/autoglm.js', 'serve', '--model', model.dir, '--port', '0', '--max-model-len', '512', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((r) => {
    child.on('exit', (code) => {
      r(code);
    });
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let url = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      url ||= /listening on (http:\/\/[^\s]+) /.exec(out)?.[1] ?? '';
      if (url !== '' && out.includes('ready:')) resolve({ child, url, exited });
    });
    child.on('exit', () => {
      reject(new Error(`server exited early:\n${out}`));
    });
  });
}

test('SIGTERM drains: 503 for new work, the running stream completes, exit 0', async () => {
  const { child, url, exited } = await start();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({
      prompt: 'tell a long story',
      max_tokens: 120,
      ignore_eos: true,
      temperature: 0,
      stream: true,
    }),
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await fetch(`${url}/health`)).status, 503);
  const late = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'late', max_tokens: 2 }),
  });
  assert.equal(late.status, 503);
  let text = new TextDecoder().decode(first.value);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.match(text, /"finish_reason":"length"/);
  assert.ok(text.trimEnd().endsWith('data: [DONE]'));
  assert.equal(await exited, 0);
});

test('a second signal exits at once', async () => {
  const { child, url, exited } = await start(['--max-model-len', '4096']);
  // The stream must still be running when both signals land: a generation that ended early
  // would let the first signal finish the drain, and the second would then meet a process
  // already on its way out.
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'x', max_tokens: 4000, ignore_eos: true, stream: true }),
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  assert.ok(!(await reader.read()).done);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  assert.equal(await exited, 1);
  assert.match(stderr, /SIGTERM again: exiting now/);
  await reader.cancel().catch(() => undefined);
});

test('a shutdown past its deadline ends a running stream with an error event, then [DONE]', async () => {
  const { child, url, exited } = await start(['--shutdown-timeout', '0.2', '--max-model-len', '4096']);
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'x', max_tokens: 4000, ignore_eos: true, stream: true }),
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = new TextDecoder().decode((await reader.read()).value);
  child.kill('SIGTERM');
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const events = text.trimEnd().split('\n\n');
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.deepEqual(JSON.parse(events.at(-2)?.slice('data: '.length) ?? ''), {
    error: {
      message: 'the server is shutting down; generation was cut short',
      type: 'server_error',
      param: null,
      code: 'unavailable',
    },
  });
  assert.doesNotMatch(text, /"finish_reason":"/, 'a cut-short generation never looks finished');
  assert.equal(await exited, 0);
});

test('the openai SDK raises that mid-stream error as an APIError', async () => {
  const { child, url, exited } = await start([
    '--shutdown-timeout',
    '0.2',
    '--max-model-len',
    '4096',
    '--served-model-name',
    'm',
  ]);
  after(() => child.kill('SIGKILL'));
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  // ignore_eos is vLLM's extension; the SDK passes unknown body fields through.
  const body = { model: 'm', prompt: 'x', max_tokens: 4000, stream: true as const, ignore_eos: true };
  const stream = await client.completions.create(body);
  let chunks = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'text_completion');
        if (chunks++ === 0) child.kill('SIGTERM');
      }
    })(),
    (err: unknown) => err instanceof APIError && /generation was cut short/.test(err.message),
  );
  assert.ok(chunks > 0);
  assert.equal(await exited, 0);
});
