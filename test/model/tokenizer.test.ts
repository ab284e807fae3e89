/**
 * The tokenizer built from the default model's GGUF (SmolLM2-135M-Instruct): known ids, round
 * trips, streaming, the chat template, and transformers.js reading the same files. The ids
 * were checked against the Rust `tokenizers` on SmolLM2's original tokenizer layout and
 * against an independent implementation of llama.cpp's "smollm" pre-tokenizer and BPE.
 *
 * AUTOGLM_GGUF names the file; by default it is the one `autoglm model pull` caches.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { openGguf } from '../../server/src/model/gguf/reader.ts';
import type { GgufMetadata } from '../../server/src/model/gguf/types.ts';
import { writeTokenizerFiles } from '../../server/src/model/tokenizer/files.ts';
import { tokenizerFilesFromGguf } from '../../server/src/model/tokenizer/fromGguf.ts';
import { Tokenizer } from '../../server/src/model/tokenizer/tokenizer.ts';
import type { TokenizerFiles } from '../../server/src/model/tokenizer/types.ts';
import { ROUND_TRIP_CORPUS } from '../fixtures/tokenizer/corpus.ts';
import { defaultGgufPath } from '../support/default-model.ts';

const KNOWN_IDS: Record<string, number[]> = {
  'Hello, we can use': [19556, 28, 392, 416, 722],
  'The capital of France is': [504, 3575, 282, 4649, 314],
  // "smollm" splits every digit off: " " then "1", "2", "3"
  'Hello world! 123': [19556, 905, 17, 216, 33, 34, 35],
  'Café déjà vu.': [51, 1939, 2756, 32564, 90, 16739, 386, 101, 30],
  '  multiple   spaces': [216, 2701, 256, 5600],
  '\n': [198],
  // add_bos_token is false: no BOS in front, the turn markers are single tokens
  '<|im_start|>user\nHi<|im_end|>\n': [1, 4093, 198, 26843, 2, 198],
};

const CONVERSATION = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name a colour.' },
  { role: 'assistant', content: 'Blue.' },
  { role: 'user', content: 'Another, in 日本語?' },
];

let metadata: GgufMetadata;
let files: TokenizerFiles;
let dir = '';
let tok: Tokenizer;

before(async () => {
  const gguf = await openGguf(process.env.AUTOGLM_GGUF ?? (await defaultGgufPath()));
  try {
    metadata = gguf.metadata;
  } finally {
    await gguf.close();
  }
  files = tokenizerFilesFromGguf(metadata);
  dir = await mkdtemp(path.join(tmpdir(), 'autoglm-smollm2-tokenizer-'));
  await writeTokenizerFiles(path.join(dir, 'smollm2'), files);
  tok = await Tokenizer.load(path.join(dir, 'smollm2'));
});

after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

test('the GGUF describes a byte-level BPE tokenizer with the "smollm" pre-tokenizer', () => {
  assert.equal(metadata.get('tokenizer.ggml.model'), 'gpt2');
  assert.equal(metadata.get('tokenizer.ggml.pre'), 'smollm');
  assert.equal(files.tokenizerConfig.tokenizer_class, 'GPT2Tokenizer');
  assert.equal(files.tokenizerConfig.add_bos_token, false);
  assert.equal(files.tokenizerConfig.model_max_length, 8192);
  assert.deepEqual(files.specialTokensMap, {
    bos_token: '<|im_start|>',
    eos_token: '<|im_end|>',
    unk_token: '<|endoftext|>',
    pad_token: '<|im_end|>',
  });
  assert.deepEqual(files.generation, { bosTokenId: 1, eosTokenIds: [2], padTokenId: 2 });
  assert.equal(files.tokenizerJson.added_tokens.length, 17);
  assert.ok(files.tokenizerJson.added_tokens.every((t) => t.special));
});

test('the runtime tokenizer knows the special tokens and the vocabulary size', () => {
  assert.equal(tok.vocabSize, 49152);
  assert.equal(tok.tokenToId('<|endoftext|>'), 0);
  assert.equal(tok.tokenToId('<|im_start|>'), 1);
  assert.equal(tok.tokenToId('<|im_end|>'), 2);
  assert.equal(tok.bosTokenId, 1);
  assert.deepEqual(tok.eosTokenIds, [2]);
});

test('known texts get the known ids', () => {
  for (const [text, ids] of Object.entries(KNOWN_IDS)) {
    assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
  }
});

test('the corpus survives encode → decode, and streams back to the same text', () => {
  for (const text of ROUND_TRIP_CORPUS) {
    const ids = tok.encode(text);
    const full = tok.decode(ids);
    assert.equal(full, text, JSON.stringify(text));
    const decoder = tok.incrementalDecoder();
    const deltas = ids.map((id) => decoder.push(id));
    deltas.push(decoder.flush());
    assert.equal(deltas.join(''), full);
    assert.ok(deltas.every((d) => !d.includes('\uFFFD')));
  }
});

test('applyChatTemplate renders the GGUF chat template as Jinja does, in ChatML', () => {
  const source = metadata.get('tokenizer.chat_template');
  assert.equal(typeof source, 'string');
  const direct = new Template(source as string);
  for (const messages of [CONVERSATION, CONVERSATION.slice(1)]) {
    const expected = direct.render({ messages, add_generation_prompt: true });
    assert.equal(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), expected);
  }
  const prompt = tok.applyChatTemplate(CONVERSATION.slice(0, 2), { addGenerationPrompt: true });
  assert.equal(
    prompt,
    '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n',
  );
  // without a system turn, SmolLM2's template adds its own
  assert.match(
    tok.applyChatTemplate(CONVERSATION.slice(1, 2)),
    /^<\|im_start\|>system\nYou are a helpful AI assistant named SmolLM/,
  );
  const ids = tok.encode(prompt, { addSpecialTokens: false });
  assert.deepEqual(
    ids.filter((id) => id === 1 || id === 2),
    [1, 2, 1, 2, 1],
  );
});

test('transformers.js loads the converted folder and agrees on ids and chat prompts', async () => {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = dir;
  const theirs = await AutoTokenizer.from_pretrained('smollm2');
  for (const text of [...ROUND_TRIP_CORPUS, ...Object.keys(KNOWN_IDS)]) {
    assert.deepEqual(theirs.encode(text), tok.encode(text), JSON.stringify(text));
  }
  const rendered = theirs.apply_chat_template(CONVERSATION, { tokenize: false, add_generation_prompt: true });
  assert.equal(rendered, tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }));
});
