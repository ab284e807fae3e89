/**
 * Writing responses: JSON bodies and SSE streams, compressed as the live tuning says and as
 * the client's Accept-Encoding allows, with the measurements the tuning loop needs: bytes
 * before and after compression, time spent compressing, and time to drain to the client.
 */
import type { Response } from 'express';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';

export interface CompressionSetting {
  readonly algorithm: 'none' | 'gzip' | 'br';
  readonly level: number;
}

export interface TransportSample {
  readonly encoding: 'identity' | 'gzip' | 'br';
  readonly level: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly compressSeconds: number;
  readonly drainSeconds: number;
}

/** The encoding to use: the configured one if the client accepts it, else none. */
export function negotiate(
  acceptEncoding: string | undefined,
  c: CompressionSetting,
): 'identity' | 'gzip' | 'br' {
  if (c.algorithm === 'none' || acceptEncoding === undefined) return 'identity';
  const accepted = acceptEncoding
    .split(',')
    .map((p) => p.trim().split(';'))
    .filter(([, q]) => q === undefined || !/^q=0(\.0*)?$/.test(q.trim()))
    .map(([name]) => name?.trim().toLowerCase());
  return accepted.includes(c.algorithm) || accepted.includes('*') ? c.algorithm : 'identity';
}

function compressor(encoding: 'gzip' | 'br', level: number): zlib.Gzip | zlib.BrotliCompress {
  return encoding === 'gzip'
    ? zlib.createGzip({ level })
    : zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level } });
}

/** One response's writer. `onDone` receives the measurements once the body has drained. */
export class ResponseWriter {
  readonly #res: Response;
  readonly #encoding: 'identity' | 'gzip' | 'br';
  readonly #level: number;
  readonly #onDone: (s: TransportSample) => void;
  #z: zlib.Gzip | zlib.BrotliCompress | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  #compressMs = 0;

  constructor(
    res: Response,
    acceptEncoding: string | undefined,
    c: CompressionSetting,
    onDone: (s: TransportSample) => void,
  ) {
    this.#res = res;
    this.#encoding = negotiate(acceptEncoding, c);
    this.#level = c.level;
    this.#onDone = onDone;
  }

  /**
   * Drain time counts only while the event loop sat idle, that is while nothing, this socket
   * included, was ready: time the body waited on the client's path. Wall time would also count
   * this process's own work on other requests (JSON, sampling), so a busy node would read as a
   * slow path, where compressing only adds work.
   */
  #measureDrain(): void {
    const loop = performance.eventLoopUtilization();
    this.#res.once('finish', () => {
      this.#onDone({
        encoding: this.#encoding,
        level: this.#encoding === 'identity' ? 0 : this.#level,
        bytesIn: this.#bytesIn,
        bytesOut: this.#bytesOut,
        compressSeconds: this.#compressMs / 1000,
        drainSeconds: performance.eventLoopUtilization(loop).idle / 1000,
      });
    });
  }

  /** A whole JSON body. */
  json(status: number, body: unknown): void {
    const raw = Buffer.from(JSON.stringify(body));
    this.#bytesIn = raw.byteLength;
    let out = raw;
    if (this.#encoding !== 'identity') {
      const t = performance.now();
      out =
        this.#encoding === 'gzip'
          ? zlib.gzipSync(raw, { level: this.#level })
          : zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: this.#level } });
      this.#compressMs += performance.now() - t;
      this.#res.setHeader('Content-Encoding', this.#encoding);
    }
    this.#res.setHeader('Vary', 'Accept-Encoding');
    this.#bytesOut = out.byteLength;
    this.#res.status(status).type('application/json');
    this.#measureDrain();
    this.#res.end(out);
  }

  /** Starts an SSE stream; every event is flushed through the compressor at once. */
  startStream(): void {
    const res = this.#res;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.setHeader('Vary', 'Accept-Encoding');
    if (this.#encoding !== 'identity') {
      res.setHeader('Content-Encoding', this.#encoding);
      const z = compressor(this.#encoding, this.#level);
      z.on('data', (chunk: Buffer) => {
        this.#bytesOut += chunk.byteLength;
        res.write(chunk);
      });
      this.#z = z;
    }
    res.flushHeaders();
  }

  /** Writes one frame (already SSE-formatted); resolves when it is handed to the socket. */
  async write(frame: string): Promise<void> {
    const buf = Buffer.from(frame);
    this.#bytesIn += buf.byteLength;
    const z = this.#z;
    if (z === undefined) {
      this.#bytesOut += buf.byteLength;
      if (!this.#res.write(buf)) await new Promise((r) => this.#res.once('drain', r));
      return;
    }
    const t = performance.now();
    z.write(buf);
    const flushKind =
      this.#encoding === 'gzip' ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.BROTLI_OPERATION_FLUSH;
    await new Promise<void>((resolve) => {
      z.flush(flushKind, () => {
        resolve();
      });
    });
    this.#compressMs += performance.now() - t;
  }

  async endStream(): Promise<void> {
    const z = this.#z;
    // 'end' of the readable side: the trailer has been emitted and written, not just accepted.
    if (z !== undefined) {
      await new Promise<void>((resolve) => {
        z.once('end', resolve);
        z.end();
      });
    }
    this.#measureDrain();
    this.#res.end();
  }
}
