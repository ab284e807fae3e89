/**
 * Resumable, verified HTTP downloads into the cache. Redirects are followed by hand so the
 * first response's headers (the Hub's X-Repo-Commit, X-Linked-Etag) stay visible and
 * credentials are never sent to another origin (the Hub's LFS files live on a CDN).
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AutoGLMError, asStorageError } from '../../errors.ts';
import { ensureDir, fileSize, hashFile } from './cache.ts';
import { withFileLock } from './lock.ts';
import type { TransferOptions } from './types.ts';

const MAX_REDIRECTS = 10;
const MAX_ATTEMPTS = 4;
const RETRY_DELAY_MS = 300;
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie']);

/** Errors worth another attempt: the connection failed or dropped, or the server had a bad moment. */
const transient = new WeakSet<object>();

function describeCause(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? cause : err instanceof Error ? err : undefined;
  const code = (inner as NodeJS.ErrnoException | undefined)?.code;
  const text = inner?.message ?? String(err);
  return code !== undefined && !text.includes(code) ? `${code} ${text}` : text;
}

export function networkError(url: string, err: unknown): AutoGLMError {
  const error = new AutoGLMError('download_failed', `could not download ${url}: ${describeCause(err)}`, {
    hint: 'check the network path to that host (proxy, DNS, firewall), then run the command again',
    cause: err,
  });
  transient.add(error);
  return error;
}

export interface HttpFailure {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
}

/** Turns a failed status into the error the user should see; the caller knows the service. */
export type DescribeFailure = (failure: HttpFailure) => AutoGLMError;

export const describeHttpFailure: DescribeFailure = ({ url, status }) => {
  if (status === 404 || status === 410) {
    return new AutoGLMError('model_not_found', `${url} does not exist (HTTP ${status})`);
  }
  const error = new AutoGLMError('download_failed', `GET ${url} failed with HTTP ${status}`);
  if (status >= 500 || status === 429 || status === 408) transient.add(error);
  return error;
};

export function isTransient(err: unknown): boolean {
  return typeof err === 'object' && err !== null && transient.has(err);
}

export interface Fetched {
  readonly response: Response;
  /** Headers of the first response, before any redirect. */
  readonly first: Headers;
}

async function fetchOnce(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { headers, redirect: 'manual', ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason;
    throw networkError(url.href, err);
  }
}

/** GET `url`, following redirects; credentials go only to the first URL's origin. */
export async function fetchFollowing(
  url: string,
  headers: Readonly<Record<string, string>>,
  signal?: AbortSignal,
): Promise<Fetched> {
  let current = new URL(url);
  const origin = current.origin;
  let first: Headers | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const sent = Object.fromEntries(
      Object.entries(headers).filter(
        ([k]) => current.origin === origin || !CREDENTIAL_HEADERS.has(k.toLowerCase()),
      ),
    );
    const response = await fetchOnce(current, sent, signal);
    first ??= response.headers;
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || location === null) return { response, first };
    await response.body?.cancel();
    current = new URL(location, current);
  }
  throw new AutoGLMError('download_failed', `${url} redirects more than ${MAX_REDIRECTS} times`);
}

export interface DownloadSpec {
  readonly url: string;
  /** Final path; the bytes go to `<dest>.part` first. */
  readonly dest: string;
  /** Name shown in progress and errors. */
  readonly label: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly sha256?: string;
  readonly size?: number;
  /** Take the sha256 from X-Linked-Etag / ETag when it is 64 hex digits (the Hub's LFS files). */
  readonly etagIsSha256?: boolean;
  readonly describeFailure?: DescribeFailure;
}

interface Transfer {
  readonly sha256: string;
  readonly size: number;
  /** Bytes that were already in the `.part` file when this attempt began. */
  readonly resumedFrom: number;
  readonly expectedSha256: string | undefined;
}

