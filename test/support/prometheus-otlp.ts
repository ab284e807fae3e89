/**
 * A real Prometheus 3 on loopback with its OTLP receiver on, for the OTLP metrics path: a temp
 * config with no scrape jobs, a temp TSDB, a free port. The binary is built from the Go module
 * by scripts/setup-prometheus-otlp.sh (Debian's Prometheus 2.42 has no OTLP receiver).
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../cluster/procs.ts';

const SETUP = fileURLToPath(new URL('../../scripts/setup-prometheus-otlp.sh', import.meta.url));

/** Where scripts/setup-prometheus-otlp.sh puts the binary. */
export const PROMETHEUS_OTLP = join(
  process.env['AUTOGLM_HOME'] ?? join(homedir(), '.cache', 'autoglm'),
  'tools',
  'bin',
  'prometheus-otlp',
);

/** A cold build on 2 cores takes minutes; the script is idempotent and fast once built. */
const BUILD_TIMEOUT_MS = 40 * 60_000;

/** Builds the binary if it is missing or of another version; resolves with what the script printed. */
export async function setupPrometheusOtlp(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [SETUP], {
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.trim();
}

export interface OtlpPrometheus {
  readonly url: string;
  /** The OTLP/HTTP metrics endpoint, for OTEL_EXPORTER_OTLP_METRICS_ENDPOINT. */
  readonly otlpMetricsEndpoint: string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Starts it with `--web.enable-otlp-receiver` and the default translation, written out:
 * UnderscoreEscapingWithSuffixes (dots to underscores, unit and `_total` suffixes).
 */
export async function startPrometheusOtlp(): Promise<OtlpPrometheus> {
  await access(PROMETHEUS_OTLP);
  const dir = await mkdtemp(join(tmpdir(), 'autoglm-prometheus-otlp-'));
  const config = {
    global: { evaluation_interval: '1s' },
    otlp: { translation_strategy: 'UnderscoreEscapingWithSuffixes' },
  };
  await writeFile(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}`;
  const log = join(dir, 'prometheus.log');
  const proc = spawn(
    PROMETHEUS_OTLP,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${String(port)}`,
      '--web.enable-otlp-receiver',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = createWriteStream(log);
  proc.stdout.pipe(out);
  proc.stderr.pipe(out);
  const exited = once(proc, 'exit').catch(() => undefined);
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if ((await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
      await stop();
      throw new Error(`prometheus-otlp did not become ready (exit ${String(proc.exitCode)}):\n${tail}`);
    }
    await sleep(200);
  }
  return { url, otlpMetricsEndpoint: `${url}/api/v1/otlp/v1/metrics`, stop };
}
