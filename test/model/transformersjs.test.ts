/**
 * The built default model folder is a standard Hugging Face ONNX export: transformers.js
 * loads it as it is, and its greedy output equals ours token for token.
 */
import assert from 'node:assert/strict';
import { basename, dirname } from 'node:path';
import { test } from 'node:test';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { generate } from '../../server/src/engine/generate.ts';
import { Tokenizer } from '../../server/src/model/tokenizer/tokenizer.ts';
import { DecoderSession } from '../../server/src/runtime/decoder.ts';
import { defaultModelDir } from '../support/default-model.ts';

const TOKENS = 32;

test('transformers.js loads the default model folder and its greedy output equals ours for 32 tokens', async () => {
  const dir = await defaultModelDir();
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(dir)}/`;
  const tjsTokenizer = await AutoTokenizer.from_pretrained(basename(dir));
  const model = await AutoModelForCausalLM.from_pretrained(basename(dir), { dtype: 'fp32', device: 'cpu' });

  const ours = await Tokenizer.load(dir);
  const prompt = ours.applyChatTemplate(
    [{ role: 'user', content: 'Write a long paragraph about the history of sailing.' }],
    {
      addGenerationPrompt: true,
    },
  );
  const ids = ours.encode(prompt, { addSpecialTokens: false });
  assert.deepEqual(
    Array.from(tjsTokenizer.encode(prompt, { add_special_tokens: false })),
    ids,
    'same prompt tokens',
  );

  const inputIds = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
  const attentionMask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
  const out = (await model.generate({
    input_ids: inputIds,
    attention_mask: attentionMask,
    max_new_tokens: TOKENS,
    do_sample: false,
  })) as Tensor;
  const theirs = Array.from(out.data as BigInt64Array, Number).slice(ids.length);
  await model.dispose();

  const session = await DecoderSession.open(dir, { device: 'cpu' });
  const mine: number[] = [];
  try {
    for await (const t of generate(session, ids, { maxTokens: TOKENS, stopTokenIds: ours.eosTokenIds }))
      mine.push(t.id);
  } finally {
    await session.dispose();
  }
  assert.equal(theirs.length, TOKENS, 'the prompt asks for more than 32 tokens, so neither side stops early');
  assert.deepEqual(mine, theirs);
});
