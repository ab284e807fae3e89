/**
 * A lock file beside a cache entry, so two processes (two pods on one volume, or a test run
 * and a CLI) never write the same `.part` at once. The holder refreshes the lock's mtime;
 * a lock is stale when its process is gone (same host) or it has not been touched for a while.
 */
import { open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { asStorageError } from '../../errors.ts';

const REFRESH_MS = 5_000;
const STALE_MS = 30_000;
const POLL_MS = 200;

interface Owner {
  readonly pid: number;
  readonly host: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch {
    return false; // released meanwhile: the next try takes it
  }
  let owner: Partial<Owner> = {};
  try {
    owner = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<Owner>;
  } catch {
    // caught between create and write, or released: only the age can tell
  }
  if (owner.host === hostname() && typeof owner.pid === 'number') return !processAlive(owner.pid);
  return Date.now() - mtimeMs > STALE_MS;
}

async function tryAcquire(lockPath: string): Promise<boolean> {
  try {
    const fh = await open(lockPath, 'wx');
    try {
      const owner: Owner = { pid: process.pid, host: hostname() };
      await fh.writeFile(JSON.stringify(owner));
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw asStorageError(err, lockPath);
  }
}

/** Runs `fn` while holding `<target>.lock`, waiting for another holder to finish first. */
export async function withFileLock<T>(
  target: string,
  fn: () => Promise<T>,
  opts: { signal?: AbortSignal; onWait?: () => void } = {},
): Promise<T> {
  const lockPath = `${target}.lock`;
  let told = false;
  while (!(await tryAcquire(lockPath))) {
    if (await isStale(lockPath)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (!told) opts.onWait?.();
    told = true;
    await delay(POLL_MS, undefined, opts.signal ? { signal: opts.signal } : {});
  }
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, REFRESH_MS);
  refresh.unref();
  try {
    return await fn();
  } finally {
    clearInterval(refresh);
    await rm(lockPath, { force: true });
  }
}
