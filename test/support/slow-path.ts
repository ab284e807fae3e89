/**
 * Two nodes with different paths to their clients, as test/operator/two-nodes.test.ts and
 * bench/tuning.ts build them: a network namespace behind a veth for the slow node, with tbf on the
 * namespace side's egress (server → client) and a capped TCP send buffer; real servers started
 * on loopback or in that namespace; and the kubelet's part, copying the tuning ConfigMap into
 * each server's watched file.
 *
 * The namespace caps the TCP send buffer (net.ipv4.tcp_wmem, a namespaced sysctl that Kubernetes
 * counts as safe): the server measures draining until the kernel has taken the last byte, and an
 * autotuned buffer of up to 4 MiB swallows a whole response, hiding the path.
 *
 * A second veth, never throttled, carries Prometheus's scrapes: in a cluster they cross the pod
 * network, not the client's path, and scrapes queued behind responses on a 2 Mbit/s link would
 * time out and blind the loop exactly when the path changes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, rename, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { KubeClient, loadKubeConfig, resourcePath } from '../../operator/src/kube/rest.ts';
import { sleep, type Cluster } from './operator.ts';

const NETNS_PREFIX = 'autoglm-nb-';
const LINK_PREFIX = 'agnb-';
/** The slow node's egress (server → client): 2 Mbit/s, as `tc qdisc add dev <veth> root tbf …` takes it. */
export const TBF = ['rate', '2mbit', 'burst', '16kb', 'latency', '400ms'] as const;
/** The slow node's TCP send buffer: min, default, max bytes. */
const TCP_WMEM = '4096 16384 65536';
/** A tuning file with no sections: every node on its base parameters (no compression). */
export const EMPTY_TUNING = 'apiVersion: serving.autoglm.io/v1alpha1\nkind: ServingTuning\n';

export interface SlowPath {
  readonly netns: string;
  readonly hostLink: string;
  /** The veth's end inside the namespace, where tbf sits. */
  readonly nsLink: string;
  readonly hostIp: string;
  readonly nsIp: string;
  /** The namespace's address on the unthrottled veth, for scrapes. */
  readonly scrapeIp: string;
}

export interface Server {
  readonly node: string;
  readonly proc: ChildProcess;
  readonly url: string;
  /** host:port for Prometheus to scrape. */
  readonly scrapeTarget: string;
  readonly file: string;
}

const exec = promisify(execFile);

