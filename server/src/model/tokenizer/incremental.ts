/**
 * Streaming detokenization. Decoding token by token breaks text in two ways: a UTF-8
 * character can span tokens (byte-level BPE, byte fallback), and so can a user-perceived
 * character (emoji ZWJ sequences, skin tones, flags, combining accents, CR LF).
 *
 * The first is handled as vLLM and TGI do: decode a short window of recent tokens twice, with
 * and without the newest ones, and release the difference only when it does not end in an
 * incomplete character (U+FFFD). Decoding a window, not the whole text, keeps each step cheap;
 * starting the window at already-released tokens keeps decoders that treat the first token
 * specially (SentencePiece's leading-space strip) consistent.
 *
 * The second: released text is held back by its last grapheme cluster, which the next token
 * may still extend; only clusters followed by another are final.
 */

const REPLACEMENT = '\uFFFD';
/** How many earlier tokens give the first generated token its context (vLLM uses 5). */
const CONTEXT_TOKENS = 5;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Where the last grapheme cluster of `text` starts (text.length when empty). */
function lastGraphemeStart(text: string): number {
  let start = text.length;
  for (const { index } of graphemes.segment(text)) start = index;
  return start;
}

export type DecodeIds = (ids: readonly number[]) => string;

export class IncrementalDecoder {
  readonly #decode: DecodeIds;
  /** The window: ids whose text is released up to #readOffset, then ids not yet released. */
  readonly #ids: number[];
  #readOffset: number;
  /** Text that is complete as UTF-8 but may still grow into a longer grapheme cluster. */
  #held = '';

  /**
   * `decode` must be the tokenizer's (same options every call). `context`, the prompt's ids,
   * gives the first generated tokens the text they follow; it is never emitted.
   */
  constructor(decode: DecodeIds, context: readonly number[] = []) {
    this.#decode = decode;
    this.#ids = context.slice(-CONTEXT_TOKENS);
    this.#readOffset = this.#ids.length;
  }

  /** Adds one token; returns the text that became final (often ''). */
  push(id: number): string {
    this.#ids.push(id);
    const prefixText = this.#text(this.#readOffset);
    const newText = this.#text(this.#ids.length);
    if (newText.length > prefixText.length && !newText.endsWith(REPLACEMENT)) {
      this.#held += newText.slice(prefixText.length);
      // The next window starts at the ids just read past; older ones are no longer needed.
      this.#ids.splice(0, this.#readOffset);
      this.#readOffset = this.#ids.length;
    }
    const cut = lastGraphemeStart(this.#held);
    const out = this.#held.slice(0, cut);
    this.#held = this.#held.slice(cut);
    return out;
  }

  /** Ends the stream: returns everything not yet released, incomplete characters included. */
  flush(): string {
    const out = this.#held + this.#text(this.#ids.length).slice(this.#text(this.#readOffset).length);
    this.#held = '';
    this.#ids.length = 0;
    this.#readOffset = 0;
    return out;
  }

  /** The text of the window's first `end` ids. */
  #text(end: number): string {
    return end > 0 ? this.#decode(this.#ids.slice(0, end)) : '';
  }
}