function etagSha256(headers: Headers): string | undefined {
  const raw = headers.get('x-linked-etag') ?? headers.get('etag') ?? '';
  const value = raw.replace(/^W\//, '').replaceAll('"', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

function contentRange(headers: Headers): { start: number | undefined; total: number | undefined } {
  const match = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(headers.get('content-range') ?? '');
  const start = match?.[1];
  const total = match?.[2];
  return {
    start: start === undefined ? undefined : Number(start),
    total: total === undefined || total === '*' ? undefined : Number(total),
  };
}

/** Where this response's body starts in the file: 'complete' when the part already holds it all, 'restart' when it must go. */
function startOffset(spec: DownloadSpec, response: Response, have: number): number | 'complete' | 'restart' {
  if (response.status === 200) return 0;
  const range = contentRange(response.headers);
  if (response.status === 206 && range.start === have) return have;
  if (response.status === 416 && have > 0 && range.total === have) return 'complete';
  // A range we did not ask for, or the part outgrew the file.
  if (response.status === 206 || response.status === 416) return 'restart';
  throw (spec.describeFailure ?? describeHttpFailure)({
    url: spec.url,
    status: response.status,
    headers: response.headers,
  });
}

async function writeBody(
  spec: DownloadSpec,
  part: string,
  response: Response,
  from: { start: number; hash: Hash; total: number | undefined },
  opts: TransferOptions,
): Promise<number> {
  let fh;
  try {
    fh = await open(part, from.start === 0 ? 'w' : 'a');
  } catch (err) {
    throw asStorageError(err, part);
  }
  let done = from.start;
  const body = response.body ?? new ReadableStream<Uint8Array>();
  const reader = body[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next: IteratorResult<Uint8Array> = await reader.next().catch((err: unknown) => {
        throw opts.signal?.aborted === true ? opts.signal.reason : networkError(spec.url, err);
      });
      if (next.done === true) {
        finished = true;
        break;
      }
      from.hash.update(next.value);
      await fh.writeFile(next.value).catch((err: unknown) => {
        throw asStorageError(err, part);
      });
      done += next.value.length;
      opts.onProgress?.({ phase: 'download', file: spec.label, done, total: from.total });
    }
    await fh.sync();
  } finally {
    if (!finished) await reader.return?.().catch(() => undefined);
    await fh.close();
  }
  return done;
}

/** The `.part` file's bytes so far, hashed, ready to be extended. */
async function resumePoint(
  spec: DownloadSpec,
  part: string,
  opts: TransferOptions,
): Promise<{ have: number; hash: Hash }> {
  let have = (await fileSize(part)) ?? 0;
  if (spec.size !== undefined && have > spec.size) {
    await rm(part, { force: true });
    have = 0;
  }
  const hash = createHash('sha256');
  if (have > 0) await hashFile(part, hash, spec.label, opts);
  return { have, hash };
}

interface Opened {
  readonly response: Response;
  readonly start: number | 'complete';
  readonly expectedSha256: string | undefined;
}

async function openResponse(
  spec: DownloadSpec,
  part: string,
  have: number,
  opts: TransferOptions,
): Promise<Opened> {
  // identity: byte ranges and sizes then mean the file's own bytes, not a compressed form of them.
  const headers = {
    ...spec.headers,
    'accept-encoding': 'identity',
    ...(have > 0 ? { range: `bytes=${have}-` } : {}),
  };
  const { response, first } = await fetchFollowing(spec.url, headers, opts.signal);
  const expectedSha256 = spec.sha256 ?? (spec.etagIsSha256 === true ? etagSha256(first) : undefined);
  let start;
  try {
    start = startOffset(spec, response, have);
  } finally {
    if (start === undefined || typeof start === 'string') {
      await response.body?.cancel().catch(() => undefined);
    }
  }
  if (start === 'restart') {
    await rm(part, { force: true });
    const error = new AutoGLMError(
      'download_failed',
      `${spec.url} answered a resumed request with an unusable range`,
    );
    transient.add(error);
    throw error;
  }
  return { response, start, expectedSha256 };
}

async function transferOnce(spec: DownloadSpec, part: string, opts: TransferOptions): Promise<Transfer> {
  const { have, hash } = await resumePoint(spec, part, opts);
  if (have > 0 && have === spec.size) {
    return { sha256: hash.digest('hex'), size: have, resumedFrom: have, expectedSha256: spec.sha256 };
  }
  const { response, start, expectedSha256 } = await openResponse(spec, part, have, opts);
  if (start === 'complete') {
    return { sha256: hash.digest('hex'), size: have, resumedFrom: have, expectedSha256 };
  }
  const fresh = start === 0 && have > 0 ? createHash('sha256') : hash;
  const length = Number(response.headers.get('content-length') ?? NaN);
  const total =
    spec.size ?? contentRange(response.headers).total ?? (Number.isNaN(length) ? undefined : start + length);
  const size = await writeBody(spec, part, response, { start, hash: fresh, total }, opts);
  return { sha256: fresh.digest('hex'), size, resumedFrom: start, expectedSha256 };
}

function verificationError(spec: DownloadSpec, got: Transfer): AutoGLMError | undefined {
  if (spec.size !== undefined && got.size !== spec.size) {
    return new AutoGLMError(
      'checksum_mismatch',
      `${spec.label}: got ${got.size} bytes, expected ${spec.size}`,
    );
  }
  if (got.expectedSha256 !== undefined && got.sha256 !== got.expectedSha256.toLowerCase()) {
    return new AutoGLMError(
      'checksum_mismatch',
      `${spec.label}: sha256 ${got.sha256} does not match the expected ${got.expectedSha256}`,
      {
        hint: `the file was deleted; if the source changed on purpose, update the expected checksum (${spec.url})`,
      },
    );
  }
  return undefined;
}

/** One verified download with retries; resumes from `.part` after a dropped connection. */
async function downloadLocked(spec: DownloadSpec, part: string, opts: TransferOptions): Promise<Transfer> {
  let restarted = false;
  for (let attempt = 1; ; attempt++) {
    try {
      const got = await transferOnce(spec, part, opts);
      const problem = verificationError(spec, got);
      if (problem === undefined) return got;
      await rm(part, { force: true });
      // A resumed file may have changed upstream under the old part: one clean try before blaming it.
      if (got.resumedFrom === 0 || restarted) throw problem;
      restarted = true;
    } catch (err) {
      if (!isTransient(err) || attempt >= MAX_ATTEMPTS) throw err;
      opts.onMessage?.(`${spec.label}: ${(err as Error).message}; retrying (${attempt}/${MAX_ATTEMPTS - 1})`);
      await delay(RETRY_DELAY_MS * attempt, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }
}

/**
 * Downloads `spec.url` to `spec.dest` unless it is already there. Returns the file's sha256
 * when this call wrote it, undefined when it found it in place (another process's work).
 * On failure the `.part` file stays for the next attempt to resume, unless it was proven bad.
 */
export async function downloadFile(
  spec: DownloadSpec,
  opts: TransferOptions = {},
): Promise<string | undefined> {
  await ensureDir(dirname(spec.dest));
  const part = `${spec.dest}.part`;
  return withFileLock(
    spec.dest,
    async () => {
      const present = await fileSize(spec.dest);
      if (present !== undefined && (spec.size === undefined || present === spec.size)) return undefined;
      const got = await downloadLocked(spec, part, opts);
      try {
        await rename(part, spec.dest);
      } catch (err) {
        throw asStorageError(err, spec.dest);
      }
      return got.sha256;
    },
    {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onWait: () => opts.onMessage?.(`${spec.label}: waiting for another process that is downloading it`),
    },
  );
}
