import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Template } from '@huggingface/jinja';
import { byteLevelMetadata, sentencePieceMetadata } from '../../../../test/fixtures/tokenizer/metadata.ts';
import { AutoGLMError } from '../../errors.ts';
import type { ChatMessage } from './chatTemplate.ts';
import { tokenizerFilesFromGguf } from './fromGguf.ts';
import { syntheticTokenizerFiles } from './synthetic.ts';
import { Tokenizer } from './tokenizer.ts';

/** SmolLM2-Instruct's template as its GGUF stores it in tokenizer.chat_template. */
const SMOLLM2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}" +
  "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** A Llama 2 style template: BOS from the special-token variables, errors through raise_exception. */
const LLAMA2_TEMPLATE =
  "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}";

function fromMetadata(md: Parameters<typeof tokenizerFilesFromGguf>[0]): Tokenizer {
  const files = tokenizerFilesFromGguf(md);
  return Tokenizer.fromSources({
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: files.tokenizerConfig,
  });
}

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You answer briefly.' },
  { role: 'user', content: 'What is 2 + 2?' },
  { role: 'assistant', content: '4.' },
  { role: 'user', content: 'And in French? 🇫🇷' },
];

test('renders the GGUF chat template exactly as Jinja does, with and without a system turn', () => {
  const tok = fromMetadata(byteLevelMetadata({ 'tokenizer.chat_template': SMOLLM2_TEMPLATE }));
  const direct = new Template(SMOLLM2_TEMPLATE);
  for (const messages of [CONVERSATION, CONVERSATION.slice(1)]) {
    for (const addGenerationPrompt of [true, false]) {
      const expected = direct.render({ messages, add_generation_prompt: addGenerationPrompt });
      assert.equal(tok.applyChatTemplate(messages, { addGenerationPrompt }), expected);
    }
  }
});

test('ChatML turns come out literally', () => {
  const tok = fromMetadata(byteLevelMetadata({ 'tokenizer.chat_template': SMOLLM2_TEMPLATE }));
  assert.equal(
    tok.applyChatTemplate(CONVERSATION.slice(0, 3), { addGenerationPrompt: false }),
    '<|im_start|>system\nYou answer briefly.<|im_end|>\n' +
      '<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n' +
      '<|im_start|>assistant\n4.<|im_end|>\n',
  );
  assert.equal(
    tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }),
    '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  );
});

test('the synthetic tokenizer speaks ChatML and its prompt tokenizes turn markers as single tokens', () => {
  const files = syntheticTokenizerFiles(400);
  const tok = Tokenizer.fromSources({
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: files.tokenizerConfig,
  });
  const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
  assert.equal(prompt, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  const ids = tok.encode(prompt, { addSpecialTokens: false });
  assert.equal(ids.filter((id) => id === 1).length, 2);
  assert.equal(ids.filter((id) => id === 2).length, 1);
});

test('special tokens reach the template by name; raise_exception rejects the request', () => {
  const tok = fromMetadata(sentencePieceMetadata({ 'tokenizer.chat_template': LLAMA2_TEMPLATE }));
  assert.equal(
    tok.applyChatTemplate([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ]),
    '<s>[INST] Hi [/INST] Hello</s>',
  );
  assert.throws(
    () => tok.applyChatTemplate([{ role: 'assistant', content: 'first' }]),
    (err: unknown) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'invalid_argument');
      assert.match(err.message, /must alternate/);
      return true;
    },
  );
});

test('tools select the tool_use template and reach it as a variable', () => {
  const tok = fromMetadata(
    byteLevelMetadata({
      'tokenizer.chat_template': 'plain:{{ messages[0].content }}',
      'tokenizer.chat_templates': ['tool_use'],
      'tokenizer.chat_template.tool_use': 'tools:{{ tools[0].function.name }}:{{ messages[0].content }}',
    }),
  );
  const messages = [{ role: 'user', content: 'weather?' }];
  assert.equal(tok.applyChatTemplate(messages), 'plain:weather?');
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: {} } }];
  assert.equal(tok.applyChatTemplate(messages, { tools }), 'tools:get_weather:weather?');
});

test('a model without a chat template says so', () => {
  const md = new Map(byteLevelMetadata());
  md.delete('tokenizer.chat_template');
  const tok = fromMetadata(md);
  assert.equal(tok.hasChatTemplate, false);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }]), {
    code: 'unsupported_tokenizer',
  });
});

test('a template that does not parse is reported as the model’s problem', () => {
  const tok = fromMetadata(byteLevelMetadata({ 'tokenizer.chat_template': '{% for %}' }));
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }]), {
    code: 'unsupported_tokenizer',
  });
});
