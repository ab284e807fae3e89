/**
 * The official openai SDK against a real server on loopback: the parts of the API we
 * support look exactly like OpenAI's to it, errors included.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { metricValue, serve, useServedModel } from '../support/server.ts';
import { SERVING_PARAMS_DEFAULTS } from '../../crds/tuning.ts';

const served = useServedModel();

const messages = [{ role: 'user' as const, content: 'Hello there' }];

describe('chat completions', () => {
  test('non-streamed: one choice per n, usage, finish_reason', async () => {
    const r = await served.client.chat.completions.create({
      model: 'test-model',
      messages,
      max_completion_tokens: 6,
      n: 2,
      temperature: 0,
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 2);
    for (const c of r.choices) {
      assert.equal(c.message.role, 'assistant');
      assert.equal(typeof c.message.content, 'string');
      assert.equal(c.finish_reason, 'length');
    }
    assert.equal(r.usage?.completion_tokens, 12);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
  });

  test('streamed: role first, deltas, finish, usage chunk, the same text as non-streamed', async () => {
    const whole = await served.client.chat.completions.create({
      model: 'test-model',
      messages,
      max_completion_tokens: 10,
      temperature: 0,
    });
    const stream = await served.client.chat.completions.create({
      model: 'test-model',
      messages,
      max_completion_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, whole.choices[0]?.message.content);
    const finish = chunks.find((c) => c.choices[0]?.finish_reason != null);
    assert.equal(finish?.choices[0]?.finish_reason, 'length');
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.equal(last.usage?.completion_tokens, 10);
  });

  test('seeded sampling is reproducible; logprobs come back in chat format', async () => {
    const ask = () =>
      served.client.chat.completions.create({
        model: 'test-model',
        messages,
        max_completion_tokens: 8,
        temperature: 1,
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- seed is part of the API we serve
        seed: 42,
        logprobs: true,
        top_logprobs: 3,
      });
    const [a, b] = await Promise.all([ask(), ask()]);
    assert.equal(a.choices[0]?.message.content, b.choices[0]?.message.content);
    const lp = a.choices[0]?.logprobs?.content;
    assert.equal(lp?.length, 8);
    assert.equal(lp[0]?.top_logprobs.length, 3);
    assert.ok(lp[0].logprob <= 0);
  });

  test('a stop string ends the text before it', async () => {
    const free = await served.client.chat.completions.create({
      model: 'test-model',
      messages,
      max_completion_tokens: 16,
      temperature: 0,
    });
    const text = free.choices[0]?.message.content ?? '';
    const stop = text.slice(3, 5);
    const cut = await served.client.chat.completions.create({
      model: 'test-model',
      messages,
      max_completion_tokens: 16,
      temperature: 0,
      stop: [stop],
    });
    assert.equal(cut.choices[0]?.message.content, text.slice(0, text.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, 'stop');
  });
});

describe('completions and models', () => {
  test('non-streamed and streamed text completions agree', async () => {
    const whole = await served.client.completions.create({
      model: 'test-model',
      prompt: 'Once upon',
      max_tokens: 8,
      temperature: 0,
    });
    assert.equal(whole.object, 'text_completion');
    const stream = await served.client.completions.create({
      model: 'test-model',
      prompt: 'Once upon',
      max_tokens: 8,
      temperature: 0,
      stream: true,
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    assert.equal(text, whole.choices[0]?.text);
  });

  test('models.list names the served model and its device', async () => {
    const list = await served.client.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['test-model'],
    );
    assert.equal((list.data[0] as unknown as { device: string }).device, 'cpu');
  });

  test('tokenize and detokenize round-trip', async () => {
    const t = (await (
      await fetch(`${served.server.url}/tokenize`, {
        method: 'POST',
        body: JSON.stringify({ prompt: 'the small model' }),
      })
    ).json()) as { tokens: number[]; count: number };
    assert.equal(t.count, t.tokens.length);
    const d = (await (
      await fetch(`${served.server.url}/detokenize`, {
        method: 'POST',
        body: JSON.stringify({ tokens: t.tokens }),
      })
    ).json()) as { prompt: string };
    assert.equal(d.prompt, 'the small model');
  });
});

describe('errors arrive as the SDK error classes', () => {
  test('400 invalid request names the parameter', async () => {
    await assert.rejects(
      served.client.chat.completions.create({ model: 'test-model', messages, temperature: 7 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.param, 'temperature');
        return true;
      },
    );
  });

  test('400 context_length_exceeded', async () => {
    await assert.rejects(
      served.client.completions.create({ model: 'test-model', prompt: 'hi', max_tokens: 10_000 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.code, 'context_length_exceeded');
        return true;
      },
    );
  });

  test('404 for an unknown model', async () => {
    await assert.rejects(
      served.client.chat.completions.create({ model: 'gpt-9', messages }),
      OpenAI.NotFoundError,
    );
  });

  test('413 for an oversized body', async () => {
    await assert.rejects(
      served.client.completions.create({ model: 'test-model', prompt: 'x'.repeat(5_000_000) }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 413);
        return true;
      },
    );
  });

  test('401 without the right API key, and the key works', async () => {
    const guarded = await serve(served.model.dir, { apiKeys: ['sk-good'] });
    try {
      const bad = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'sk-bad', maxRetries: 0 });
      await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
      const good = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'sk-good', maxRetries: 0 });
      assert.equal((await good.models.list()).data.length, 1);
      assert.equal((await fetch(`${guarded.url}/health`)).status, 200, 'health needs no key');
    } finally {
      await guarded.close(1000);
    }
  });

  test('429 with Retry-After when the queue is full', async () => {
    const small = await serve(served.model.dir, {
      maxWaiting: 1,
      params: { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 1, maxBatchedTokens: 64, maxQueueDelayMs: 0 },
    });
    try {
      const c = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'x', maxRetries: 0 });
      const long = () =>
        c.completions.create({ model: 'test-model', prompt: 'a', max_tokens: 200, temperature: 0 });
      const results = await Promise.allSettled(Array.from({ length: 6 }, long));
      const limited = results.filter(
        (r) => r.status === 'rejected' && r.reason instanceof OpenAI.RateLimitError,
      );
      assert.ok(limited.length > 0, 'some requests were refused with 429');
      const first = limited[0] as PromiseRejectedResult;
      assert.equal(
        (first.reason as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after'),
        '1',
      );
      assert.ok(results.some((r) => r.status === 'fulfilled'));
    } finally {
      await small.close(1000);
    }
  });

  test('503 while the model loads, then 200', async () => {
    // A model source on a hub that answers only when released: the real pull path, stalled.
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    const hub = http.createServer((_req, res) => {
      void released.then(() => res.writeHead(404).end('{}'));
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    const port = (hub.address() as { port: number }).port;
    process.env['HF_ENDPOINT'] = `http://127.0.0.1:${port}`;
    const { startServer, DEFAULT_SERVE } = await import('../../server/src/http/server.ts');
    const { SERVING_PARAMS_DEFAULTS } = await import('../../crds/tuning.ts');
    const loading = await startServer({
      ...DEFAULT_SERVE,
      model: 'hf:org/stalled',
      servedModelName: 'stalled',
      port: 0,
      params: SERVING_PARAMS_DEFAULTS,
      version: 'test',
    });
    try {
      assert.equal((await fetch(`${loading.url}/health`)).status, 503);
      const c = new OpenAI({ baseURL: `${loading.url}/v1`, apiKey: 'x', maxRetries: 0 });
      await assert.rejects(c.chat.completions.create({ model: 'stalled', messages }), (e: unknown) => {
        assert.ok(e instanceof OpenAI.InternalServerError);
        assert.equal(e.status, 503);
        return true;
      });
      release();
      await assert.rejects(loading.ready);
      const h = (await (await fetch(`${loading.url}/health`)).json()) as { error?: string };
      assert.match(h.error ?? '', /stalled|not found|404/i, 'health says why loading failed');
    } finally {
      delete process.env['HF_ENDPOINT'];
      release();
      await loading.close(100);
      hub.close();
    }
  });
});

test('x-request-id is echoed, or generated', async () => {
  const given = await fetch(`${served.server.url}/v1/models`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(given.headers.get('x-request-id'), 'abc-123');
  const made = await fetch(`${served.server.url}/v1/models`);
  assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('a client that disconnects mid-stream stops its generation and frees its cache', async () => {
  const abort = new AbortController();
  const stream = await served.client.chat.completions.create(
    { model: 'test-model', messages, max_completion_tokens: 200, temperature: 0, stream: true },
    { signal: abort.signal },
  );
  let seen = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices.length > 0 && ++seen === 3) {
        abort.abort();
        break;
      }
    }
  } catch {
    // The SDK may report the abort as an error; either way the connection is gone.
  }
  assert.equal(seen, 3);
  const engine = served.server.context.model?.engine;
  for (let i = 0; i < 50 && (engine?.running ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(engine?.running, 0);
  assert.equal(engine.kvUsage(), 0);
  const text = await (await fetch(`${served.server.url}/metrics`)).text();
  assert.ok((metricValue(text, 'autoglm_request_success_total', { finished_reason: 'abort' }) ?? 0) >= 1);
});
