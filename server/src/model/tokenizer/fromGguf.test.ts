import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUND_TRIP_CORPUS } from '../../../../test/fixtures/tokenizer/corpus.ts';
import {
  byteLevelMetadata,
  SENTENCEPIECE_EXPECTED,
  sentencePieceMetadata,
} from '../../../../test/fixtures/tokenizer/metadata.ts';
import { AutoGLMError } from '../../errors.ts';
import type { GgufMetadata } from '../gguf/types.ts';
import { tokenizerFilesFromGguf } from './fromGguf.ts';
import { mergesFromScores } from './sentencePiece.ts';
import { Tokenizer } from './tokenizer.ts';
import type { TokenizerFiles } from './types.ts';

function load(files: TokenizerFiles): Tokenizer {
  return Tokenizer.fromSources({
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: files.tokenizerConfig,
  });
}

function pieces(tok: Tokenizer, text: string): string[] {
  return tok.encode(text, { addSpecialTokens: false }).map((id) => tok.tokenText(id));
}

function assertCode(fn: () => unknown, code: string, mentions: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AutoGLMError);
    assert.equal(err.code, code);
    assert.match(err.message, new RegExp(mentions));
    return true;
  });
}

test('byte-level GGUF becomes a GPT-2-style tokenizer.json with the control tokens added as special', () => {
  const files = tokenizerFilesFromGguf(byteLevelMetadata());
  const { tokenizerJson: json, tokenizerConfig: config } = files;
  assert.equal(json.version, '1.0');
  assert.equal(json.model.type, 'BPE');
  assert.equal(Object.keys(json.model.vocab).length, 800);
  assert.deepEqual(json.model.merges[0]?.length, 2);
  assert.deepEqual(
    json.added_tokens.map((t) => [t.id, t.content, t.special, t.normalized]),
    [
      [0, '<|endoftext|>', true, false],
      [1, '<|im_start|>', true, false],
      [2, '<|im_end|>', true, false],
    ],
  );
  assert.deepEqual(json.pre_tokenizer, {
    type: 'ByteLevel',
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  });
  assert.equal((json.decoder as { type: string }).type, 'ByteLevel');
  assert.equal(config.tokenizer_class, 'GPT2Tokenizer');
  assert.equal(config.add_bos_token, false);
  assert.equal(config.eos_token, '<|im_end|>');
  assert.equal(config.clean_up_tokenization_spaces, false);
  assert.equal(config.added_tokens_decoder['2']?.content, '<|im_end|>');
  assert.equal(typeof config.chat_template, 'string');
  assert.match(config.chat_template as string, /<\|im_start\|>/);
  assert.deepEqual(files.specialTokensMap, {
    bos_token: '<|endoftext|>',
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
  });
  assert.deepEqual(files.generation, { bosTokenId: 0, eosTokenIds: [2], padTokenId: 0 });
});

const FAMILIES = {
  gpt2: { digits: ['12345'], nfc: false },
  smollm: { digits: ['1', '2', '3', '4', '5'], nfc: false },
  'llama-bpe': { digits: ['123', '45'], nfc: false },
  qwen2: { digits: ['1', '2', '3', '4', '5'], nfc: true },
} as const;

for (const [pre, expected] of Object.entries(FAMILIES)) {
  test(`pre-tokenizer "${pre}": digits split as the original does, and the corpus round-trips`, () => {
    // A vocabulary where "12345" is one token, so only the pre-tokenizer can split it.
    const base = byteLevelMetadata();
    const tokens = [...(base.get('tokenizer.ggml.tokens') as string[])];
    const merges = [...(base.get('tokenizer.ggml.merges') as string[])];
    for (const [l, r] of [
      ['1', '2'],
      ['12', '3'],
      ['4', '5'],
      ['123', '45'],
    ]) {
      tokens.push(`${l}${r}`);
      merges.push(`${l} ${r}`);
    }
    const md = byteLevelMetadata({
      'tokenizer.ggml.pre': pre,
      'tokenizer.ggml.tokens': tokens,
      'tokenizer.ggml.merges': merges,
      'tokenizer.ggml.token_type': tokens.map((_, i) => (i < 3 ? 3 : 1)),
    });
    const tok = load(tokenizerFilesFromGguf(md));
    assert.deepEqual(pieces(tok, '12345'), expected.digits);
    for (const text of ROUND_TRIP_CORPUS) {
      const want = expected.nfc ? text.normalize('NFC') : text;
      assert.equal(tok.decode(tok.encode(text)), want, JSON.stringify(text));
    }
  });
}

test('Llama 3 style: BOS is added by default, ignore_merges is on, the class is PreTrainedTokenizerFast', () => {
  const files = tokenizerFilesFromGguf(
    byteLevelMetadata({ 'tokenizer.ggml.pre': 'llama-bpe', 'tokenizer.ggml.add_bos_token': true }),
  );
  assert.equal(files.tokenizerJson.model.ignore_merges, true);
  assert.equal(files.tokenizerConfig.tokenizer_class, 'PreTrainedTokenizerFast');
  const tok = load(files);
  assert.deepEqual(tok.encode('hi').slice(0, 1), [0]);
  assert.notEqual(tok.encode('hi', { addSpecialTokens: false })[0], 0);
});

test('end-of-turn and end-of-message ids join EOS for generation', () => {
  const files = tokenizerFilesFromGguf(
    byteLevelMetadata({ 'tokenizer.ggml.eot_token_id': 1, 'tokenizer.ggml.eom_token_id': 2 }),
  );
  assert.deepEqual(files.generation?.eosTokenIds, [2, 1]);
});

