/**
 * A real Kubernetes control plane on loopback for the integration suites: etcd, kube-apiserver,
 * kube-controller-manager and kube-scheduler built from source (test/cluster/build.sh), and kwok
 * playing the kubelets of three fake GPU nodes, so Deployments get Pods that are scheduled,
 * become Running and Ready, and are garbage-collected.
 *
 * The processes are detached and outlive the caller; their pids, flags and ports are kept in
 * `<dir>/cluster.json`, so clusterUp() on a healthy cluster returns it as it is and
 * clusterDown() (or `npm run cluster:down`) stops it from any process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPONENTS, componentSpec, KWOK_NODE_ANNOTATION } from './components.ts';
import type { Component, Layout, Ports } from './components.ts';
import { run } from '../support/process.ts';
import { ensurePki, type ClientName, type Pki } from './pki.ts';
import {
  freePort,
  isRunning,
  log,
  portIsFree,
  startDetached,
  stopProc,
  waitUntil,
  withLock,
  type RunningProc,
} from './procs.ts';

export interface ClusterInfo {
  /** The admin kubeconfig (user kubernetes-admin, group system:masters). */
  readonly kubeconfig: string;
  /** The apiserver's URL, https://127.0.0.1:<port>. */
  readonly server: string;
  /** The state dir: pki, etcd data, logs, kubeconfigs, cluster.json. */
  readonly dir: string;
}

export interface ClusterOptions {
  /** The state dir; $AUTOGLM_CLUSTER_DIR, else `$AUTOGLM_HOME/cluster/state`. */
  readonly dir?: string;
}

/** The fake GPU nodes every fresh cluster gets. */
export const FAKE_NODES = [
  { name: 'gpu-node-a', zone: 'zone-a' },
  { name: 'gpu-node-b', zone: 'zone-b' },
  { name: 'gpu-node-c', zone: 'zone-c' },
] as const;
export const GPU_PRODUCT = 'NVIDIA-H100-80GB-HBM3';
export const GPUS_PER_NODE = 8;

interface State {
  readonly server: string;
  readonly ports: Ports;
  readonly procs: Partial<Record<Component, RunningProc>>;
}

const BUILD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'build.sh');

function autoglmHome(): string {
  return process.env['AUTOGLM_HOME'] ?? join(homedir(), '.cache', 'autoglm');
}

/** Where build.sh puts the binaries (AUTOGLM_CLUSTER_BIN overrides it there and here). */
export function binDir(): string {
  return process.env['AUTOGLM_CLUSTER_BIN'] ?? join(autoglmHome(), 'cluster', 'bin');
}

/** The kubectl built with the control plane (the same Kubernetes version). */
export function kubectlPath(): string {
  return join(binDir(), 'kubectl');
}

function stateDir(opts: ClusterOptions | undefined): string {
  return opts?.dir ?? process.env['AUTOGLM_CLUSTER_DIR'] ?? join(autoglmHome(), 'cluster', 'state');
}

function layout(dir: string, pki: Pki): Layout {
  return {
    dir,
    bin: binDir(),
    pki,
    etcdData: join(dir, 'etcd'),
    kubeconfig: (client) => (client === 'admin' ? join(dir, 'kubeconfig') : join(dir, 'kubeconfigs', client)),
    log: (c) => join(dir, 'logs', `${c}.log`),
    certDir: (c) => join(dir, 'certs', c),
    kwokWorkdir: join(dir, 'kwok'),
  };
}

const statePath = (dir: string): string => join(dir, 'cluster.json');

function readState(dir: string): State | undefined {
  try {
    return JSON.parse(readFileSync(statePath(dir), 'utf8')) as State;
  } catch {
    return undefined;
  }
}

function writeState(dir: string, state: State): void {
  writeFileSync(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);
}

const infoOf = (dir: string, server: string): ClusterInfo => ({
  kubeconfig: join(dir, 'kubeconfig'),
  server,
  dir,
});

function kubeconfigYaml(server: string, pki: Pki, client: ClientName): string {
  const b64 = (file: string): string => readFileSync(file).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: autoglm-test',
    '    cluster:',
    `      server: ${server}`,
    `      certificate-authority-data: ${b64(pki.caCert)}`,
    'users:',
    `  - name: ${client}`,
    '    user:',
    `      client-certificate-data: ${b64(pki.clientCert(client))}`,
    `      client-key-data: ${b64(pki.clientKey(client))}`,
    'contexts:',
    '  - name: autoglm-test',
    '    context:',
    '      cluster: autoglm-test',
    `      user: ${client}`,
    'current-context: autoglm-test',
    '',
  ].join('\n');
}

