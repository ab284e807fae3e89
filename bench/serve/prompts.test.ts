import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exactPrompt, exactPrompts, singleTokenWords } from './prompts.ts';
import { seededRandom } from '../../server/src/util/seeded-random.ts';

// A stand-in tokenizer: one token per word, except "elephant" which is two.
const encode = (text: string): number[] =>
  text
    .split(' ')
    .filter((w) => w !== '')
    .flatMap((w) => (w === 'elephant' ? [1, 2] : [1]));
const withTemplate = (overhead: number) => (text: string) => overhead + encode(text).length;

test('single-token words keep their leading space and drop multi-token words', () => {
  const words = singleTokenWords((t) => (t.length > 5 ? [1, 2] : [1]));
  assert.ok(words.length > 50);
  assert.ok(words.every((w) => w.startsWith(' ') && w.length <= 5));
});

test('a prompt has exactly the asked length, template overhead included', () => {
  const words = [' a', ' b', ' elephant'];
  for (const overhead of [0, 1, 17]) {
    const random = seededRandom(overhead);
    for (const tokens of [overhead, overhead + 1, 64, 200]) {
      const p = exactPrompt(withTemplate(overhead), words, tokens, random);
      assert.equal(withTemplate(overhead)(p), tokens, `overhead ${overhead}, ${tokens} tokens`);
    }
  }
});

test('a prompt shorter than the template alone is refused', () => {
  assert.throws(() => exactPrompt(withTemplate(20), [' a'], 10, seededRandom(1)), /exactly 10 tokens/);
});

test('prompts are distinct and the same for a seed', () => {
  const words = ['the', 'of', 'and', 'to', 'in', 'is'].map((w) => ` ${w}`);
  const a = exactPrompts(withTemplate(3), words, 32, 50, 9);
  assert.equal(a.length, 50);
  assert.equal(new Set(a).size, 50);
  assert.deepEqual(exactPrompts(withTemplate(3), words, 32, 50, 9), a);
  assert.notDeepEqual(exactPrompts(withTemplate(3), words, 32, 50, 10), a);
  assert.ok(a.every((p) => withTemplate(3)(p) === 32));
});