test('named chat templates become the list form, with the main one as "default"', () => {
  const files = tokenizerFilesFromGguf(
    byteLevelMetadata({
      'tokenizer.chat_templates': ['tool_use'],
      'tokenizer.chat_template.tool_use': 'TOOLS {{ tools }}',
    }),
  );
  const templates = files.tokenizerConfig.chat_template;
  assert.ok(Array.isArray(templates));
  assert.deepEqual(
    templates.map((t: { name: string }) => t.name),
    ['default', 'tool_use'],
  );
});

test('SentencePiece GGUF: LlamaTokenizerFast layout, BOS added, byte fallback', () => {
  const files = tokenizerFilesFromGguf(sentencePieceMetadata());
  const { tokenizerJson: json, tokenizerConfig: config } = files;
  assert.equal(json.model.byte_fallback, true);
  assert.equal(json.model.unk_token, '<unk>');
  assert.equal(json.pre_tokenizer, null);
  assert.deepEqual(json.normalizer, {
    type: 'Sequence',
    normalizers: [
      { type: 'Prepend', prepend: '▁' },
      { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    ],
  });
  assert.equal(config.tokenizer_class, 'LlamaTokenizer');
  assert.equal(config.add_bos_token, true);
  assert.equal(config.model_max_length, 4096);
  assert.deepEqual(
    json.added_tokens.map((t) => t.content),
    ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>'],
  );
  const tok = load(files);
  assert.deepEqual(tok.encode('Hello').slice(0, 1), [1]);
  // A character the vocabulary lacks falls back to its UTF-8 bytes (語 = E8 AA 9E).
  const bytes = ['<0xE8>', '<0xAA>', '<0x9E>'].map((t) => tok.tokenToId(t));
  assert.deepEqual(tok.encode('語', { addSpecialTokens: false }), [tok.tokenToId('▁'), ...bytes]);
});

test('SentencePiece GGUF: the same ids SentencePiece itself gives, and the text back', () => {
  const tok = load(tokenizerFilesFromGguf(sentencePieceMetadata()));
  assert.ok(Object.keys(SENTENCEPIECE_EXPECTED).length > 15);
  for (const [text, ids] of Object.entries(SENTENCEPIECE_EXPECTED)) {
    const got = tok.encode(text, { addSpecialTokens: false });
    assert.deepEqual(got, ids, JSON.stringify(text));
    assert.equal(tok.decode(got), text);
  }
});

test('SentencePiece: text after a special token gets the dummy-prefix space, as in llama.cpp and transformers', () => {
  const tok = load(tokenizerFilesFromGguf(sentencePieceMetadata()));
  const ids = tok.encode('<|im_start|>user', { addSpecialTokens: false });
  assert.equal(ids[0], 3);
  assert.equal(tok.decode(ids), '<|im_start|> user');
});

test('SentencePiece without add_space_prefix neither prepends nor strips a space', () => {
  const tok = load(
    tokenizerFilesFromGguf(sentencePieceMetadata({ 'tokenizer.ggml.add_space_prefix': false })),
  );
  const withPrefix = load(tokenizerFilesFromGguf(sentencePieceMetadata()));
  assert.notDeepEqual(tok.encode('the'), withPrefix.encode('the'));
  assert.deepEqual(
    tok.encode(' the', { addSpecialTokens: false }),
    withPrefix.encode('the', { addSpecialTokens: false }),
  );
  assert.equal(tok.decode(tok.encode(' the'), { skipSpecialTokens: true }), ' the');
  assert.equal(tok.decode(tok.encode('the'), { skipSpecialTokens: true }), 'the');
});

test('merges from scores: every split of a piece into two pieces, best-scored piece first', () => {
  const tokens = ['a', 'b', 'c', 'ab', 'bc', 'abc', '<0x41>'];
  const scores = [-10, -11, -12, -1, -2, -3, 0];
  const types = [1, 1, 1, 1, 1, 1, 6];
  assert.deepEqual(mergesFromScores(tokens, scores, types), [
    ['a', 'b'],
    ['b', 'c'],
    ['ab', 'c'],
    ['a', 'bc'],
  ]);
});

function errorCase(md: GgufMetadata, code: string, mentions: string): () => void {
  return () => {
    assertCode(() => tokenizerFilesFromGguf(md), code, mentions);
  };
}

test(
  'an unsupported tokenizer model is named in the error',
  errorCase(byteLevelMetadata({ 'tokenizer.ggml.model': 'bert' }), 'unsupported_tokenizer', 'bert'),
);
test('a GGUF without a tokenizer says so', errorCase(new Map(), 'unsupported_tokenizer', 'no tokenizer'));
test(
  'an unknown pre-tokenizer is named in the error',
  errorCase(byteLevelMetadata({ 'tokenizer.ggml.pre': 'tekken' }), 'unsupported_tokenizer', 'tekken'),
);
test(
  'a merge of unknown tokens is a corrupt file',
  errorCase(byteLevelMetadata({ 'tokenizer.ggml.merges': ['x zz'] }), 'gguf_corrupt', 'zz'),
);
test(
  'a special id outside the vocabulary is a corrupt file',
  errorCase(byteLevelMetadata({ 'tokenizer.ggml.eos_token_id': 99999 }), 'gguf_corrupt', 'eos_token_id'),
);
test(
  'tokens of the wrong type are a corrupt file',
  errorCase(byteLevelMetadata({ 'tokenizer.ggml.tokens': [1, 2] }), 'gguf_corrupt', 'tokenizer.ggml.tokens'),
);
test('SentencePiece without scores is a corrupt file', () => {
  const md = new Map(sentencePieceMetadata());
  md.delete('tokenizer.ggml.scores');
  assertCode(() => tokenizerFilesFromGguf(md), 'gguf_corrupt', 'scores');
});
