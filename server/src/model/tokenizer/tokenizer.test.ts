import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROUND_TRIP_CORPUS } from '../../../../test/fixtures/tokenizer/corpus.ts';
import { sentencePieceMetadata } from '../../../../test/fixtures/tokenizer/metadata.ts';
import { AutoGLMError } from '../../errors.ts';
import { writeTokenizerFiles } from './files.ts';
import { tokenizerFilesFromGguf } from './fromGguf.ts';
import { syntheticTokenizerFiles } from './synthetic.ts';
import { Tokenizer } from './tokenizer.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'autoglm-tokenizer-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const byteLevel = Tokenizer.fromSources({
  tokenizerJson: syntheticTokenizerFiles(1000).tokenizerJson,
  tokenizerConfig: syntheticTokenizerFiles(1000).tokenizerConfig,
});
const spmFiles = tokenizerFilesFromGguf(sentencePieceMetadata());
const sentencePiece = Tokenizer.fromSources({
  tokenizerJson: spmFiles.tokenizerJson,
  tokenizerConfig: spmFiles.tokenizerConfig,
});

test('byte-level: every corpus text survives encode → decode', () => {
  for (const text of ROUND_TRIP_CORPUS) {
    const ids = byteLevel.encode(text);
    assert.equal(byteLevel.decode(ids), text, JSON.stringify(text));
  }
});

test('SentencePiece: every corpus text without special-token text survives encode → decode', () => {
  for (const text of ROUND_TRIP_CORPUS.filter((t) => !t.includes('<|'))) {
    const ids = sentencePiece.encode(text);
    assert.equal(ids[0], sentencePiece.bosTokenId);
    assert.equal(sentencePiece.decode(ids, { skipSpecialTokens: true }), text, JSON.stringify(text));
  }
});

test('special-token text is one token each, and skipSpecialTokens drops it', () => {
  const start = byteLevel.tokenToId('<|im_start|>');
  const end = byteLevel.tokenToId('<|im_end|>');
  const ids = byteLevel.encode('<|im_start|>user\nhi<|im_end|>');
  assert.equal(ids[0], start);
  assert.equal(ids.at(-1), end);
  assert.equal(ids.filter((id) => id === start || id === end).length, 2);
  assert.equal(byteLevel.decode(ids, { skipSpecialTokens: true }), 'user\nhi');
  assert.ok(byteLevel.specialTokenIds.has(end ?? -1));
});

test('tokenText is the text of one token; unknown ids and empty lists decode to nothing', () => {
  const [id] = byteLevel.encode(' the');
  assert.equal(byteLevel.tokenText(id ?? -1), ' the');
  assert.equal(byteLevel.decode([]), '');
  assert.equal(byteLevel.decode([byteLevel.vocabSize + 10, ...byteLevel.encode('ok')]), 'ok');
  const [word] = sentencePiece.encode('station', { addSpecialTokens: false });
  assert.equal(sentencePiece.tokenText(word ?? -1), ' station');
  // one byte of a four-byte character is not text yet
  assert.equal(byteLevel.tokenText(byteLevel.encode('😀')[0] ?? -1), '\uFFFD');
});

test('ids for generation come from tokenizer_config, generation_config and config.json', async () => {
  await withDir(async (dir) => {
    await writeTokenizerFiles(dir, syntheticTokenizerFiles(600));
    await writeFile(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [0, 2] }));
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ eos_token_id: 1, bos_token_id: 1 }));
    const tok = await Tokenizer.load(dir);
    assert.equal(tok.vocabSize, 600);
    assert.equal(tok.bosTokenId, 0);
    assert.equal(tok.padTokenId, 0);
    assert.deepEqual(tok.eosTokenIds, [0, 2, 1]);
    assert.equal(tok.hasChatTemplate, true);
  });
});

test('loads a standard Hugging Face folder: string merges, Digits pre-tokenizer, AddedToken objects', async () => {
  const ours = syntheticTokenizerFiles(700);
  const hfJson = {
    ...ours.tokenizerJson,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    model: {
      ...ours.tokenizerJson.model,
      merges: ours.tokenizerJson.model.merges.map(([l, r]) => `${l} ${r}`),
    },
  };
  const hfConfig = {
    tokenizer_class: 'GPT2Tokenizer',
    eos_token: { __type: 'AddedToken', content: '<|im_end|>', lstrip: false, rstrip: false },
    bos_token: null,
    clean_up_tokenization_spaces: true,
    chat_template: [{ name: 'default', template: '{{ messages[0].content }}' }],
  };
  await withDir(async (dir) => {
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(hfJson));
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(hfConfig));
    const tok = await Tokenizer.load(dir);
    assert.deepEqual(tok.eosTokenIds, [2]);
    assert.equal(tok.bosTokenId, undefined);
    assert.deepEqual(
      tok.encode('2025').map((id) => tok.tokenText(id)),
      ['2', '0', '2', '5'],
    );
    // clean_up_tokenization_spaces would turn "a ." into "a."; a server returns what the model wrote.
    assert.equal(tok.decode(tok.encode("a . b , c 's")), "a . b , c 's");
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'just this' }]), 'just this');
  });
});

test('a folder without tokenizer.json, or with broken JSON, is an unsupported tokenizer', async () => {
  await withDir(async (dir) => {
    await assert.rejects(Tokenizer.load(dir), (err: unknown) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'unsupported_tokenizer');
      assert.match(err.message, /tokenizer\.json/);
      return true;
    });
    await writeFile(path.join(dir, 'tokenizer.json'), '{"version": ');
    await assert.rejects(Tokenizer.load(dir), { code: 'unsupported_tokenizer' });
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify({ model: { type: 'Nope' } }));
    await assert.rejects(Tokenizer.load(dir), { code: 'unsupported_tokenizer' });
  });
});
