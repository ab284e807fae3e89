/**
 * The servers under test and how each is started and asked to ignore EOS:
 *   ours              node bin/autoglm.js serve; `ignore_eos: true`
 *   llama-server      llama.cpp's own server, -np slots with continuous batching; `ignore_eos: true`
 *   llama-cpp-python  python -m llama_cpp.server; it has no ignore_eos, so `min_tokens` =
 *                     max_tokens; it runs one request at a time (an asyncio lock around one
 *                     llama context) and by default a new request interrupts the one
 *                     streaming, so it starts with --interrupt_requests False.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autoglmHome } from '../../server/src/model/pull/index.ts';
import type { Settings, TargetName } from './args.ts';
import type { ServerSpec } from './servers.ts';

export type ServerTarget = Exclude<TargetName, 'transformers.js'>;

export interface LlamaCppInstall {
  readonly venv: string;
  readonly python: string;
  readonly llamaServer: string | undefined;
  readonly versions: Readonly<Record<string, unknown>>;
}

export function llamaCppInstall(s: Settings): LlamaCppInstall | undefined {
  const venv = s.llamacppVenv ?? join(autoglmHome(), 'llamacpp-venv');
  const python = join(venv, 'bin', 'python');
  if (!existsSync(python)) return undefined;
  const server = join(venv, 'bin', 'llama-server');
  let versions: Record<string, unknown>;
  try {
    versions = JSON.parse(readFileSync(join(venv, 'versions.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // Written by scripts/setup-llamacpp.sh at its end; ask the package itself.
    versions = { llamaCppPython: pythonPackageVersion(python) };
  }
  return { venv, python, llamaServer: existsSync(server) ? server : undefined, versions };
}

function pythonPackageVersion(python: string): string {
  try {
    const code = 'import importlib.metadata as m; print(m.version("llama-cpp-python"))';
    return execFileSync(python, ['-c', code], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** What `llama-server --version` prints (on stderr), e.g. "version: 0.5.0-dev (build 1, commit 0c1e570)". */
export function llamaServerVersion(binary: string): string {
  const res = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const out = `${res.stdout}${res.stderr}`.trim();
  const line = out.split('\n').find((l) => l.startsWith('version:'));
  return line ?? (out.split('\n').slice(-2).join('; ') || (res.error?.message ?? 'unknown'));
}

/** Context per llama-server slot: the prompt, the output, and room for a chat template. */
export const slotContext = (s: Settings): number => Math.ceil((s.promptTokens + s.maxTokens + 64) / 64) * 64;

export interface ServerPlan {
  readonly spec: ServerSpec;
  readonly extraBody: Readonly<Record<string, unknown>>;
}

export function oursPlan(s: Settings, modelDir: string, port: number): ServerPlan {
  return {
    spec: {
      name: 'ours',
      command: process.execPath,
      args: [
        fileURLToPath(new URL('../../bin/autoglm.js', import.meta.url)),
        'serve',
        '--model',
        modelDir,
        '--port',
        String(port),
      ],
      port,
      healthPath: '/health',
      readyTimeoutMs: 180_000,
    },
    extraBody: extraBodyFor('ours', s),
  };
}

export function llamaServerPlan(s: Settings, binary: string, gguf: string, port: number): ServerPlan {
  const threads = String(s.threads);
  return {
    spec: {
      name: 'llama-server',
      command: binary,
      args: [
        ...['-m', gguf, '--host', '127.0.0.1', '--port', String(port)],
        ...['-np', String(s.slots), '-c', String(s.slots * slotContext(s)), '--cont-batching'],
        ...['-t', threads, '-tb', threads],
      ],
      port,
      healthPath: '/health',
      readyTimeoutMs: 120_000,
    },
    extraBody: extraBodyFor('llama-server', s),
  };
}

export function llamaCppPythonPlan(s: Settings, python: string, gguf: string, port: number): ServerPlan {
  const threads = String(s.threads);
  return {
    spec: {
      name: 'llama-cpp-python',
      command: python,
      args: [
        ...['-m', 'llama_cpp.server', '--model', gguf, '--host', '127.0.0.1', '--port', String(port)],
        ...['--n_ctx', String(slotContext(s)), '--n_threads', threads, '--n_threads_batch', threads],
        ...['--interrupt_requests', 'False'],
      ],
      port,
      healthPath: '/v1/models',
      readyTimeoutMs: 120_000,
    },
    extraBody: extraBodyFor('llama-cpp-python', s),
  };
}

/** The request fields that make a target produce exactly max_tokens tokens. */
export function extraBodyFor(target: ServerTarget, s: Settings): Readonly<Record<string, unknown>> {
  return target === 'llama-cpp-python' ? { min_tokens: s.maxTokens } : { ignore_eos: true };
}
