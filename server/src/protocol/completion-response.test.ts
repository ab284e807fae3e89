import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Completion, CompletionChoice } from 'openai/resources/completions';
import {
  completionChoiceIndex,
  completionChunk,
  completionLogprobs,
  completionUsageChunk,
  textCompletion,
  type CompletionStreamMeta,
} from './completion-response.ts';
import { sseData } from './sse.ts';
import type { PositionLogprobs } from './types.ts';

/**
 * The SDK types a streamed text_completion as a Completion, but OpenAI (and vLLM) send
 * `finish_reason: null` and, with include_usage, `usage: null` before the end; the SDK's
 * own stream_options documentation says so. This is that type with those two nulls.
 */
type CompletionChunk = Omit<Completion, 'choices' | 'usage'> & {
  choices: (Omit<CompletionChoice, 'finish_reason'> & {
    finish_reason: CompletionChoice['finish_reason'] | null;
  })[];
  usage?: Completion['usage'] | null;
};

const POSITIONS: PositionLogprobs[] = [
  {
    chosen: { token: 'Hi', logprob: -0.5 },
    top: [
      { token: ' Hello', logprob: -0.1 },
      { token: 'Hi', logprob: -0.5 },
    ],
  },
  { chosen: { token: '😀', logprob: -2 }, top: [{ token: '__proto__', logprob: -3 }] },
  { chosen: { token: '!', logprob: Number.NEGATIVE_INFINITY }, top: [] },
];

describe('text_completion', () => {
  it('has OpenAI’s shape, which the SDK type accepts, and survives JSON', () => {
    const built = textCompletion(
      { id: 'cmpl-1', created: 10, model: 'm' },
      [
        { text: ' world', finishReason: 'length' },
        { text: '!', finishReason: 'stop', logprobs: POSITIONS.slice(2) },
      ],
      { promptTokens: 4, completionTokens: 3 },
    );
    const sdk: Completion = built;
    assert.deepEqual(JSON.parse(JSON.stringify(sdk)), {
      id: 'cmpl-1',
      object: 'text_completion',
      created: 10,
      model: 'm',
      choices: [
        { index: 0, text: ' world', logprobs: null, finish_reason: 'length' },
        {
          index: 1,
          text: '!',
          logprobs: {
            tokens: ['!'],
            token_logprobs: [-9999],
            top_logprobs: [{ '!': -9999 }],
            text_offset: [0],
          },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 },
    });
  });

  it('writes the legacy logprobs: chosen token in top_logprobs, offsets in code points', () => {
    const logprobs = completionLogprobs(POSITIONS, 5);
    assert.deepEqual(logprobs.tokens, ['Hi', '😀', '!']);
    assert.deepEqual(logprobs.token_logprobs, [-0.5, -2, -9999]);
    assert.deepEqual(logprobs.text_offset, [5, 7, 8]);
    assert.deepEqual(logprobs.top_logprobs[0], { ' Hello': -0.1, Hi: -0.5 });
    // "__proto__" is an ordinary key, in the object and in its JSON.
    assert.deepEqual(Object.keys(logprobs.top_logprobs[1] ?? {}), ['__proto__', '😀']);
    assert.match(JSON.stringify(logprobs.top_logprobs[1]), /"__proto__":-3/);
  });

  it('orders choices of several prompts as prompt * n + sample', () => {
    assert.deepEqual(
      [0, 1, 2].flatMap((p) => [0, 1].map((s) => completionChoiceIndex(p, s, 2))),
      [0, 1, 2, 3, 4, 5],
    );
  });
});

describe('text_completion stream', () => {
  it('streams pieces, a finishing piece and, with include_usage, a last chunk with no choices', () => {
    const meta: CompletionStreamMeta = { id: 'cmpl-2', created: 11, model: 'm', includeUsage: true };
    const chunks: CompletionChunk[] = [
      completionChunk(meta, { index: 0, text: 'Hi', logprobs: POSITIONS.slice(0, 1) }),
      completionChunk(meta, { index: 0, text: '😀', logprobs: POSITIONS.slice(1, 2), textOffset: 2 }),
      completionChunk(meta, { index: 0, text: '', finishReason: 'stop' }),
      completionUsageChunk(meta, { promptTokens: 1, completionTokens: 2 }),
    ];
    assert.deepEqual(
      chunks.map((c) =>
        c.choices.map((choice) => [choice.text, choice.finish_reason, choice.logprobs?.text_offset]),
      ),
      [[['Hi', null, [0]]], [['😀', null, [2]]], [['', 'stop', undefined]], []],
    );
    assert.deepEqual(
      chunks.map((c) => c.usage),
      [null, null, null, { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }],
    );
    assert.deepEqual(
      chunks.map((c) => [c.object, c.id]),
      chunks.map(() => ['text_completion', 'cmpl-2']),
    );
    assert.equal(sseData(chunks[0] ?? {}).split('\n').length, 3);
  });

  it('has no usage field without include_usage', () => {
    const chunk = completionChunk(
      { id: 'c', created: 1, model: 'm', includeUsage: false },
      { index: 3, text: 'x' },
    );
    const sdk: CompletionChunk = chunk;
    assert.equal('usage' in sdk, false);
    assert.deepEqual(sdk.choices, [{ index: 3, text: 'x', logprobs: null, finish_reason: null }]);
  });
});
