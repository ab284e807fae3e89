/**
 * A sequence's output text: incremental detokenization plus stop strings. A stop string
 * may span tokens, so the last (longest stop − 1) characters are held back until the next
 * token shows they cannot begin one; a matched stop string is never emitted.
 */

export interface TextDecoder {
  push(id: number): string;
  flush(): string;
}

export class OutputText {
  readonly #decoder: TextDecoder;
  readonly #stops: readonly string[];
  readonly #hold: number;
  #pending = '';
  #stopped = false;

  constructor(decoder: TextDecoder, stopStrings: readonly string[]) {
    this.#decoder = decoder;
    this.#stops = stopStrings.filter((s) => s !== '');
    this.#hold = Math.max(0, ...this.#stops.map((s) => s.length - 1));
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Feeds one token; returns the text now safe to emit and whether a stop string matched. */
  push(id: number): { text: string; stopped: boolean } {
    if (this.#stopped) return { text: '', stopped: true };
    return this.#release(this.#pending + this.#decoder.push(id), false);
  }

  /** At the end of generation: whatever is still held back (up to a stop string). */
  finish(): string {
    if (this.#stopped) return '';
    return this.#release(this.#pending + this.#decoder.flush(), true).text;
  }

  #release(text: string, final: boolean): { text: string; stopped: boolean } {
    let cut = -1;
    for (const s of this.#stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.#stopped = true;
      this.#pending = '';
      return { text: text.slice(0, cut), stopped: true };
    }
    const keep = final ? 0 : Math.min(this.#hold, text.length);
    this.#pending = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }
}
