import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUND_TRIP_CORPUS } from '../../../../test/fixtures/tokenizer/corpus.ts';
import { AutoGLMError } from '../../errors.ts';
import { syntheticTokenizerFiles } from './synthetic.ts';
import { Tokenizer } from './tokenizer.ts';

test('exactly vocabSize tokens, from the smallest size to one past what the text yields', () => {
  for (const size of [300, 1000, 20_000]) {
    const files = syntheticTokenizerFiles(size);
    const ids = Object.values(files.tokenizerJson.model.vocab).sort((a, b) => a - b);
    assert.equal(ids.length, size);
    assert.equal(ids.at(-1), size - 1);
    const tok = Tokenizer.fromSources({
      tokenizerJson: files.tokenizerJson,
      tokenizerConfig: files.tokenizerConfig,
    });
    assert.equal(tok.vocabSize, size);
  }
});

test('the same arguments give the same files; the seed changes only the filler', () => {
  assert.deepEqual(syntheticTokenizerFiles(5000, 7), syntheticTokenizerFiles(5000, 7));
  assert.deepEqual(syntheticTokenizerFiles(400, 1), syntheticTokenizerFiles(400, 2));
  assert.notDeepEqual(
    syntheticTokenizerFiles(5000, 1).tokenizerJson.model.merges,
    syntheticTokenizerFiles(5000, 2).tokenizerJson.model.merges,
  );
});

test('ChatML special tokens, EOS = <|im_end|>, and a working byte-level round trip', () => {
  const files = syntheticTokenizerFiles(2000);
  assert.deepEqual(
    files.tokenizerJson.added_tokens.map((t) => [t.id, t.content, t.special]),
    [
      [0, '<|endoftext|>', true],
      [1, '<|im_start|>', true],
      [2, '<|im_end|>', true],
    ],
  );
  assert.equal(files.tokenizerConfig.eos_token, '<|im_end|>');
  assert.deepEqual(files.generation?.eosTokenIds, [2]);
  const tok = Tokenizer.fromSources({
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: files.tokenizerConfig,
  });
  assert.deepEqual(tok.eosTokenIds, [2]);
  for (const text of ROUND_TRIP_CORPUS) assert.equal(tok.decode(tok.encode(text)), text);
  // learned from the embedded English text: common words are single tokens
  assert.equal(tok.encode(' the').length, 1);
});

test('sizes below 300 or not integers are refused', () => {
  for (const size of [299, 0, 1000.5, Number.NaN]) {
    assert.throws(
      () => syntheticTokenizerFiles(size),
      (err: unknown) => {
        assert.ok(err instanceof AutoGLMError);
        assert.equal(err.code, 'invalid_argument');
        return true;
      },
    );
  }
});
