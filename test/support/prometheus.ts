/**
 * A real Prometheus on loopback for the dashboard tests: a temp config that scrapes the given
 * targets every second with static target labels, a temp TSDB, a free port. The binary comes
 * from scripts/setup-prometheus.sh (Debian's package).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../cluster/procs.ts';

const SETUP = fileURLToPath(new URL('../../scripts/setup-prometheus.sh', import.meta.url));

export interface ScrapeJob {
  readonly job: string;
  /** host:port */
  readonly target: string;
  /**
   * Instead of the one target: a JSON file of `[{targets, labels}]` that Prometheus re-reads
   * (file service discovery), for targets that come and go during a test.
   */
  readonly targetsFile?: string;
  /** Target labels, as a Kubernetes service discovery plus relabeling would set them. */
  readonly labels: Readonly<Record<string, string>>;
  /** Keep the scraped series' own labels where they clash with target labels. */
  readonly honorLabels?: boolean;
}

export interface QueryResponse {
  readonly status: 'success' | 'error';
  readonly error?: string;
  readonly data?: { readonly resultType: string; readonly result: readonly Sample[] };
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

export interface RunningPrometheus {
  readonly url: string;
  query(expr: string): Promise<QueryResponse>;
  /** Resolves once every target is up and has been scraped `scrapes` times since `since` (ms). */
  scrapedSince(since: number, scrapes: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Installs Prometheus if it is missing (scripts/setup-prometheus.sh); resolves with what it printed. */
export async function setupPrometheus(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [SETUP], { timeout: 300_000 });
  return stdout.trim();
}

interface Target {
  readonly health: string;
  readonly lastScrape: string;
  readonly lastError: string;
  readonly scrapeUrl: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startPrometheus(jobs: readonly ScrapeJob[]): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'autoglm-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: jobs.map((j) => ({
      job_name: j.job,
      honor_labels: j.honorLabels ?? false,
      ...(j.targetsFile === undefined
        ? { static_configs: [{ targets: [j.target], labels: j.labels }] }
        : { file_sd_configs: [{ files: [j.targetsFile], refresh_interval: '1s' }] }),
    })),
  };
  await writeFile(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}`;
  const log = join(dir, 'prometheus.log');
  const proc = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${String(port)}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let spawnError: Error | undefined;
  proc.once('error', (err) => {
    spawnError = err; // not on PATH: scripts/setup-prometheus.sh installs it
  });
  const out = createWriteStream(log);
  proc.stdout.pipe(out);
  proc.stderr.pipe(out);
  const exited = once(proc, 'exit').catch(() => undefined); // rejects on a spawn error
  const logTail = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
  const stop = async () => {
    await stopProcess(proc, exited);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until('Prometheus ready', 30_000, async () => {
      if (spawnError !== undefined) throw spawnError;
      if (proc.exitCode !== null)
        throw new Error(`prometheus exited ${String(proc.exitCode)}:\n${await logTail()}`);
      const r = await fetch(`${url}/-/ready`).catch(() => undefined);
      return r?.ok === true;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const targets = async (): Promise<Target[]> => {
    const r = (await (await fetch(`${url}/api/v1/targets?state=active`)).json()) as {
      data: { activeTargets: Target[] };
    };
    return r.data.activeTargets;
  };
  return {
    url,
    query: async (expr) => {
      const r = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
      return (await r.json()) as QueryResponse;
    },
    scrapedSince: async (since, scrapes, timeoutMs = 30_000) => {
      let last: Target[] = [];
      await until(
        () => `${String(scrapes)} scrapes of every target: ${JSON.stringify(last)}`,
        timeoutMs,
        async () => {
          last = await targets();
          return (
            last.length === jobs.length &&
            last.every((t) => t.health === 'up' && Date.parse(t.lastScrape) >= since + (scrapes - 1) * 1000)
          );
        },
      );
    },
    stop,
  };
}

async function until(what: string | (() => string), timeoutMs: number, ok: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(200);
  }
}

/** SIGTERM, then SIGKILL after 10 s. */
async function stopProcess(proc: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
