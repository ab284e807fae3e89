/**
 * SIGTERM as Kubernetes sends it: readiness drops at once, new work gets 503, running
 * streams finish, and the process exits 0. A second signal exits at once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { randomModel } from '../support/server.ts';

let model: Awaited<ReturnType<typeof randomModel>>;
before(async () => {
  model = await randomModel('fast');
});
after(() => model.cleanup());

function start(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    ['bin/autoglm.js', 'serve', '--model', model.dir, '--port', '0', '--max-model-len', '512'],
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
    body: JSON.stringify({ prompt: 'tell a long story', max_tokens: 120, temperature: 0, stream: true }),
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
  const { child, url, exited } = await start();
  void fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'x', max_tokens: 400, stream: true }),
  }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  assert.equal(await exited, 1);
});
