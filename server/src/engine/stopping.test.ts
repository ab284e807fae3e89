import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutputText, type TextDecoder } from './stopping.ts';

/** A decoder over a fixed vocabulary of text pieces, as a real tokenizer's would stream them. */
function pieces(vocab: readonly string[]): TextDecoder {
  return { push: (id) => vocab[id] ?? '', flush: () => '' };
}

function run(vocab: readonly string[], ids: number[], stops: string[]): { text: string; stoppedAt: number } {
  const out = new OutputText(pieces(vocab), stops);
  let text = '';
  for (const [i, id] of ids.entries()) {
    const r = out.push(id);
    text += r.text;
    if (r.stopped) return { text, stoppedAt: i };
  }
  return { text: text + out.finish(), stoppedAt: -1 };
}

test('a stop string inside one token ends the text before it', () => {
  assert.deepEqual(run(['Hello', ' wor', 'ld STOP', ' more'], [0, 1, 2, 3], ['STOP']), {
    text: 'Hello world ',
    stoppedAt: 2,
  });
});

test('a stop string spanning three tokens is matched and never emitted', () => {
  const vocab = ['The answer', ' is 4', '2.', '##', '#E', 'ND', ' tail'];
  const r = run(vocab, [0, 1, 2, 3, 4, 5, 6], ['###END']);
  assert.deepEqual(r, { text: 'The answer is 42.', stoppedAt: 5 });
});

test('text that only looks like the start of a stop string is released at the end', () => {
  assert.deepEqual(run(['a', 'b', '#', '#'], [0, 1, 2, 3], ['###']), { text: 'ab##', stoppedAt: -1 });
});

test('the earliest of several stop strings wins', () => {
  assert.deepEqual(run(['x', 'yz', 'w'], [0, 1, 2], ['zw', 'xy']), { text: '', stoppedAt: 1 });
});

test('without stop strings nothing is held back', () => {
  const out = new OutputText(pieces(['ab', 'cd']), []);
  assert.deepEqual(out.push(0), { text: 'ab', stopped: false });
  assert.deepEqual(out.push(1), { text: 'cd', stopped: false });
});
