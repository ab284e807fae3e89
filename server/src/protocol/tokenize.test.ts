import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from './errors.ts';
import {
  detokenizeResponse,
  parseDetokenizeRequest,
  parseTokenizeRequest,
  tokenizeResponse,
} from './tokenize.ts';

function params(parse: () => unknown): (string | null)[] {
  try {
    parse();
  } catch (err) {
    assert.ok(err instanceof InvalidRequestError);
    return err.issues.map((issue) => issue.param);
  }
  assert.fail('accepted');
}

describe('POST /tokenize', () => {
  it('parses the prompt form, adding special tokens by default', () => {
    assert.deepEqual(parseTokenizeRequest({ model: 'm', prompt: 'Hello' }), {
      kind: 'prompt',
      model: 'm',
      prompt: 'Hello',
      addSpecialTokens: true,
      returnTokenStrs: false,
    });
    const raw = parseTokenizeRequest({ prompt: '', add_special_tokens: false, return_token_strs: true });
    assert.equal(raw.kind === 'prompt' && raw.addSpecialTokens, false);
    assert.equal(raw.returnTokenStrs, true);
  });

  it('parses the chat form, with a generation prompt and no extra special tokens by default', () => {
    const req = parseTokenizeRequest({ messages: [{ role: 'user', content: 'Hi' }] });
    assert.deepEqual(req, {
      kind: 'chat',
      model: undefined,
      messages: [{ role: 'user', content: 'Hi' }],
      tools: undefined,
      addGenerationPrompt: true,
      continueFinalMessage: false,
      addSpecialTokens: false,
      returnTokenStrs: false,
    });
    assert.ok(Object.isFrozen(req));
  });

  it('reports every problem: both forms, bad messages, bad flags', () => {
    assert.deepEqual(
      params(() =>
        parseTokenizeRequest({
          prompt: 'x',
          messages: [{ role: 'user' }],
          add_generation_prompt: 'yes',
          model: 1,
        }),
      ),
      ['model', 'prompt', 'messages[0].content', 'add_generation_prompt'],
    );
    assert.deepEqual(
      params(() => parseTokenizeRequest({})),
      ['prompt'],
    );
    assert.deepEqual(
      params(() => parseTokenizeRequest({ prompt: 3 })),
      ['prompt'],
    );
  });

  it('builds vLLM’s reply', () => {
    assert.deepEqual(tokenizeResponse([1, 15043], 4096), {
      count: 2,
      max_model_len: 4096,
      tokens: [1, 15043],
    });
    assert.deepEqual(tokenizeResponse([1], 8, ['<s>']), {
      count: 1,
      max_model_len: 8,
      tokens: [1],
      token_strs: ['<s>'],
    });
  });
});

describe('POST /detokenize', () => {
  it('parses token ids and builds {prompt}', () => {
    assert.deepEqual(parseDetokenizeRequest({ tokens: [1, 2] }), { model: undefined, tokens: [1, 2] });
    assert.deepEqual(detokenizeResponse('Hello'), { prompt: 'Hello' });
  });

  it('rejects missing, malformed and out-of-vocabulary ids', () => {
    assert.deepEqual(
      params(() => parseDetokenizeRequest({})),
      ['tokens'],
    );
    assert.deepEqual(
      params(() => parseDetokenizeRequest({ tokens: 'abc' })),
      ['tokens'],
    );
    assert.deepEqual(
      params(() => parseDetokenizeRequest({ tokens: [1, 1.5, 10] }, { vocabSize: 10 })),
      ['tokens[1]', 'tokens[2]'],
    );
  });
});