/** GET over https; `tls` holds the CA and client certificate, or nothing to skip verification. */
function get(url: string, tls?: Pki): Promise<{ status: number; body: string }> {
  const auth =
    tls === undefined
      ? { rejectUnauthorized: false }
      : {
          ca: readFileSync(tls.caCert),
          cert: readFileSync(tls.clientCert('admin')),
          key: readFileSync(tls.clientKey('admin')),
        };
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ...auth, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

async function apiserverReady(server: string, pki: Pki): Promise<boolean> {
  const res = await get(`${server}/readyz`, pki);
  return res.status === 200;
}

/** Runs the built kubectl against `kubeconfig`; resolves with stdout, rejects with stderr. */
export async function kubectl(kubeconfig: string, args: readonly string[], input?: string): Promise<string> {
  const res = await run(kubectlPath(), [`--kubeconfig=${kubeconfig}`, ...args], {
    ...(input === undefined ? {} : { input }),
  });
  if (res.code !== 0)
    throw new Error(`kubectl ${args.join(' ')} exited ${String(res.code)}: ${res.stderr.trim()}`);
  return res.stdout;
}

function buildBinaries(): void {
  const res = spawnSync('bash', [BUILD_SCRIPT], { stdio: ['ignore', process.stderr, process.stderr] });
  if (res.status !== 0) throw new Error(`${BUILD_SCRIPT} failed (exit ${String(res.status ?? res.signal)})`);
}

function nodeManifest(name: string, zone: string): object {
  const resources = {
    cpu: '64',
    memory: '512Gi',
    pods: '110',
    'ephemeral-storage': '1Ti',
    'nvidia.com/gpu': String(GPUS_PER_NODE),
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: {
        [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value,
        'node.alpha.kubernetes.io/ttl': '0',
      },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/os': 'linux',
        'kubernetes.io/hostname': name,
        'node-role.kubernetes.io/agent': '',
        'nvidia.com/gpu.product': GPU_PRODUCT,
        'nvidia.com/gpu.count': String(GPUS_PER_NODE),
        'topology.kubernetes.io/zone': zone,
        type: 'kwok',
      },
    },
    status: { capacity: resources, allocatable: resources },
  };
}

/** kwok acts for the kubelets of its nodes (node and pod status, leases, pod deletion). */
const KWOK_BINDING = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name: 'autoglm:kwok-controller' },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'kwok-controller' }],
};

function list(items: object[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

async function healthy(dir: string): Promise<State | undefined> {
  const state = readState(dir);
  if (state === undefined) return undefined;
  const all = COMPONENTS.every((c) => {
    const proc = state.procs[c];
    return proc !== undefined && isRunning(proc);
  });
  if (!all) return undefined;
  const pki = ensurePki(dir);
  return (await apiserverReady(state.server, pki).catch(() => false)) ? state : undefined;
}

async function stopAll(dir: string): Promise<void> {
  const state = readState(dir);
  for (const c of [...COMPONENTS].reverse()) {
    const proc = state?.procs[c];
    if (proc !== undefined && isRunning(proc)) {
      log(`stopping ${c} (pid ${String(proc.pid)})`);
      await stopProc(proc);
    }
  }
  rmSync(statePath(dir), { force: true });
}

async function pickPorts(): Promise<Ports> {
  const seen = new Set<number>();
  const next = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!seen.has(p)) {
        seen.add(p);
        return p;
      }
    }
  };
  return {
    etcd: await next(),
    etcdPeer: await next(),
    apiserver: await next(),
    controllerManager: await next(),
    scheduler: await next(),
  };
}

/** Waits for a component to answer on its health endpoint (or, for kwok, just to stay up). */
async function awaitComponent(l: Layout, state: State, c: Component): Promise<void> {
  const proc = state.procs[c];
  if (proc === undefined) throw new Error(`${c} was not started`);
  const opts = { timeoutMs: 120_000, log: l.log(c), proc };
  const ok = async (url: string, pki?: Pki): Promise<boolean> => (await get(url, pki)).status === 200;
  switch (c) {
    case 'etcd': {
      const url = `http://127.0.0.1:${String(state.ports.etcd)}/health`;
      await waitUntil('etcd /health', async () => (await fetch(url)).ok, opts);
      return;
    }
    case 'kube-apiserver':
      await waitUntil('kube-apiserver /readyz', () => apiserverReady(state.server, l.pki), opts);
      return;
    case 'kube-controller-manager':
    case 'kube-scheduler': {
      const port = c === 'kube-scheduler' ? state.ports.scheduler : state.ports.controllerManager;
      await waitUntil(`${c} /healthz`, () => ok(`https://127.0.0.1:${String(port)}/healthz`), opts);
      return;
    }
    case 'kwok':
      return;
  }
}

