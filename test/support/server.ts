/** A real server on loopback over a seeded random model, for the HTTP suites. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before } from 'node:test';
import OpenAI from 'openai';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVING_PARAMS_DEFAULTS } from '../../crds/tuning.ts';
import { buildRandom } from '../../server/src/model/build/index.ts';
import {
  DEFAULT_SERVE,
  startServer,
  type RunningServer,
  type ServeOptions,
} from '../../server/src/http/server.ts';

export async function randomModel(
  profile: 'fast' | 'portable' = 'fast',
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'autoglm-server-'));
  const dir = join(root, 'model');
  await buildRandom('small', dir, { profile, precision: 'fp32' }, { seed: 5 });
  return { dir, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export async function serve(dir: string, overrides: Partial<ServeOptions> = {}): Promise<RunningServer> {
  const s = await startServer({
    ...DEFAULT_SERVE,
    model: dir,
    servedModelName: 'test-model',
    port: 0,
    threads: 2,
    maxModelLen: 256,
    kvCacheTokens: 16 * 256,
    params: { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 16 },
    version: 'test',
    ...overrides,
  });
  await s.ready;
  return s;
}

/** Reads one numeric sample from Prometheus text, e.g. value(text, 'autoglm_num_requests_running'). */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m?.[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

export interface ServedModel {
  readonly model: { dir: string; cleanup: () => Promise<void> };
  readonly server: RunningServer;
  readonly client: OpenAI;
}

/**
 * Registers before/after hooks that serve a fresh random model for the file's tests and
 * stop it afterwards; the returned object is filled in once `before` has run.
 */
export function useServedModel(): ServedModel {
  const state: { -readonly [K in keyof ServedModel]?: ServedModel[K] } = {};
  before(async () => {
    state.model = await randomModel('fast');
    state.server = await serve(state.model.dir);
    state.client = new OpenAI({ baseURL: `${state.server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await state.server?.close(1000);
    await state.model?.cleanup();
  });
  const get = <K extends keyof ServedModel>(k: K): ServedModel[K] => {
    const v = state[k];
    if (v === undefined) throw new Error(`${k} is only available inside tests`);
    return v;
  };
  return {
    get model() {
      return get('model');
    },
    get server() {
      return get('server');
    },
    get client() {
      return get('client');
    },
  };
}

export interface SpawnedServer {
  readonly proc: ChildProcess;
  readonly url: string;
  /** SIGTERM, SIGKILL after 10 s; resolves once the process is gone. */
  stop(): Promise<void>;
}

/**
 * `autoglm serve` as its own process, as a pod runs it: resolves once it prints that the model is
 * ready, rejects with its output if it exits first.
 */
export function spawnServer(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<SpawnedServer> {
  const proc = spawn(process.execPath, ['bin/autoglm.js', 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const exited = once(proc, 'exit');
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (d: string) => {
      out += d;
      const url = /listening on (http:\/\/[^\s]+) /.exec(out)?.[1];
      if (url !== undefined && out.includes('ready:')) resolve({ proc, url, stop });
    });
    proc.on('exit', () => {
      reject(new Error(`server exited:\n${out}`));
    });
  });
}
