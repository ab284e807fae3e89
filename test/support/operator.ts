/**
 * The operator as users run it, `autoglm operator`, in a child process against the test
 * control plane; plus helpers to read objects with the built kubectl.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_VERSION, KIND } from '../../crds/deployment.ts';
import { clusterUp, kubectl, type ClusterInfo } from '../cluster/cluster.ts';
import { freePort, tail } from '../cluster/procs.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CRD_FILE = join(ROOT, 'crds/autoglmdeployment.yaml');

export interface RunningOperator {
  readonly proc: ChildProcess;
  readonly healthUrl: string;
  readonly log: string;
  metrics(): Promise<string>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, leaving its lease to expire. */
  kill(): Promise<void>;
}

export async function startOperator(
  cluster: ClusterInfo,
  opts: { leaseNamespace: string; namespace?: string; args?: string[] },
): Promise<RunningOperator> {
  const port = await freePort();
  const log = join(await mkdtemp(join(tmpdir(), 'autoglm-operator-')), 'operator.log');
  const out = createWriteStream(log);
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/autoglm.js'),
      'operator',
      `--kubeconfig=${cluster.kubeconfig}`,
      `--health-addr=127.0.0.1:${String(port)}`,
      `--leader-election-namespace=${opts.leaseNamespace}`,
      '--server-image=registry.test/autoglm-server:test',
      ...(opts.namespace === undefined ? [] : [`--namespace=${opts.namespace}`]),
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout.pipe(out);
  proc.stderr.pipe(out);
  const healthUrl = `http://127.0.0.1:${String(port)}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`operator exited ${String(proc.exitCode)}:\n${tail(log)}`);
    const ok = await fetch(`${healthUrl}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`operator did not come up:\n${tail(log)}`);
    await sleep(200);
  }
  const exited = once(proc, 'exit');
  return {
    proc,
    healthUrl,
    log,
    metrics: async () => (await fetch(`${healthUrl}/metrics`)).text(),
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
    kill: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `check` returns a value other than undefined; the error says what was last seen. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(250);
  }
}

export interface Cluster {
  readonly info: ClusterInfo;
  kubectl(args: readonly string[], input?: string): Promise<string>;
  getJson<T = Record<string, unknown>>(args: readonly string[]): Promise<T>;
  apply(yaml: string): Promise<string>;
}

/** The shared control plane with the CRD installed and established. */
export async function clusterWithCrd(): Promise<Cluster> {
  const info = await clusterUp();
  const k = (args: readonly string[], input?: string) => kubectl(info.kubeconfig, args, input);
  await k(['apply', '--server-side', '--force-conflicts', '-f', CRD_FILE]);
  await k([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/autoglmdeployments.serving.autoglm.io',
  ]);
  return {
    info,
    kubectl: k,
    getJson: async <T>(args: readonly string[]) => JSON.parse(await k([...args, '-o', 'json'])) as T,
    apply: (yaml: string) => k(['apply', '-f', '-'], yaml),
  };
}

export async function freshNamespace(c: Cluster, prefix: string): Promise<string> {
  const ns = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await c.kubectl(['create', 'namespace', ns]);
  return ns;
}

/** An AutoGLMDeployment manifest: `spec` is the YAML under `spec:`, indented two spaces. */
export function agdManifest(namespace: string, name: string, spec: string): string {
  return `apiVersion: ${API_VERSION}\nkind: ${KIND}\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${spec}`;
}