export async function sh(cmd: string, args: readonly string[]): Promise<string> {
  try {
    return (await exec(cmd, args, { timeout: 30_000 })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** Namespaces and host-side veths left by an earlier run that died before its cleanup. */
async function removeStale(): Promise<void> {
  for (const line of (await sh('ip', ['netns', 'list'])).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith(NETNS_PREFIX)) await sh('ip', ['netns', 'del', name]);
  }
  for (const line of (await sh('ip', ['-o', 'link', 'show'])).split('\n')) {
    const name = /^\d+: ([^@:]+)/.exec(line)?.[1] ?? '';
    if (name.startsWith(LINK_PREFIX)) await sh('ip', ['link', 'del', name]).catch(() => '');
  }
}

/** Switches tbf on the namespace side's egress on or off. */
export async function setThrottle(path: SlowPath, on: boolean): Promise<void> {
  const args = ['netns', 'exec', path.netns, 'tc', 'qdisc', on ? 'add' : 'del', 'dev', path.nsLink, 'root'];
  try {
    await sh('ip', on ? [...args, 'tbf', ...TBF] : args);
  } catch (err) {
    throw new Error(`tc tbf is not available here, so there is no slow path: ${String(err)}`, {
      cause: err,
    });
  }
}

/** A veth pair from the host (`host`, `hostIp`) into `netns` (`inside`, `nsIp`), both ends up. */
async function vethPair(netns: string, host: string, inside: string, hostIp: string, nsIp: string) {
  await sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', inside, 'netns', netns]);
  await sh('ip', ['addr', 'add', `${hostIp}/30`, 'dev', host]);
  await sh('ip', ['link', 'set', host, 'up']);
  await sh('ip', ['netns', 'exec', netns, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', inside]);
  await sh('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', inside, 'up']);
}

/**
 * A network namespace, a veth pair to it for clients and one for scrapes, and (unless
 * `throttled` is false) tbf on the client veth's egress.
 */
export async function createSlowPath(opts: { throttled?: boolean } = {}): Promise<SlowPath> {
  if (process.getuid?.() !== 0)
    throw new Error('this needs root: it creates a network namespace, a veth pair and a tbf qdisc');
  await removeStale();
  const id = Math.random().toString(36).slice(2, 8);
  const subnet = String(1 + Math.floor(Math.random() * 254));
  const path = {
    netns: `${NETNS_PREFIX}${id}`,
    hostLink: `${LINK_PREFIX}${id}h`,
    nsLink: `${LINK_PREFIX}${id}n`,
    hostIp: `10.213.${subnet}.1`,
    nsIp: `10.213.${subnet}.2`,
    scrapeIp: `10.214.${subnet}.2`,
  };
  const inNs = (...args: string[]) => sh('ip', ['netns', 'exec', path.netns, ...args]);
  await sh('ip', ['netns', 'add', path.netns]);
  await vethPair(path.netns, path.hostLink, path.nsLink, path.hostIp, path.nsIp);
  await vethPair(
    path.netns,
    `${LINK_PREFIX}${id}s`,
    `${LINK_PREFIX}${id}m`,
    `10.214.${subnet}.1`,
    path.scrapeIp,
  );
  await inNs('ip', 'link', 'set', 'lo', 'up');
  await inNs('sysctl', '-q', '-w', `net.ipv4.tcp_wmem=${TCP_WMEM}`);
  if (opts.throttled ?? true) await setThrottle(path, true);
  return path;
}

export async function removeSlowPath(path: SlowPath): Promise<void> {
  await sh('ip', ['netns', 'del', path.netns]).catch(() => '');
  await sh('ip', ['link', 'del', path.hostLink]).catch(() => ''); // gone with its peer, normally
}

const CPU_CGROUPS = '/sys/fs/cgroup/cpu';

/**
 * A cgroup (v1 cpu controller) whose tasks get at most `cores` of CPU time: a container's CPU
 * limit, as Kubernetes sets it through the CFS quota.
 */
async function cpuCgroup(name: string, cores: number): Promise<string> {
  if (!existsSync(join(CPU_CGROUPS, 'cpu.cfs_quota_us')))
    throw new Error(`a CPU limit needs the cgroup v1 cpu controller at ${CPU_CGROUPS}`);
  const dir = join(CPU_CGROUPS, `autoglm-${name}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(dir);
  const period = 100_000;
  await writeFile(join(dir, 'cpu.cfs_period_us'), String(period));
  await writeFile(join(dir, 'cpu.cfs_quota_us'), String(Math.round(cores * period)));
  return dir;
}

/**
 * `autoglm serve` labelled `node`, on loopback or, with `netns`, inside that namespace. With
 * `cpu`, the server runs on that one core only (one inference thread), as if the core were its
 * node: two such servers then no longer take CPU from each other. It also runs niced, so the
 * clients on the same machine (other machines, in a cluster) read their responses when they
 * arrive: a client starved of CPU drains slowly and looks like a slow network path. With
 * `cpuLimit`, it gets at most that many cores, as a pod with a CPU limit: the rest of its core is
 * left to the clients and the control plane, so what they use does not depend on how busy the
 * other "node" is.
 */
export async function startServer(
  opts: {
    model: string;
    servedName: string;
    node: string;
    file: string;
    cpu?: number;
    cpuLimit?: number;
  },
  netns?: { name: string; ip: string; scrapeIp: string },
): Promise<Server> {
  const { model, servedName, node, file, cpu, cpuLimit } = opts;
  const cgroup = cpuLimit === undefined ? undefined : await cpuCgroup(node, cpuLimit);
  const args = [
    'bin/autoglm.js',
    'serve',
    // In the namespace: every address there, the client veth's and the scrape veth's.
    ...['--model', model, '--host', netns === undefined ? '127.0.0.1' : '0.0.0.0', '--port', '0'],
    ...['--served-model-name', servedName, '--max-model-len', '512', '--tuning-file', file],
    ...(cpu === undefined ? [] : ['--threads', '1']),
  ];
  // `ip netns exec`, `nice` and `taskset` exec the command, so the child's pid is the server's own.
  // The shell joins the cgroup before it execs them, so no thread of the server starts outside.
  const command = [
    ...(cgroup === undefined ? [] : ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup]),
    ...(netns === undefined ? [] : ['ip', 'netns', 'exec', netns.name]),
    ...(cpu === undefined ? [] : ['nice', '-n', '10', 'taskset', '-c', String(cpu)]),
    process.execPath,
    ...args,
  ];
  const [bin = process.execPath, ...rest] = command;
  const proc = spawn(bin, rest, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NAME: node },
  });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${node} did not become ready in 60 s:\n${out}`));
    }, 60_000);
    proc.stdout.on('data', (d: string) => {
      out += d;
      const port = /listening on http:\/\/[^\s]+:(\d+) /.exec(out)?.[1];
      if (port === undefined || !out.includes('ready:')) return;
      clearTimeout(timer);
      const host = netns?.ip ?? '127.0.0.1';
      resolve({
        node,
        proc,
        url: `http://${host}:${port}`,
        scrapeTarget: `${netns?.scrapeIp ?? host}:${port}`,
        file,
      });
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      if (cgroup !== undefined) void rmdir(cgroup).catch(() => undefined);
      reject(new Error(`${node} exited:\n${out}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 15 s. */
export async function stopServer(s: Server | undefined): Promise<void> {
  if (s === undefined || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = once(s.proc, 'exit');
  s.proc.kill('SIGTERM');
  const timer = setTimeout(() => s.proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Writes atomically, as the kubelet swaps a ConfigMap volume's files: the server never reads half. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

interface TuningYaml {
  nodes?: Record<string, { compression?: { algorithm: string; level?: number } }>;
}

const compressionOf = (y: TuningYaml, node: string) => {
  const c = y.nodes?.[node]?.compression;
  return c === undefined || c.algorithm === 'none' ? 'none' : `${c.algorithm}:${String(c.level ?? 0)}`;
};

export interface Kubelet {
  /** Every write: when, and each node's compression in it. */
  readonly history: { at: number; settings: Record<string, string> }[];
  setting(node: string): string;
  /** The tuning.yaml last written. */
  text(): string;
  /** Since when the node's compression has been other than none without a break. */
  compressedSince(node: string): number | undefined;
  stop(): Promise<void>;
}

/** The kubelet's part: the tuning ConfigMap's tuning.yaml into every server's file, as it changes. */
export function startKubelet(
  c: Cluster,
  target: { ns: string; agd: string },
  servers: readonly Server[],
  nodes: readonly string[],
): Kubelet {
  const history: Kubelet['history'] = [];
  let last = '';
  const state = { stopped: false };
  // Through the API from this process, as a kubelet reads it: starting kubectl twice a second
  // would take CPU from the servers under test, and only in the arm that runs the loop.
  const api = new KubeClient(loadKubeConfig(c.info.kubeconfig));
  const path = resourcePath({
    apiVersion: 'v1',
    plural: 'configmaps',
    namespace: target.ns,
    name: `${target.agd}-tuning`,
  });
  const tick = async () => {
    const cm = await api.get<{ data?: Record<string, string> }>(path);
    const text = cm.data?.['tuning.yaml'];
    if (text === undefined || text === last) return;
    for (const s of servers) await writeAtomically(s.file, text);
    last = text;
    const y = parse(text) as TuningYaml;
    history.push({
      at: Date.now(),
      settings: Object.fromEntries(nodes.map((n) => [n, compressionOf(y, n)])),
    });
  };
  const done = (async () => {
    while (!state.stopped) {
      await tick().catch(() => undefined); // the ConfigMap appears once the AGD is reconciled
      await sleep(500);
    }
  })();
  return {
    history,
    setting: (node) => history.at(-1)?.settings[node] ?? 'none',
    text: () => last,
    compressedSince: (node) => {
      let since: number | undefined;
      for (const h of history) since = h.settings[node] === 'none' ? undefined : (since ?? h.at);
      return since;
    },
    stop: async () => {
      state.stopped = true;
      await done;
    },
  };
}

/**
 * Big, compressible JSON: chat logprobs with 20 alternatives per token, ~430 KB per response,
 * which gzip shrinks about 3.6×. The model is small, so the bytes cost more than the tokens.
 */
export function bigChatRequest(model: string): string {
  return JSON.stringify({
    model,
    messages: [{ role: 'user', content: 'Tell me everything you know.' }],
    n: 4,
    max_tokens: 64,
    ignore_eos: true,
    logprobs: true,
    top_logprobs: 20,
  });
}
