/**
 * Servers the benchmark starts itself: each in its own process group, its output in a log
 * file, ready once its health URL answers 200. Every one started is stopped at the end,
 * and killed on the way out even when the benchmark fails or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson } from './client.ts';

export interface ServerSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly port: number;
  /** Answers 200 once the model is loaded. */
  readonly healthPath: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs: number;
}

export interface StartedServer {
  readonly name: string;
  readonly baseUrl: string;
  readonly commandLine: string;
  readonly logFile: string;
  readonly startupSec: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Kills every server still running; safe to call from an 'exit' handler. */
export function killAll(): void {
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

export const quote = (a: string): string =>
  /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  killGroup(child, 'SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited, timer])) === 'timeout') {
    killGroup(child, 'SIGKILL');
    await exited;
  }
  running.delete(child);
}

async function waitHealthy(spec: ServerSpec, child: ChildProcess, logFile: string): Promise<void> {
  const url = `http://127.0.0.1:${spec.port}${spec.healthPath}`;
  const until = Date.now() + spec.readyTimeoutMs;
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = `exited (${String(code ?? signal)})`));
  for (;;) {
    if (exit !== undefined) throw new Error(`${spec.name} ${exit} before it was ready; see ${logFile}`);
    try {
      await getJson(url, 2000);
      return;
    } catch {
      if (Date.now() > until)
        throw new Error(`${spec.name} not healthy at ${url} after ${spec.readyTimeoutMs} ms; see ${logFile}`);
      await sleep(250);
    }
  }
}

/** Starts a server and waits for its health URL; kills it when it does not come up. */
export async function startServer(spec: ServerSpec, logDir: string): Promise<StartedServer> {
  const logFile = join(logDir, `${spec.name}.log`);
  const log = createWriteStream(logFile);
  const commandLine = [spec.command, ...spec.args].map(quote).join(' ');
  log.write(`$ ${commandLine}\n`);
  const t0 = Date.now();
  const child = spawn(spec.command, spec.args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...spec.env },
  });
  running.add(child);
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  child.once('error', (err) => log.write(`spawn error: ${err.message}\n`));
  const stop = async (): Promise<void> => {
    await stopChild(child, 5000);
    log.end();
  };
  try {
    await waitHealthy(spec, child, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name: spec.name,
    baseUrl: `http://127.0.0.1:${spec.port}`,
    commandLine,
    logFile,
    startupSec: (Date.now() - t0) / 1000,
    stop,
  };
}
