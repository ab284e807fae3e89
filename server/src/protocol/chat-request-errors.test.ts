import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChatRequest } from './chat-request.ts';
import { InvalidRequestError } from './errors.ts';
import type { RequestIssue } from './fields.ts';

const USER = { role: 'user', content: 'Hello' };

function issues(body: unknown): RequestIssue[] {
  try {
    parseChatRequest(body);
  } catch (err) {
    assert.ok(err instanceof InvalidRequestError, `expected InvalidRequestError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail('the request was accepted');
}

function params(body: unknown): (string | null)[] {
  return issues(body).map((issue) => issue.param);
}

describe('parseChatRequest rejects', () => {
  it('many problems at once, each naming its field', () => {
    const found = issues({
      model: 42,
      messages: [
        USER,
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] },
        { role: 'bot', content: 'hi' },
        { role: 'tool', content: 'r' },
        { role: 'assistant' },
      ],
      temperature: 3,
      top_p: 1.5,
      top_k: -2,
      min_p: '0.1',
      repetition_penalty: 0,
      seed: 1.5,
      n: 0,
      max_tokens: 0,
      stop: Array.from({ length: 17 }, (_, i) => `s${i}`),
      stop_token_ids: [1, -1],
      logit_bias: { abc: 1, '5': 101 },
      stream_options: { include_usage: true },
      top_logprobs: 3,
      response_format: { type: 'json_object' },
      tool_choice: { type: 'function', function: { name: 'nope' } },
    });
    assert.deepEqual(
      found.map((issue) => [issue.param, issue.code]),
      [
        ['max_tokens', 'invalid_value'],
        ['model', 'invalid_type'],
        ['response_format.type', 'unsupported_value'],
        ['temperature', 'invalid_value'],
        ['top_p', 'invalid_value'],
        ['seed', 'invalid_type'],
        ['top_k', 'invalid_value'],
        ['min_p', 'invalid_type'],
        ['repetition_penalty', 'invalid_value'],
        ['stop', 'invalid_value'],
        ['stop_token_ids[1]', 'invalid_value'],
        ['logit_bias.5', 'invalid_value'],
        ['logit_bias.abc', 'invalid_value'],
        ['n', 'invalid_value'],
        ['stream_options', 'invalid_value'],
        ['messages[1].content[0].type', 'unsupported_value'],
        ['messages[2].role', 'invalid_value'],
        ['messages[3].tool_call_id', 'missing_required_parameter'],
        ['messages[4].content', 'missing_required_parameter'],
        ['tool_choice', 'invalid_value'],
        ['top_logprobs', 'invalid_value'],
      ],
    );
  });

  it('with one error carrying every message, status 400', () => {
    try {
      parseChatRequest({ messages: [USER], temperature: -1, n: 17 });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.httpStatus, 400);
      assert.equal(err.code, 'invalid_request');
      assert.match(err.message, /^2 problems with the request: \(1\) Invalid value for 'temperature'/);
      assert.match(err.message, /\(2\) Invalid value for 'n': expected a value >= 1 and <= 16, but got 17/);
    }
  });

  it('image parts with a clear "not supported"', () => {
    const [issue] = issues({
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }] },
      ],
    });
    assert.deepEqual(issue, {
      param: 'messages[0].content[0].type',
      code: 'unsupported_value',
      message:
        "Unsupported value for 'messages[0].content[0].type': 'image_url' content parts are not supported: this model reads text only.",
    });
  });

  it('a body that is not an object, with param null', () => {
    for (const body of [undefined, null, 'text', [USER]]) {
      assert.deepEqual(params(body), [null]);
    }
  });

  it('missing, empty or malformed messages', () => {
    assert.deepEqual(issues({ model: 'm' }), [
      {
        param: 'messages',
        code: 'missing_required_parameter',
        message: "Missing required parameter: 'messages'.",
      },
    ]);
    assert.deepEqual(params({ messages: [] }), ['messages']);
    assert.deepEqual(params({ messages: 'hi' }), ['messages']);
    assert.deepEqual(params({ messages: ['hi', { content: 'x' }, { role: 'user', content: 5 }] }), [
      'messages[0]',
      'messages[1].role',
      'messages[2].content',
    ]);
    assert.deepEqual(
      params({ messages: [{ role: 'user', content: [{ type: 'text' }, { type: 'audio' }] }] }),
      ['messages[0].content[0].text', 'messages[0].content[1].type'],
    );
    assert.deepEqual(
      params({ messages: [{ role: 'system', content: [{ type: 'refusal', refusal: 'x' }] }] }),
      ['messages[0].content[0].type'],
    );
  });

  it("the deprecated 'function' role and malformed tool calls", () => {
    assert.deepEqual(params({ messages: [{ role: 'function', name: 'f', content: 'x' }] }), [
      'messages[0].role',
    ]);
    const bad = {
      messages: [{ role: 'assistant', tool_calls: [{ type: 'custom', function: { name: 'f' } }] }],
    };
    assert.deepEqual(params(bad), [
      'messages[0].tool_calls[0].id',
      'messages[0].tool_calls[0].type',
      'messages[0].tool_calls[0].function.arguments',
    ]);
  });

  it('malformed tools and tool choices', () => {
    assert.deepEqual(
      params({
        messages: [USER],
        tools: [
          { type: 'custom', custom: { name: 'x' } },
          { type: 'function', function: { name: '', parameters: [] } },
        ],
        tool_choice: 'maybe',
      }),
      [
        'tools[0].type',
        'tools[0].function',
        'tools[1].function.name',
        'tools[1].function.parameters',
        'tool_choice',
      ],
    );
    assert.deepEqual(params({ messages: [USER], tool_choice: 'required' }), ['tool_choice']);
    assert.match(issues({ messages: [USER], tool_choice: 'any' })[0]?.message ?? '', /but got 'any'/);
    const tools = [{ type: 'function', function: { name: 'f' } }];
    assert.deepEqual(
      params({ messages: [USER], tools, tool_choice: { type: 'function', function: { name: 7 } } }),
      ['tool_choice.function.name'],
    );
    assert.deepEqual(params({ messages: [USER], tools, tool_choice: { type: 'function' } }), [
      'tool_choice.function',
    ]);
    assert.deepEqual(params({ messages: [USER], tools, tool_choice: 3 }), ['tool_choice']);
  });

  it('continue_final_message against add_generation_prompt or a final user turn', () => {
    assert.deepEqual(
      params({ messages: [USER], continue_final_message: true, add_generation_prompt: true }),
      ['add_generation_prompt', 'continue_final_message'],
    );
  });

  it('parameters it cannot honour, as unsupported_parameter (not silently)', () => {
    try {
      parseChatRequest({
        messages: [USER],
        audio: { voice: 'alloy', format: 'mp3' },
        modalities: ['text', 'audio'],
        functions: [{ name: 'f' }],
        guided_json: { type: 'object' },
        min_tokens: 5,
      });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.code, 'unsupported_parameter');
      assert.equal(err.httpStatus, 400);
      assert.deepEqual(
        err.issues.map((issue) => issue.param),
        ['guided_json', 'min_tokens', 'audio', 'modalities', 'functions'],
      );
    }
  });

  it('wrong types, with the type named', () => {
    const found = issues({ messages: [USER], stream: 'yes', stop: 5, logprobs: 1, temperature: '1' });
    assert.deepEqual(
      found.map((issue) => issue.message),
      [
        "Invalid type for 'temperature': expected a number, but got a string instead.",
        "Invalid type for 'stop': expected a string or an array of strings, but got an integer instead.",
        "Invalid type for 'stream': expected a boolean, but got a string instead.",
        "Invalid type for 'logprobs': expected a boolean, but got an integer instead.",
      ],
    );
  });
});
