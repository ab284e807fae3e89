/**
 * Detached processes for the local control plane: each runs in its own process group with its
 * output in a log file, so it outlives the Node process that started it; stopping is SIGTERM to
 * the group, then SIGKILL after a deadline. Also free ports, polling and a lock file.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** How to (re)start one component: everything needed to run it again with the same flags. */
export interface ProcSpec {
  readonly bin: string;
  readonly args: readonly string[];
  /** Added to the caller's environment (less what would point a component at another cluster). */
  readonly env: Readonly<Record<string, string>>;
  readonly log: string;
}

export interface RunningProc extends ProcSpec {
  readonly pid: number;
}

export function log(msg: string): void {
  process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Whether `pid` is alive and still runs `bin` (a recycled pid runs something else). */
export function isRunning(proc: { pid: number; bin: string }): boolean {
  try {
    const cmdline = readFileSync(`/proc/${String(proc.pid)}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${String(proc.pid)}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return cmdline.split('\0')[0] === proc.bin && state !== 'Z';
  } catch {
    return false;
  }
}

/** Our environment, less what would point a component at another cluster or config. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== 'KUBECONFIG' && !k.startsWith('ETCD_') && !k.startsWith('KWOK_')) {
      env[k] = v;
    }
  }
  return env;
}

/** Starts `spec` in a new session (its own process group), appending its output to spec.log. */
export function startDetached(spec: ProcSpec): RunningProc {
  const fd = openSync(spec.log, 'a');
  try {
    writeFileSync(fd, `\n=== ${new Date().toISOString()} ${spec.bin} ${spec.args.join(' ')}\n`);
    const child = spawn(spec.bin, spec.args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...baseEnv(), ...spec.env },
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.bin}`);
    child.unref();
    return { ...spec, pid: child.pid };
  } finally {
    closeSync(fd);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if (errno(err) !== 'ESRCH') throw err;
  }
}

/**
 * SIGTERM to the process group, SIGKILL once `graceMs` has passed (at once for 0); resolves
 * when it has exited.
 */
export async function stopProc(proc: { pid: number; bin: string }, graceMs = 10_000): Promise<void> {
  if (!isRunning(proc)) return;
  signalGroup(proc.pid, graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
  const deadline = Date.now() + graceMs;
  while (isRunning(proc)) {
    if (Date.now() > deadline) {
      signalGroup(proc.pid, 'SIGKILL');
      await sleep(200);
      if (Date.now() > deadline + 5000) throw new Error(`${proc.bin} (pid ${String(proc.pid)}) did not exit`);
    }
    await sleep(100);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** Whether 127.0.0.1:`port` can be listened on now. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () => {
      resolve(true);
    });
  });
  if (free)
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
  return free;
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `check` until it returns true; on timeout throws with the tail of the given log. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; log?: string; proc?: { pid: number; bin: string } },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    const died = opts.proc !== undefined && !isRunning(opts.proc);
    if (died || Date.now() > deadline) {
      const why = died ? 'the process exited' : `timed out after ${String(opts.timeoutMs)} ms`;
      const logTail = opts.log === undefined ? '' : `\n--- ${opts.log}:\n${tail(opts.log)}`;
      throw new Error(`waiting for ${what}: ${why}${logTail}`);
    }
    await sleep(250);
  }
}

/**
 * Runs `fn` holding an exclusive lock file (its holder's pid inside), so that concurrent
 * clusterUp/clusterDown calls on one state dir take turns. A lock whose holder died is taken over.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 60 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    if (lockIsStale(path)) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${path}`);
    await sleep(500);
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function lockIsStale(path: string): boolean {
  try {
    const holder = Number(readFileSync(path, 'utf8'));
    if (Number.isInteger(holder) && holder > 0) {
      process.kill(holder, 0);
      return false;
    }
    // Empty: its holder is between creating and writing it, or died there.
    return Date.now() - statSync(path).mtimeMs > 10_000;
  } catch (err) {
    return errno(err) === 'ESRCH';
  }
}
