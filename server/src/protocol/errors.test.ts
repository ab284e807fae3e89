import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AutoGLMError } from '../errors.ts';
import { parseChatRequest } from './chat-request.ts';
import { ContextLengthError, contextLengthCheck, InvalidRequestError, openAIError } from './errors.ts';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('nothing was thrown');
}

/** An error shaped as the http-errors package (express's body parser) makes them. */
function httpError(status: number, message: string, type: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, expose: status < 500, type });
}

describe('openAIError', () => {
  it('maps one validation issue to its param and OpenAI code', () => {
    const err = thrown(() =>
      parseChatRequest({ messages: [{ role: 'user', content: 'x' }], temperature: 9 }),
    );
    assert.deepEqual(openAIError(err), {
      status: 400,
      body: {
        error: {
          message: "Invalid value for 'temperature': expected a value >= 0 and <= 2, but got 9 instead.",
          type: 'invalid_request_error',
          param: 'temperature',
          code: 'invalid_value',
        },
      },
    });
  });

  it('lists every issue in the message and names the first in param', () => {
    const err = thrown(() =>
      parseChatRequest({ messages: [{ role: 'user', content: 'x' }], n: 0, top_p: 2 }),
    );
    const { status, body } = openAIError(err);
    assert.equal(status, 400);
    assert.equal(body.error.param, 'top_p');
    assert.equal(
      body.error.message,
      "2 problems with the request: (1) Invalid value for 'top_p': expected a value >= 0 and <= 1, but got 2 instead. " +
        "(2) Invalid value for 'n': expected a value >= 1 and <= 16, but got 0 instead.",
    );
  });

  it('maps catalog errors by status, with OpenAI’s type strings', () => {
    const cases: [AutoGLMError, number, string, string][] = [
      [
        new AutoGLMError('unauthorized', 'Incorrect API key provided.'),
        401,
        'invalid_request_error',
        'invalid_api_key',
      ],
      [
        new AutoGLMError('model_not_found', 'The model `gpt-9` does not exist.'),
        404,
        'invalid_request_error',
        'model_not_found',
      ],
      [new AutoGLMError('not_found', 'No route.'), 404, 'invalid_request_error', 'not_found'],
      [new AutoGLMError('payload_too_large', 'Too big.'), 413, 'invalid_request_error', 'payload_too_large'],
      [new AutoGLMError('queue_full', 'The server is busy.'), 429, 'requests', 'queue_full'],
      [new AutoGLMError('unavailable', 'The server is shutting down.'), 503, 'server_error', 'unavailable'],
      [new AutoGLMError('internal', 'Broken.'), 500, 'server_error', 'internal'],
    ];
    for (const [err, status, type, code] of cases) {
      assert.deepEqual(openAIError(err), {
        status,
        body: { error: { message: err.message, type, param: null, code } },
      });
    }
  });

  it('appends a hint to the message', () => {
    const err = new AutoGLMError('unavailable', 'The model is loading.', { hint: 'retry in a few seconds' });
    assert.equal(openAIError(err).body.error.message, 'The model is loading. (retry in a few seconds)');
  });

  it('hides the message of errors it does not know', () => {
    assert.deepEqual(openAIError(new TypeError('secret internals at /srv/x.ts:12')), {
      status: 500,
      body: {
        error: {
          message: 'The server had an error while processing your request.',
          type: 'server_error',
          param: null,
          code: 'internal',
        },
      },
    });
    assert.equal(openAIError('a string').status, 500);
  });

  it('maps express body-parser errors: bad JSON and too large', () => {
    const bad = openAIError(
      httpError(400, 'Unexpected token } in JSON at position 9', 'entity.parse.failed'),
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.type, 'invalid_request_error');
    assert.match(
      bad.body.error.message,
      /^We could not parse the JSON body of your request: Unexpected token/,
    );
    const large = openAIError(httpError(413, 'request entity too large', 'entity.too.large'));
    assert.deepEqual(large, {
      status: 413,
      body: {
        error: {
          message: 'request entity too large',
          type: 'invalid_request_error',
          param: null,
          code: 'payload_too_large',
        },
      },
    });
  });
});

describe('contextLengthCheck', () => {
  it('returns the requested max_tokens when it fits, or the room left', () => {
    assert.equal(contextLengthCheck(100, 50, 150), 50);
    assert.equal(contextLengthCheck(100, undefined, 150), 50);
    assert.equal(contextLengthCheck(149, undefined, 150), 1);
  });

  it('throws context_length_exceeded as OpenAI words it', () => {
    const err = thrown(() => contextLengthCheck(3927, 1000, 4096));
    assert.ok(err instanceof ContextLengthError && err instanceof InvalidRequestError);
    assert.equal(err.code, 'context_length_exceeded');
    assert.deepEqual(openAIError(err), {
      status: 400,
      body: {
        error: {
          message:
            "This model's maximum context length is 4096 tokens. However, you requested 4927 tokens " +
            '(3927 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.',
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      },
    });
  });

  it('throws when the prompt leaves no room, naming prompt for completions', () => {
    const { body } = openAIError(thrown(() => contextLengthCheck(4096, undefined, 4096, 'prompt')));
    assert.equal(body.error.param, 'prompt');
    assert.equal(
      body.error.message,
      "This model's maximum context length is 4096 tokens. However, your prompt resulted in 4096 tokens. " +
        'Please reduce the length of the prompt or completion.',
    );
  });
});
