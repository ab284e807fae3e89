/**
 * Our tokenizer files as transformers.js reads them: AutoTokenizer on the written folder must
 * give the ids, text and chat prompts our Tokenizer gives.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { ROUND_TRIP_CORPUS } from '../../../../test/fixtures/tokenizer/corpus.ts';
import { byteLevelMetadata, sentencePieceMetadata } from '../../../../test/fixtures/tokenizer/metadata.ts';
import { writeTokenizerFiles } from './files.ts';
import { tokenizerFilesFromGguf } from './fromGguf.ts';
import { syntheticTokenizerFiles } from './synthetic.ts';
import { Tokenizer } from './tokenizer.ts';
import type { TokenizerFiles } from './types.ts';

const LLAMA2_STYLE_TEMPLATE =
  "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}" +
  "{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}";

const CASES: Record<string, TokenizerFiles> = {
  synthetic: syntheticTokenizerFiles(3000),
  smollm: tokenizerFilesFromGguf(byteLevelMetadata({ 'tokenizer.ggml.pre': 'smollm' })),
  llama3: tokenizerFilesFromGguf(
    byteLevelMetadata({ 'tokenizer.ggml.pre': 'llama-bpe', 'tokenizer.ggml.add_bos_token': true }),
  ),
  qwen2: tokenizerFilesFromGguf(byteLevelMetadata({ 'tokenizer.ggml.pre': 'qwen2' })),
  sentencepiece: tokenizerFilesFromGguf(
    sentencePieceMetadata({ 'tokenizer.chat_template': LLAMA2_STYLE_TEMPLATE }),
  ),
};

const CONVERSATION = [
  { role: 'user', content: 'Bonjour ! 👋 How are you?' },
  { role: 'assistant', content: 'Très bien.\n\tThanks.' },
  { role: 'user', content: 'Say 123 in 日本語.' },
];

let root = '';
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'autoglm-tjs-'));
  await Promise.all(
    Object.entries(CASES).map(([name, files]) => writeTokenizerFiles(path.join(root, name), files)),
  );
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = root;
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

for (const name of Object.keys(CASES)) {
  test(`${name}: transformers.js tokenizes the corpus as we do`, async () => {
    const theirs = await AutoTokenizer.from_pretrained(name);
    const ours = await Tokenizer.load(path.join(root, name));
    for (const text of ROUND_TRIP_CORPUS) {
      const ids = ours.encode(text);
      assert.deepEqual(theirs.encode(text), ids, JSON.stringify(text));
      // transformers.js drops a byte-order mark that starts a run of byte-fallback tokens;
      // we keep it, as the Rust `tokenizers` does (see hfTokenizers.ts).
      if (ids.length > 0 && !text.includes('\ufeff')) {
        const opts = { skip_special_tokens: false, clean_up_tokenization_spaces: false };
        assert.equal(theirs.decode(ids, opts), ours.decode(ids), JSON.stringify(text));
      }
    }
    assert.equal(theirs.eos_token_id, ours.eosTokenIds[0]);
  });

  test(`${name}: transformers.js renders the chat template as we do`, async () => {
    const theirs = await AutoTokenizer.from_pretrained(name);
    const ours = await Tokenizer.load(path.join(root, name));
    if (!ours.hasChatTemplate) return;
    for (const addGenerationPrompt of [false, true]) {
      const rendered = theirs.apply_chat_template(CONVERSATION, {
        tokenize: false,
        add_generation_prompt: addGenerationPrompt,
      });
      assert.equal(ours.applyChatTemplate(CONVERSATION, { addGenerationPrompt }), rendered);
    }
  });
}
