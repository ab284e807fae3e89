/**
 * An incremental server-sent-events reader: feed it the response body as it arrives, in
 * pieces cut anywhere, and it returns each complete event's data (data lines joined by
 * "\n"). Comments (": ping") and other fields are skipped; CRLF, CR and LF all end lines.
 */
export class SseReader {
  #buffer = '';
  #data: string[] = [];
  readonly #decoder = new TextDecoder();

  /** The data of every event that `chunk` completes, in order. */
  push(chunk: Uint8Array | string): string[] {
    this.#buffer += typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    const events: string[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (m === null) break;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (m[0] === '\r' && m.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      this.#line(line, events);
    }
    return events;
  }

  /** The event left open when the stream ends without a blank line, if any. */
  end(): string[] {
    const events: string[] = [];
    const rest = this.#buffer.endsWith('\r') ? this.#buffer.slice(0, -1) : this.#buffer;
    if (rest !== '') this.#line(rest, events);
    this.#buffer = '';
    this.#line('', events);
    return events;
  }

  #line(line: string, events: string[]): void {
    if (line === '') {
      if (this.#data.length > 0) events.push(this.#data.join('\n'));
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.#data.push(value);
  }
}