function start(l: Layout, state: State, c: Component): State {
  const proc = startDetached(componentSpec(l, state.ports, c));
  log(`started ${c} (pid ${String(proc.pid)}), log ${proc.log}`);
  const next = { ...state, procs: { ...state.procs, [c]: proc } };
  writeState(l.dir, next);
  return next;
}

async function startFresh(dir: string): Promise<ClusterInfo> {
  buildBinaries();
  await stopAll(dir);
  const l = layout(dir, ensurePki(dir));
  rmSync(l.etcdData, { recursive: true, force: true });
  for (const sub of ['logs', 'certs']) rmSync(join(dir, sub), { recursive: true, force: true });
  for (const sub of ['logs', 'kubeconfigs', 'certs', 'kwok']) mkdirSync(join(dir, sub), { recursive: true });
  const ports = await pickPorts();
  let state: State = { server: `https://127.0.0.1:${String(ports.apiserver)}`, ports, procs: {} };
  for (const client of ['admin', 'controller-manager', 'scheduler', 'kwok'] as const) {
    writeFileSync(l.kubeconfig(client), kubeconfigYaml(state.server, l.pki, client), { mode: 0o600 });
  }
  for (const c of ['etcd', 'kube-apiserver'] as const) {
    state = start(l, state, c);
    await awaitComponent(l, state, c);
  }
  const admin = l.kubeconfig('admin');
  const nodes = FAKE_NODES.map((n) => nodeManifest(n.name, n.zone));
  await kubectl(admin, ['apply', '-f', '-'], list([KWOK_BINDING, ...nodes]));
  for (const c of ['kube-controller-manager', 'kube-scheduler', 'kwok'] as const) state = start(l, state, c);
  for (const c of ['kube-controller-manager', 'kube-scheduler'] as const) await awaitComponent(l, state, c);
  log('waiting for the fake nodes to be Ready');
  await kubectl(admin, ['wait', '--for=condition=Ready', 'node', '-l', 'type=kwok', '--timeout=120s']);
  // Pods are only admitted once their namespace's default ServiceAccount exists.
  await waitUntil(
    'the default ServiceAccount',
    async () => (await kubectl(admin, ['get', 'serviceaccount', 'default', '-o', 'name'])) !== '',
    { timeoutMs: 60_000, log: l.log('kube-controller-manager') },
  );
  return infoOf(dir, state.server);
}

/**
 * Brings the cluster of `opts.dir` up (building the binaries first if needed), or returns it as
 * it is when it is already up and healthy.
 */
export async function clusterUp(opts?: ClusterOptions): Promise<ClusterInfo> {
  const dir = stateDir(opts);
  mkdirSync(dir, { recursive: true });
  return withLock(join(dir, '.lock'), async () => {
    const running = await healthy(dir);
    if (running !== undefined) {
      log(`cluster already up at ${running.server}`);
      return infoOf(dir, running.server);
    }
    const t0 = Date.now();
    log(`starting the cluster in ${dir}`);
    try {
      const info = await startFresh(dir);
      log(`cluster up at ${info.server} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      return info;
    } catch (err) {
      await stopAll(dir).catch(() => undefined);
      throw err;
    }
  });
}

/** Stops every process of the cluster of `opts.dir` and removes its etcd data; idempotent. */
export async function clusterDown(opts?: ClusterOptions): Promise<void> {
  const dir = stateDir(opts);
  if (!existsSync(dir)) return;
  await withLock(join(dir, '.lock'), async () => {
    await stopAll(dir);
    rmSync(join(dir, 'etcd'), { recursive: true, force: true });
  });
}

/**
 * Kills kube-apiserver and starts it again with the same flags and port; resolves once it is
 * ready. A crash by default (SIGKILL); `graceMs` > 0 sends SIGTERM first. (A graceful stop
 * takes about 10 s while controllers hold watches open.)
 */
export async function restartApiServer(info: ClusterInfo, opts?: { graceMs?: number }): Promise<void> {
  await withLock(join(info.dir, '.lock'), async () => {
    const state = readState(info.dir);
    const old = state?.procs['kube-apiserver'];
    if (state === undefined || old === undefined) throw new Error(`no cluster in ${info.dir}`);
    await stopProc(old, opts?.graceMs ?? 0);
    // A killed process's threads may still hold its listener for a moment after it is gone.
    await waitUntil('the apiserver port to be released', () => portIsFree(state.ports.apiserver), {
      timeoutMs: 30_000,
    });
    const proc = startDetached(old);
    log(`restarted kube-apiserver (pid ${String(proc.pid)})`);
    const next = { ...state, procs: { ...state.procs, 'kube-apiserver': proc } };
    writeState(info.dir, next);
    await awaitComponent(layout(info.dir, ensurePki(info.dir)), next, 'kube-apiserver');
  });
}
