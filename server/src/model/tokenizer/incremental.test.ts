import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUND_TRIP_CORPUS } from '../../../../test/fixtures/tokenizer/corpus.ts';
import { sentencePieceMetadata } from '../../../../test/fixtures/tokenizer/metadata.ts';
import { tokenizerFilesFromGguf } from './fromGguf.ts';
import { IncrementalDecoder } from './incremental.ts';
import { syntheticTokenizerFiles } from './synthetic.ts';
import { Tokenizer, type DecodeOptions } from './tokenizer.ts';
import type { TokenizerFiles } from './types.ts';

function load(files: TokenizerFiles): Tokenizer {
  return Tokenizer.fromSources({
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: files.tokenizerConfig,
  });
}

const TOKENIZERS = {
  'byte-level': load(syntheticTokenizerFiles(600)),
  sentencepiece: load(tokenizerFilesFromGguf(sentencePieceMetadata())),
} as const;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

function stream(tok: Tokenizer, ids: readonly number[], options: DecodeOptions = {}): string[] {
  const decoder = tok.incrementalDecoder(options);
  const deltas = ids.map((id) => decoder.push(id));
  deltas.push(decoder.flush());
  return deltas;
}

/** Offsets in `text` where a grapheme cluster starts, plus its end. */
function graphemeBoundaries(text: string): Set<number> {
  const out = new Set([text.length]);
  for (const { index } of graphemes.segment(text)) out.add(index);
  return out;
}

for (const [name, tok] of Object.entries(TOKENIZERS)) {
  test(`${name}: streamed deltas add up to the full decode, never split a character or grapheme`, () => {
    for (const text of ROUND_TRIP_CORPUS) {
      for (const options of [{}, { skipSpecialTokens: true }]) {
        const ids = tok.encode(text);
        const full = tok.decode(ids, options);
        const deltas = stream(tok, ids, options);
        assert.equal(deltas.join(''), full, JSON.stringify(text));
        const boundaries = graphemeBoundaries(full);
        let at = 0;
        for (const delta of deltas) {
          if (!full.includes('\uFFFD'))
            assert.ok(!delta.includes('\uFFFD'), `${JSON.stringify(delta)} in ${text}`);
          at += delta.length;
          assert.ok(boundaries.has(at), `delta ends inside a grapheme at ${at} of ${JSON.stringify(full)}`);
        }
      }
    }
  });
}

test('an emoji ZWJ sequence arrives whole, after the token that ends it', () => {
  const tok = TOKENIZERS['byte-level'];
  const family = '👨‍👩‍👧‍👦';
  const ids = tok.encode(`a ${family} b`);
  assert.ok(ids.length > 20, 'each byte is its own token here');
  const deltas = stream(tok, ids).filter((d) => d !== '');
  assert.ok(deltas.some((d) => d.includes(family)));
  assert.ok(deltas.every((d) => !d.includes('\u200d') || d.includes(family)));
});

test('a skin-tone modifier and a combining accent stay with their base character', () => {
  const tok = TOKENIZERS.sentencepiece;
  for (const [text, cluster] of [
    ['👍🏽 ok', '👍🏽'],
    ['cafe\u0301 ok', 'e\u0301'],
  ] as const) {
    const deltas = stream(tok, tok.encode(text, { addSpecialTokens: false }));
    assert.equal(deltas.join(''), text);
    assert.ok(
      deltas.some((d) => d.includes(cluster)),
      JSON.stringify(deltas),
    );
  }
});

test('bytes that never complete a character come out at the end, as the full decode has them', () => {
  const tok = TOKENIZERS['byte-level'];
  const [first] = tok.encode('😀'); // the first of four byte tokens
  const ids = [...tok.encode('ok '), first ?? -1];
  const deltas = stream(tok, ids);
  assert.equal(deltas.join(''), tok.decode(ids));
  assert.equal(deltas.at(-1), ' \uFFFD');
});

test('the prompt as context keeps the leading space of the first generated SentencePiece token', () => {
  const tok = TOKENIZERS.sentencepiece;
  const prompt = tok.encode('Where is the station?');
  // "▁The" is not a piece: the answer starts with a lone "▁", which alone decodes to nothing.
  const answer = tok.encode('The station is here.', { addSpecialTokens: false });
  const decoder = tok.incrementalDecoder({ context: prompt });
  const text = answer.map((id) => decoder.push(id)).join('') + decoder.flush();
  assert.equal(text, tok.decode([...prompt, ...answer]).slice(tok.decode(prompt).length));
  assert.match(text, /^ /);
  assert.equal(stream(tok, answer).join(''), text.trimStart());
});

test('CR LF is one grapheme: CR waits for the next token', () => {
  const decoder = new IncrementalDecoder((ids) => ids.map((id) => String.fromCharCode(id)).join(''));
  assert.equal(decoder.push(0x61), '');
  assert.equal(decoder.push(0x0d), 'a');
  assert.equal(decoder.push(0x0a), '');
  assert.equal(decoder.push(0x62), '\r\n');
  assert.equal(decoder.flush(), 'b');
});
