/**
 * Writing responses: JSON bodies and SSE streams, compressed as the live tuning says and as
 * the client's Accept-Encoding allows, with the measurements the tuning loop needs: bytes
 * before and after compression, time spent compressing, and time to drain to the client.
 *
 * Waits on the path go to the node's PathMeter as they happen, chunk by chunk: a response to a
 * client whose path has just slowed may take many seconds to finish, and the loop should not have
 * to wait for it to see the path.
 */
import type { Response } from 'express';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';
import type { PathMeter } from './path-meter.ts';

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
  /** Time the body waited on the client's path, over the whole response (see PathMeter). */
  readonly drainSeconds: number;
}

export interface WriterHooks {
  /** The response's measurements, once the client has taken the whole body. */
  done(s: TransportSample): void;
  /** The node's meter of its clients' paths, which times every wait for the socket. */
  path: PathMeter;
  /** Offered every whole JSON body once it is sent, to measure other settings on. */
  probe?: { offer(body: Buffer): void };
}

/** JSON bodies are written in chunks of this size, so their draining can be reported as it goes. */
const CHUNK_BYTES = 16 << 10;

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

/** A whole body compressed at once, as JSON responses are and as the probe measures them. */
export function compressBody(raw: Buffer, encoding: 'gzip' | 'br', level: number): Buffer {
  return encoding === 'gzip'
    ? zlib.gzipSync(raw, { level })
    : zlib.brotliCompressSync(raw, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: level,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.byteLength,
        },
      });
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
  readonly #hooks: WriterHooks;
  #z: zlib.Gzip | zlib.BrotliCompress | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  #compressMs = 0;
  #drainS = 0;

  constructor(res: Response, acceptEncoding: string | undefined, c: CompressionSetting, hooks: WriterHooks) {
    this.#res = res;
    this.#encoding = negotiate(acceptEncoding, c);
    this.#level = c.level;
    this.#hooks = hooks;
  }

  /** Writes `buf`, waiting while the socket is full; false once the response is closed. */
  async #write(buf: Buffer): Promise<boolean> {
    if (this.#res.write(buf)) return true;
    this.#drainS += await this.#hooks.path.wait(this.#res, 'drain');
    return !this.#res.destroyed;
  }

  /** Ends the response; its measurements go out once the kernel has the whole body. */
  async #end(): Promise<void> {
    this.#res.end();
    if (!this.#res.writableFinished) this.#drainS += await this.#hooks.path.wait(this.#res, 'finish');
    if (this.#res.destroyed && !this.#res.writableFinished) return;
    this.#hooks.done({
      encoding: this.#encoding,
      level: this.#encoding === 'identity' ? 0 : this.#level,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      compressSeconds: this.#compressMs / 1000,
      drainSeconds: this.#drainS,
    });
  }

  /** A whole JSON body; resolves once it is all handed to the socket (or the client is gone). */
  async json(status: number, body: unknown): Promise<void> {
    const raw = Buffer.from(JSON.stringify(body));
    this.#bytesIn = raw.byteLength;
    let out: Buffer = raw;
    if (this.#encoding !== 'identity') {
      const t = performance.now();
      out = compressBody(raw, this.#encoding, this.#level);
      this.#compressMs += performance.now() - t;
      this.#res.setHeader('Content-Encoding', this.#encoding);
    }
    this.#res.setHeader('Vary', 'Accept-Encoding');
    this.#res.setHeader('Content-Length', String(out.byteLength));
    this.#bytesOut = out.byteLength;
    this.#res.status(status).type('application/json');
    for (let at = 0; at < out.byteLength; at += CHUNK_BYTES) {
      if (!(await this.#write(out.subarray(at, at + CHUNK_BYTES)))) return;
    }
    void this.#end();
    this.#hooks.probe?.offer(raw);
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
      await this.#write(buf);
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
    void this.#end();
  }
}
