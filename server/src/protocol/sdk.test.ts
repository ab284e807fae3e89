/**
 * The wire layer against the official openai SDK: a bare node:http server parses requests
 * and writes responses with this module only, and the SDK must read them as it reads
 * api.openai.com (its stream accumulator, its error classes). The "model" writes a fixed
 * text; what is under test is everything around it.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { AutoGLMError } from '../errors.ts';
import { parseChatRequest } from './chat-request.ts';
import {
  chatCompletion,
  chatDeltaChunk,
  chatFinishChunk,
  chatRoleChunk,
  chatUsageChunk,
  type ChatStreamMeta,
} from './chat-response.ts';
import { parseCompletionRequest } from './completion-request.ts';
import { completionChunk, completionUsageChunk, textCompletion } from './completion-response.ts';
import { contextLengthCheck, openAIError } from './errors.ts';
import { SSE_DONE, SSE_HEADERS, sseData, sseError } from './sse.ts';
import { responseMeta } from './wire.ts';

const PIECES = ['Hel', 'lo', '!'];
const PROMPT_TOKENS = 5;
const MAX_MODEL_LEN = 64;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
}

function streamChat(res: ServerResponse, body: unknown): void {
  const req = parseChatRequest(body);
  const maxTokens = contextLengthCheck(PROMPT_TOKENS, req.stopping.maxTokens, MAX_MODEL_LEN);
  const pieces = PIECES.slice(0, maxTokens);
  const finish = pieces.length < PIECES.length ? 'length' : 'stop';
  const meta = responseMeta('chat', req.model ?? 'default');
  const usage = { promptTokens: PROMPT_TOKENS, completionTokens: pieces.length * req.n };
  const choices = Array.from(
    { length: req.n },
    () => ({ text: pieces.join(''), finishReason: finish }) as const,
  );
  if (!req.stream) {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(chatCompletion(meta, choices, usage)));
    return;
  }
  const streamMeta: ChatStreamMeta = { ...meta, includeUsage: req.includeUsage };
  res.writeHead(200, SSE_HEADERS);
  for (let i = 0; i < req.n; i++) res.write(sseData(chatRoleChunk(streamMeta, i)));
  for (const text of pieces) {
    for (let i = 0; i < req.n; i++) res.write(sseData(chatDeltaChunk(streamMeta, i, { text })));
    if (req.model === 'fail-mid-stream') {
      res.end(sseError(new AutoGLMError('unavailable', 'The server is shutting down.')));
      return;
    }
  }
  for (let i = 0; i < req.n; i++) res.write(sseData(chatFinishChunk(streamMeta, i, finish)));
  if (req.includeUsage) res.write(sseData(chatUsageChunk(streamMeta, usage)));
  res.end(SSE_DONE);
}

function completions(res: ServerResponse, body: unknown): void {
  const req = parseCompletionRequest(body);
  const meta = responseMeta('completion', req.model ?? 'default');
  const count = req.prompts.length * req.n;
  const usage = { promptTokens: PROMPT_TOKENS * req.prompts.length, completionTokens: PIECES.length * count };
  if (!req.stream) {
    const choices = Array.from(
      { length: count },
      () => ({ text: PIECES.join(''), finishReason: 'stop' }) as const,
    );
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify(textCompletion(meta, choices, usage)));
    return;
  }
  const streamMeta = { ...meta, includeUsage: req.includeUsage };
  res.writeHead(200, SSE_HEADERS);
  for (let index = 0; index < count; index++) {
    for (const text of PIECES) res.write(sseData(completionChunk(streamMeta, { index, text })));
    res.write(sseData(completionChunk(streamMeta, { index, text: '', finishReason: 'stop' })));
  }
  if (req.includeUsage) res.write(sseData(completionUsageChunk(streamMeta, usage)));
  res.end(SSE_DONE);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (req.headers.authorization !== 'Bearer good-key') {
      throw new AutoGLMError('unauthorized', 'Incorrect API key provided.');
    }
    const body = await readJson(req);
    if (req.url === '/v1/chat/completions') streamChat(res, body);
    else if (req.url === '/v1/completions') completions(res, body);
    else throw new AutoGLMError('not_found', `No route ${req.url ?? ''}.`);
  } catch (err) {
    const { status, body } = openAIError(err);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
}

describe('through the openai SDK', () => {
  let server: Server;
  let client: OpenAI;
  const USER = [{ role: 'user' as const, content: 'Hi' }];

  before(async () => {
    server = createServer((req, res) => void handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new OpenAI({ apiKey: 'good-key', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads a chat completion', async () => {
    const completion = await client.chat.completions.create({ model: 'm', messages: USER, n: 2 });
    assert.deepEqual(
      completion.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
      [
        [0, 'Hello!', 'stop'],
        [1, 'Hello!', 'stop'],
      ],
    );
    assert.deepEqual(completion.usage, { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 });
  });

  it('accumulates a chat stream of two choices, with the usage chunk last', async () => {
    const stream = client.chat.completions.stream({
      model: 'm',
      messages: USER,
      n: 2,
      max_tokens: 2,
      stream_options: { include_usage: true },
    });
    const final = await stream.finalChatCompletion();
    assert.deepEqual(
      final.choices.map((c) => [c.index, c.message.role, c.message.content, c.finish_reason]),
      [
        [0, 'assistant', 'Hello', 'length'],
        [1, 'assistant', 'Hello', 'length'],
      ],
    );
    assert.deepEqual(final.usage, { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
  });

  it('iterates raw chunks up to [DONE]', async () => {
    const chunks = [];
    for await (const chunk of await client.chat.completions.create({
      model: 'm',
      messages: USER,
      stream: true,
    })) {
      chunks.push(chunk);
    }
    assert.deepEqual(
      chunks.map((c) => c.choices[0]?.delta.content ?? null),
      ['', 'Hel', 'lo', '!', null],
    );
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
    assert.ok(chunks.every((c) => !('usage' in c)));
  });

  it('raises a validation failure as BadRequestError with param and code', async () => {
    const err: unknown = await client.chat.completions
      .create({ model: 'm', messages: USER, temperature: 5, top_logprobs: 2 })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.param, 'temperature');
    assert.equal(err.code, 'invalid_value');
    assert.match(
      err.message,
      /^400 2 problems with the request: \(1\) .*'temperature'.*\(2\) .*'top_logprobs'/,
    );
  });

  it('raises context_length_exceeded as BadRequestError', async () => {
    const err: unknown = await client.chat.completions
      .create({ model: 'm', messages: USER, max_completion_tokens: 60 })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.code, 'context_length_exceeded');
    assert.equal(err.param, 'messages');
  });

  it('raises a bad key as AuthenticationError (invalid_api_key)', async () => {
    const other = client.withOptions({ apiKey: 'bad-key' });
    const err: unknown = await other.chat.completions
      .create({ model: 'm', messages: USER })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(err.code, 'invalid_api_key');
  });

  it('raises an error event mid-stream as APIError after the text so far', async () => {
    const seen: string[] = [];
    const consume = async (): Promise<void> => {
      const stream = await client.chat.completions.create({
        model: 'fail-mid-stream',
        messages: USER,
        stream: true,
      });
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
    };
    await assert.rejects(consume, (err: unknown) => {
      assert.ok(err instanceof OpenAI.APIError);
      assert.match(err.message, /The server is shutting down\./);
      return true;
    });
    assert.deepEqual(seen, ['', 'Hel']);
  });

  it('reads text completions, whole and streamed with usage', async () => {
    const whole = await client.completions.create({ model: 'm', prompt: ['a', 'b'], n: 2 });
    assert.deepEqual(
      whole.choices.map((c) => [c.index, c.text]),
      [0, 1, 2, 3].map((i) => [i, 'Hello!']),
    );
    const texts = new Map<number, string>();
    let usage: OpenAI.CompletionUsage | null | undefined;
    const stream = await client.completions.create({
      model: 'm',
      prompt: 'a',
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      for (const c of chunk.choices) texts.set(c.index, (texts.get(c.index) ?? '') + c.text);
      usage = chunk.usage;
    }
    assert.deepEqual([...texts], [[0, 'Hello!']]);
    assert.deepEqual(usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  });
});
