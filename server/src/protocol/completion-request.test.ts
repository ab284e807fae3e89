import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_COMPLETION_MAX_TOKENS, parseCompletionRequest } from './completion-request.ts';
import { InvalidRequestError } from './errors.ts';
import type { RequestIssue } from './fields.ts';
import type { ParseOptions } from './types.ts';

function issues(body: unknown, options?: ParseOptions): RequestIssue[] {
  try {
    parseCompletionRequest(body, options);
  } catch (err) {
    assert.ok(err instanceof InvalidRequestError, `expected InvalidRequestError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail('the request was accepted');
}

const params = (body: unknown, options?: ParseOptions): (string | null)[] =>
  issues(body, options).map((issue) => issue.param);

describe('parseCompletionRequest accepts', () => {
  it('a string prompt, with the legacy default of 16 tokens', () => {
    const req = parseCompletionRequest({ model: 'm', prompt: 'Once upon a time' });
    assert.equal(req.kind, 'completion');
    assert.deepEqual(req.prompts, [{ kind: 'text', text: 'Once upon a time' }]);
    assert.equal(req.stopping.maxTokens, DEFAULT_COMPLETION_MAX_TOKENS);
    assert.equal(req.addSpecialTokens, true);
    assert.equal(req.logprobs, false);
    assert.ok(Object.isFrozen(req) && Object.isFrozen(req.prompts) && Object.isFrozen(req.prompts[0]));
  });

  it('every prompt form', () => {
    assert.deepEqual(parseCompletionRequest({ prompt: ['a', 'b'] }).prompts, [
      { kind: 'text', text: 'a' },
      { kind: 'text', text: 'b' },
    ]);
    assert.deepEqual(parseCompletionRequest({ prompt: [1, 2, 3] }).prompts, [
      { kind: 'tokens', tokenIds: [1, 2, 3] },
    ]);
    assert.deepEqual(parseCompletionRequest({ prompt: [[1], [2, 3]] }).prompts, [
      { kind: 'tokens', tokenIds: [1] },
      { kind: 'tokens', tokenIds: [2, 3] },
    ]);
    // A null prompt is "the start of a document".
    assert.deepEqual(parseCompletionRequest({ prompt: null }).prompts, [{ kind: 'text', text: '' }]);
  });

  it('logprobs as a count, max_tokens, the shared sampling fields and add_special_tokens', () => {
    const req = parseCompletionRequest({
      prompt: 'x',
      logprobs: 5,
      max_tokens: 300,
      temperature: 0,
      stop: ['\n'],
      n: 2,
      best_of: 2,
      echo: false,
      suffix: null,
      seed: 3,
      add_special_tokens: false,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(req.logprobs, true);
    assert.equal(req.topLogprobs, 5);
    assert.equal(req.stopping.maxTokens, 300);
    assert.deepEqual(req.stopping.stopStrings, ['\n']);
    assert.equal(req.sampling.temperature, 0);
    assert.equal(req.sampling.seed, 3);
    assert.equal(req.n, 2);
    assert.equal(req.addSpecialTokens, false);
    assert.equal(req.includeUsage, true);
    assert.equal(parseCompletionRequest({ prompt: 'x', logprobs: 0 }).logprobs, true);
  });

  it('token ids within the vocabulary', () => {
    const req = parseCompletionRequest({ prompt: [0, 99], stop_token_ids: [99] }, { vocabSize: 100 });
    assert.deepEqual(req.prompts, [{ kind: 'tokens', tokenIds: [0, 99] }]);
  });
});

describe('parseCompletionRequest rejects', () => {
  it('a missing prompt', () => {
    assert.deepEqual(issues({ model: 'm' }), [
      {
        param: 'prompt',
        code: 'missing_required_parameter',
        message: "Missing required parameter: 'prompt'.",
      },
    ]);
  });

  it('malformed prompts, each element named', () => {
    assert.deepEqual(params({ prompt: [] }), ['prompt']);
    assert.deepEqual(params({ prompt: 5 }), ['prompt']);
    assert.deepEqual(params({ prompt: ['a', 1, null] }), ['prompt[1]', 'prompt[2]']);
    assert.deepEqual(params({ prompt: [1, 'a', 2.5, -1] }), ['prompt[1]', 'prompt[2]', 'prompt[3]']);
    assert.deepEqual(params({ prompt: [[1], 'a', [], [0, -3]] }), ['prompt[1]', 'prompt[2]', 'prompt[3][1]']);
  });

  it('token ids outside the vocabulary, in prompt, stop_token_ids and logit_bias', () => {
    const found = issues(
      { prompt: [[1, 100]], stop_token_ids: [100], logit_bias: { '100': 1 } },
      { vocabSize: 100 },
    );
    assert.deepEqual(
      found.map((issue) => issue.param),
      ['stop_token_ids[0]', 'logit_bias.100', 'prompt[0][1]'],
    );
    assert.match(found[0]?.message ?? '', /expected a value >= 0 and <= 99, but got 100/);
  });

  it('echo, suffix and best_of other than n, as unsupported', () => {
    const found = issues({ prompt: 'x', echo: true, suffix: 'end', best_of: 3 });
    assert.deepEqual(
      found.map((issue) => [issue.param, issue.code]),
      [
        ['best_of', 'unsupported_value'],
        ['echo', 'unsupported_parameter'],
        ['suffix', 'unsupported_parameter'],
      ],
    );
    assert.equal(
      found[1]?.message,
      "Unsupported parameter: 'echo' is not supported: only the completion is returned.",
    );
  });

  it('logprobs outside 0..20 or as a boolean, and max_tokens below 1', () => {
    assert.deepEqual(params({ prompt: 'x', logprobs: 21 }), ['logprobs']);
    assert.deepEqual(params({ prompt: 'x', logprobs: true }), ['logprobs']);
    assert.deepEqual(params({ prompt: 'x', max_tokens: 0 }), ['max_tokens']);
  });
});
