import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import {
  chatCompletion,
  chatDeltaChunk,
  chatFinishChunk,
  chatLogprobs,
  chatRoleChunk,
  chatUsageChunk,
  type ChatStreamMeta,
} from './chat-response.ts';
import type { PositionLogprobs, ResponseMeta } from './types.ts';
import { responseMeta } from './wire.ts';

const META: ResponseMeta = {
  id: 'chatcmpl-abc',
  created: 1_700_000_000,
  model: 'qwen',
  systemFingerprint: 'fp_1',
};

/** JSON round trip: what a client actually receives. */
function wire<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

const POSITIONS: PositionLogprobs[] = [
  {
    chosen: { token: 'Hé', logprob: -0.25 },
    top: [
      { token: 'Hé', logprob: -0.25 },
      { token: 'Ho', logprob: Number.NEGATIVE_INFINITY },
    ],
  },
  { chosen: { token: '\uFFFD', logprob: -1, bytes: [0xe2, 0x82] }, top: [] },
  { chosen: { token: '<|x|>', logprob: Number.NaN, bytes: null }, top: [] },
];

describe('chat.completion', () => {
  it('has OpenAI’s shape, which the SDK type accepts, and survives JSON', () => {
    const built = chatCompletion(
      META,
      [
        { text: 'Hello!', finishReason: 'stop' },
        { text: 'Hi', finishReason: 'length', logprobs: POSITIONS.slice(0, 1) },
      ],
      { promptTokens: 12, completionTokens: 5, cachedTokens: 8 },
    );
    const sdk: ChatCompletion = built;
    assert.deepEqual(wire(sdk), {
      id: 'chatcmpl-abc',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'qwen',
      system_fingerprint: 'fp_1',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello!', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
        {
          index: 1,
          message: { role: 'assistant', content: 'Hi', refusal: null },
          logprobs: {
            content: [
              {
                token: 'Hé',
                logprob: -0.25,
                bytes: [72, 195, 169],
                top_logprobs: [
                  { token: 'Hé', logprob: -0.25, bytes: [72, 195, 169] },
                  { token: 'Ho', logprob: -9999, bytes: [72, 111] },
                ],
              },
            ],
            refusal: null,
          },
          finish_reason: 'length',
        },
      ],
      usage: {
        prompt_tokens: 12,
        completion_tokens: 5,
        total_tokens: 17,
        prompt_tokens_details: { cached_tokens: 8 },
      },
    });
  });

  it('carries tool calls with null content', () => {
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: '{}' } };
    const built = chatCompletion(
      { id: 'chatcmpl-x', created: 1, model: 'm' },
      [{ text: null, finishReason: 'tool_calls', toolCalls: [call] }],
      {
        promptTokens: 1,
        completionTokens: 1,
      },
    );
    const sdk: ChatCompletion = built;
    assert.deepEqual(sdk.choices[0]?.message, {
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [call],
    });
    assert.equal('system_fingerprint' in sdk, false);
  });

  it('writes log-probabilities JSON can carry: given bytes, null bytes, -9999 for -Infinity and NaN', () => {
    assert.deepEqual(wire(chatLogprobs(POSITIONS.slice(1))), {
      content: [
        { token: '\uFFFD', logprob: -1, bytes: [0xe2, 0x82], top_logprobs: [] },
        { token: '<|x|>', logprob: -9999, bytes: null, top_logprobs: [] },
      ],
      refusal: null,
    });
  });
});

describe('chat.completion.chunk', () => {
  it('streams role, content, finish for each choice, then a usage chunk with no choices', () => {
    const meta: ChatStreamMeta = { ...META, includeUsage: true };
    const built = [
      chatRoleChunk(meta, 0),
      chatDeltaChunk(meta, 0, { text: 'Hé' }),
      chatDeltaChunk(meta, 0, { text: 'llo', logprobs: POSITIONS.slice(0, 1) }),
      chatFinishChunk(meta, 0, 'stop'),
      chatUsageChunk(meta, { promptTokens: 3, completionTokens: 2 }),
    ];
    const chunks: ChatCompletionChunk[] = built.map(wire);
    assert.deepEqual(
      built.map((c) => [c.id, c.object, c.created, c.system_fingerprint]),
      built.map(() => ['chatcmpl-abc', 'chat.completion.chunk', 1_700_000_000, 'fp_1']),
    );
    assert.deepEqual(
      chunks.map((c) => c.choices),
      [
        [
          {
            index: 0,
            delta: { role: 'assistant', content: '', refusal: null },
            logprobs: null,
            finish_reason: null,
          },
        ],
        [{ index: 0, delta: { content: 'Hé' }, logprobs: null, finish_reason: null }],
        [
          {
            index: 0,
            delta: { content: 'llo' },
            logprobs: chatLogprobs(POSITIONS.slice(0, 1)),
            finish_reason: null,
          },
        ],
        [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }],
        [],
      ],
    );
    // Every chunk has usage: null except the last, which has the totals.
    assert.deepEqual(
      chunks.map((c) => c.usage),
      [null, null, null, null, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }],
    );
  });

  it('has no usage field at all without include_usage', () => {
    const meta: ChatStreamMeta = { id: 'chatcmpl-y', created: 2, model: 'm', includeUsage: false };
    for (const chunk of [
      chatRoleChunk(meta, 1),
      chatDeltaChunk(meta, 1, { text: 'x' }),
      chatFinishChunk(meta, 1, 'length'),
    ]) {
      const sdk: ChatCompletionChunk = chunk;
      assert.equal('usage' in sdk, false);
      assert.equal(sdk.choices[0]?.index, 1);
    }
  });
});

describe('responseMeta', () => {
  it('makes chatcmpl- and cmpl- ids, unique, with Unix seconds', () => {
    const a = responseMeta('chat', 'm', { now: 1_700_000_000_999, systemFingerprint: 'fp' });
    const b = responseMeta('completion', 'm');
    assert.match(a.id, /^chatcmpl-[0-9a-f]{32}$/);
    assert.match(b.id, /^cmpl-[0-9a-f]{32}$/);
    assert.notEqual(a.id.slice(-32), b.id.slice(-32));
    assert.equal(a.created, 1_700_000_000);
    assert.equal(a.systemFingerprint, 'fp');
    assert.equal('systemFingerprint' in b, false);
  });
});
