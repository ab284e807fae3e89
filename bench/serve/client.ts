/**
 * One streamed OpenAI request, timed from the client's side: when it was sent, when each
 * chunk that carries text arrived, and when the stream ended. Plain node:http, so the
 * client adds as little as it can to what it measures.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { SseReader } from './sse.ts';

export type Api = 'completions' | 'chat';

/** A server under test, as the load generator talks to it. */
export interface Endpoint {
  readonly name: string;
  readonly baseUrl: string;
  readonly model: string;
  readonly api: Api;
  /** Fields added to every request: how this server is told to ignore EOS. */
  readonly extraBody: Readonly<Record<string, unknown>>;
}

export interface RequestOutcome {
  readonly ok: boolean;
  readonly error?: string;
  /** When it was sent, ms after the run began. */
  readonly startMs: number;
  readonly ttftMs: number | null;
  readonly e2eMs: number;
  /** usage.completion_tokens when the server sends usage, else the chunks that carried text. */
  readonly outputTokens: number;
  readonly promptTokens: number | null;
  /** Every gap between consecutive chunks that carried text. */
  readonly itlMs: readonly number[];
  /** (e2e − ttft) / (outputTokens − 1); null for fewer than 2 tokens. */
  readonly tpotMs: number | null;
}

/**
 * A fresh connection per request: a kept-alive socket that the server closes while idle
 * (llama-server does) fails the next request with "socket hang up". On loopback a connect
 * costs well under a millisecond.
 */
export const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

export function requestBody(ep: Endpoint, prompt: string, maxTokens: number): Record<string, unknown> {
  const input = ep.api === 'chat' ? { messages: [{ role: 'user', content: prompt }] } : { prompt };
  return {
    model: ep.model,
    ...input,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ...ep.extraBody,
  };
}

interface Choice {
  readonly text?: unknown;
  readonly delta?: { readonly content?: unknown };
}
interface StreamChunk {
  readonly choices?: readonly Choice[];
  readonly usage?: { readonly prompt_tokens?: unknown; readonly completion_tokens?: unknown } | null;
  readonly error?: { readonly message?: unknown };
}

const asCount = (x: unknown): number | undefined =>
  typeof x === 'number' && Number.isInteger(x) && x >= 0 ? x : undefined;

function chunkText(chunk: StreamChunk): string {
  let text = '';
  for (const c of chunk.choices ?? []) {
    const t = c.text ?? c.delta?.content;
    if (typeof t === 'string') text += t;
  }
  return text;
}

/** What the events of one stream said, in arrival order. */
export class StreamRecord {
  readonly textTimes: number[] = [];
  promptTokens: number | undefined;
  completionTokens: number | undefined;
  error: string | undefined;
  done = false;

  onEvent(data: string, now: number): void {
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    let chunk: StreamChunk;
    try {
      chunk = JSON.parse(data) as StreamChunk;
    } catch {
      this.error ??= `not JSON: ${data.slice(0, 120)}`;
      return;
    }
    if (chunk.error !== undefined)
      this.error ??= `stream error: ${JSON.stringify(chunk.error).slice(0, 200)}`;
    if (chunkText(chunk) !== '') this.textTimes.push(now);
    if (chunk.usage) {
      this.promptTokens = asCount(chunk.usage.prompt_tokens) ?? this.promptTokens;
      this.completionTokens = asCount(chunk.usage.completion_tokens) ?? this.completionTokens;
    }
  }

  outcome(sentAt: number, endedAt: number, runStart: number, failure?: string): RequestOutcome {
    const first = this.textTimes[0];
    const ttft = first === undefined ? null : first - sentAt;
    const e2e = endedAt - sentAt;
    const n = this.completionTokens ?? this.textTimes.length;
    const itl = this.textTimes.slice(1).map((t, i) => t - (this.textTimes[i] ?? t));
    const error = failure ?? this.error ?? (this.done ? undefined : 'stream ended without [DONE]');
    return {
      ok: error === undefined,
      ...(error === undefined ? {} : { error }),
      startMs: sentAt - runStart,
      ttftMs: ttft,
      e2eMs: e2e,
      outputTokens: n,
      promptTokens: this.promptTokens ?? null,
      itlMs: itl,
      tpotMs: ttft !== null && n > 1 ? (e2e - ttft) / (n - 1) : null,
    };
  }
}

/** Sends one streamed request and resolves when it ends, fails or is aborted; never rejects. */
export function streamRequest(
  ep: Endpoint,
  prompt: string,
  maxTokens: number,
  runStart: number,
  signal: AbortSignal,
): Promise<RequestOutcome> {
  const path = ep.api === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  const payload = JSON.stringify(requestBody(ep, prompt, maxTokens));
  const record = new StreamRecord();
  const reader = new SseReader();
  return new Promise((resolve) => {
    const sentAt = performance.now();
    let settled = false;
    const finish = (failure?: string): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve(record.outcome(sentAt, performance.now(), runStart, failure));
    };
    const onAbort = (): void => {
      req.destroy();
      finish('aborted at the time limit');
    };
    const req = http.request(new URL(path, ep.baseUrl), {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let errorBody = '';
      res.on('data', (buf: Buffer) => {
        const now = performance.now();
        if (status !== 200) errorBody += buf.toString('utf8');
        else for (const data of reader.push(buf)) record.onEvent(data, now);
      });
      res.on('end', () => {
        for (const data of reader.end()) record.onEvent(data, performance.now());
        finish(status === 200 ? undefined : `HTTP ${status}: ${errorBody.slice(0, 200)}`);
      });
      res.on('error', (err) => {
        finish(err.message);
      });
    });
    req.on('error', (err) => {
      finish(err.message);
    });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    req.end(payload);
  });
}

/** GET a JSON document; rejects on a status other than 200. */
export function getJson(url: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: HTTP ${String(res.statusCode)}`));
        else {
          try {
            resolve(JSON.parse(body) as unknown);
          } catch {
            resolve(body);
          }
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** The first model id that GET /v1/models lists, or `fallback`. */
export async function servedModel(baseUrl: string, fallback: string): Promise<string> {
  try {
    const doc = (await getJson(new URL('/v1/models', baseUrl).href)) as { data?: { id?: unknown }[] };
    const id = doc.data?.[0]?.id;
    return typeof id === 'string' && id !== '' ? id : fallback;
  } catch {
    return fallback;
  }
}
