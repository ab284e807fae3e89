/**
 * The compression loop on two nodes with different paths to their clients. Two servers of one
 * AutoGLMDeployment: node-a on loopback, node-b in a network namespace behind a veth whose
 * server→client direction is rate-limited with tbf (this kernel has no netem, so the slow path
 * is slow in bandwidth only, not in delay). A real Prometheus scrapes both, `autoglm operator`
 * runs the loop in Auto mode with only compression bounded, and the test plays the kubelet,
 * copying the tuning ConfigMap into each server's watched file. Both servers measure every gzip
 * level on their own responses without serving it (the probe); from that the loop must settle on
 * gzip for node-b, where the saved bytes pay, and keep none on node-a, where they do not, and the
 * client must see node-b's throughput rise while node-a's holds.
 *
 * Node-b's pod namespace caps the TCP send buffer (net.ipv4.tcp_wmem, a namespaced sysctl that
 * Kubernetes counts as safe): the server measures draining until the kernel has taken the last
 * byte, and an autotuned buffer of up to 4 MiB swallows a whole response, hiding the path.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setupPrometheus, startPrometheus, type RunningPrometheus } from '../support/prometheus.ts';
import {
  agdManifest,
  clusterWithCrd,
  eventually,
  freshNamespace,
  sleep,
  startOperator,
  type Cluster,
  type RunningOperator,
} from '../support/operator.ts';
import { randomModel } from '../support/server.ts';
import {
  bigChatRequest,
  createSlowPath,
  EMPTY_TUNING,
  removeSlowPath,
  startKubelet,
  startServer,
  stopServer,
  TBF,
  writeAtomically,
  type Kubelet,
  type Server,
  type SlowPath,
} from '../support/slow-path.ts';
import { MIN_PROBES } from '../../operator/src/aiops/policies/compression.ts';

const AGD = 'two-nodes';
/** gzip 1–6: the compressed arms the bounds allow, which every server measures without serving them. */
const PROBED_ARMS = 6;
/** Requests per node for the measurement at the start, and per node and setting for the paired one. */
const ROUNDS = 6;
const LOAD_MS = 240_000;
const SETTLE_MS = 180_000;
/** node-b must keep a gzip setting this long after every arm is measured: 5 loop rounds. */
const HOLD_MS = 10_000;

const REQUEST = bigChatRequest(AGD);

interface Decision {
  time: string;
  knob: string;
  node?: string;
  from: string;
  to: string;
  applied: boolean;
  reason: string;
}
interface Agd {
  status?: { decisions?: Decision[] };
}
interface Sample {
  readonly node: string;
  readonly encoding: string;
  readonly bytes: number;
  readonly seconds: number;
}

/** One non-streamed completion: uncompressed bytes (fetch decodes) over wall time. */
async function complete(s: Server): Promise<Sample> {
  const t = performance.now();
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, br' },
    body: REQUEST,
    signal: AbortSignal.timeout(60_000),
  });
  const body = await res.arrayBuffer();
  const seconds = (performance.now() - t) / 1000;
  if (!res.ok)
    throw new Error(`${s.node}: HTTP ${String(res.status)}: ${Buffer.from(body).toString().slice(0, 300)}`);
  return {
    node: s.node,
    encoding: res.headers.get('content-encoding') ?? 'identity',
    bytes: body.byteLength,
    seconds,
  };
}

/** Requests to each server in turn, `rounds` times. */
async function measure(servers: readonly Server[], rounds: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < rounds; i++) for (const s of servers) out.push(await complete(s));
  return out;
}

/** Delivered throughput in bytes per second: all bytes over all wall time. */
function throughput(samples: readonly Sample[], node: string): number {
  const mine = samples.filter((s) => s.node === node);
  const bytes = mine.reduce((n, s) => n + s.bytes, 0);
  return bytes / mine.reduce((n, s) => n + s.seconds, 0);
}

const mbps = (bytesPerS: number) => `${(bytesPerS / 1e6).toFixed(3)} MB/s`;
const encodings = (samples: readonly Sample[], node: string) =>
  [...new Set(samples.filter((s) => s.node === node).map((s) => s.encoding))].sort();

interface Load {
  readonly samples: Sample[];
  error: Error | undefined;
  stop(): Promise<void>;
}

/** Client traffic to both servers in turn, until stopped or `ms` have passed. */
function startLoad(servers: readonly Server[], ms: number): Load {
  const until = Date.now() + ms;
  const state = { stopped: false };
  const load: Load = {
    samples: [],
    error: undefined,
    stop: async () => {
      state.stopped = true;
      await done;
      if (load.error !== undefined) throw load.error;
    },
  };
  const done = (async () => {
    while (!state.stopped && Date.now() < until) load.samples.push(...(await measure(servers, 1)));
  })().catch((err: unknown) => {
    load.error = err instanceof Error ? err : new Error(String(err));
  });
  return load;
}

function agdYaml(ns: string, promUrl: string): string {
  return agdManifest(
    ns,
    AGD,
    `  model:
    source: hf:org/${AGD}
  tuning:
    mode: Auto
    prometheusURL: ${promUrl}
    cooldownSeconds: { replicas: 0, batching: 0, transport: 0 }
    bounds:
      compression: { algorithms: [none, gzip], minLevel: 1, maxLevel: 6 }
`,
  );
}

const describeDecisions = (ds: readonly Decision[]) =>
  ds
    .filter((d) => d.knob === 'compression')
    .map((d) => `  ${d.time} ${d.node ?? '*'}: ${d.from} → ${d.to} (${d.reason})`)
    .join('\n');

let c: Cluster | undefined;
let ns = '';
let slow: SlowPath | undefined;
let model: Awaited<ReturnType<typeof randomModel>> | undefined;
let dir: string | undefined;
let nodeA: Server | undefined;
let nodeB: Server | undefined;
let prom: RunningPrometheus | undefined;
let op: RunningOperator | undefined;
let load: Load | undefined;
let kubelet: Kubelet | undefined;

const servers = (): [Server, Server] => {
  assert.ok(nodeA !== undefined && nodeB !== undefined, 'the servers are not running');
  return [nodeA, nodeB];
};

before(
  async () => {
    slow = await createSlowPath();
    await setupPrometheus();
    c = await clusterWithCrd();
    ns = await freshNamespace(c, 'two-nodes');
    model = await randomModel('fast');
    dir = await mkdtemp(join(tmpdir(), 'autoglm-two-nodes-'));
    await writeFile(join(dir, 'a.yaml'), EMPTY_TUNING);
    await writeFile(join(dir, 'b.yaml'), EMPTY_TUNING);
    // One after the other, so that `after` knows of every server that started.
    nodeA = await startServer({
      model: model.dir,
      servedName: AGD,
      node: 'node-a',
      file: join(dir, 'a.yaml'),
    });
    nodeB = await startServer(
      { model: model.dir, servedName: AGD, node: 'node-b', file: join(dir, 'b.yaml') },
      { name: slow.netns, ip: slow.nsIp, scrapeIp: slow.scrapeIp },
    );
    const labels = { namespace: ns };
    prom = await startPrometheus([
      { job: 'node-a', target: nodeA.scrapeTarget, labels: { ...labels, pod: `${AGD}-a` } },
      { job: 'node-b', target: nodeB.scrapeTarget, labels: { ...labels, pod: `${AGD}-b` } },
    ]);
    await prom.scrapedSince(Date.now(), 2);
    op = await startOperator(c.info, {
      leaseNamespace: ns,
      namespace: ns,
      args: ['--tuning-interval-seconds=2'],
    });
  },
  { timeout: 300_000 },
);

after(async () => {
  await load?.stop().catch(() => undefined);
  await kubelet?.stop();
  await op?.stop();
  await prom?.stop().catch(() => undefined);
  await Promise.all([stopServer(nodeA), stopServer(nodeB)]);
  if (slow !== undefined) await removeSlowPath(slow);
  await model?.cleanup();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  if (c !== undefined && ns !== '')
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
});

/** Compressed arms probed at least MIN_PROBES times in the loop's 5-minute window, per node. */
async function measuredArms(p: RunningPrometheus): Promise<Map<string, number>> {
  const r = await p.query(
    `sum by (node, encoding, level) (increase(autoglm_compression_probes_total{namespace="${ns}",model="${AGD}"}[5m]))`,
  );
  const arms = new Map<string, number>();
  for (const s of r.data?.result ?? []) {
    const node = s.metric['node'] ?? '';
    if (Math.round(Number(s.value[1])) >= MIN_PROBES) arms.set(node, (arms.get(node) ?? 0) + 1);
  }
  return arms;
}

/** Both servers have measured every compressed arm, none of them served. */
function explored(arms: ReadonlyMap<string, number>): boolean {
  return (arms.get('node-b') ?? 0) >= PROBED_ARMS && (arms.get('node-a') ?? 0) >= PROBED_ARMS;
}

/**
 * Waits until both servers have measured every compressed arm, and, after that, node-b has kept
 * a gzip setting for HOLD_MS while node-a's setting is none.
 */
async function settle(
  p: RunningPrometheus,
  k: Kubelet,
  l: Load,
  decisions: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  let measuredAt: number | undefined;
  for (;;) {
    if (l.error !== undefined) throw l.error;
    const arms = await measuredArms(p);
    if (measuredAt === undefined && explored(arms)) measuredAt = Date.now();
    const since = k.compressedSince('node-b');
    if (
      measuredAt !== undefined &&
      since !== undefined &&
      k.setting('node-a') === 'none' &&
      Date.now() - Math.max(measuredAt, since) >= HOLD_MS
    )
      return;
    if (Date.now() > deadline) {
      const settings = k.history.map(
        (h) => `  +${String(h.at - (k.history[0]?.at ?? 0))} ms ${JSON.stringify(h.settings)}`,
      );
      throw new Error(
        `not settled in ${String(SETTLE_MS / 1000)} s; arms measured per node: ${JSON.stringify(Object.fromEntries(arms))}; ConfigMap settings:\n${settings.join('\n')}\ndecisions:\n${await decisions()}`,
      );
    }
    await sleep(1000);
  }
}

/** The compression a server reports it has in force, from its tuning_info series. */
async function liveCompression(s: Server): Promise<string> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const v = /autoglm_tuning_info\{[^}]*compression="([^"]+)"/.exec(text)?.[1] ?? 'none';
  return v.startsWith('none') ? 'none' : v;
}

/** Writes `text` into every server's file and waits until each reports its `want` in force. */
async function applyTuning(
  servers: readonly Server[],
  text: string,
  want: Readonly<Record<string, string>>,
): Promise<void> {
  for (const s of servers) await writeAtomically(s.file, text);
  await eventually(
    `the servers to apply ${JSON.stringify(want)}`,
    async () => {
      for (const s of servers) if ((await liveCompression(s)) !== (want[s.node] ?? 'none')) return undefined;
      return true;
    },
    30_000,
  );
}

interface Paired {
  readonly chosen: Sample[];
  readonly none: Sample[];
}

/**
 * The loop's final settings against none, a request of each per node and round in ABBA order,
 * so that the shared machine's changing load, which moves generation time, falls on both alike.
 */
async function paired(
  servers: readonly Server[],
  chosenText: string,
  chosen: Readonly<Record<string, string>>,
): Promise<Paired> {
  const out: Paired = { chosen: [], none: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const arm of i % 2 === 0 ? (['chosen', 'none'] as const) : (['none', 'chosen'] as const)) {
      if (arm === 'chosen') await applyTuning(servers, chosenText, chosen);
      else await applyTuning(servers, EMPTY_TUNING, {});
      out[arm].push(...(await measure(servers, 1)));
    }
  }
  return out;
}

/** Prints the throughput table; returns each node's ratio, the loop's choice over none, paired. */
function report(start: readonly Sample[], ab: Paired, chosen: Readonly<Record<string, string>>) {
  const ratios = new Map<string, number>();
  console.log(
    '| node | path | none, at the start | none, paired | loop’s choice, paired | choice | choice / none, paired | choice / none at the start |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const node of ['node-a', 'node-b']) {
    const first = throughput(start, node);
    const none = throughput(ab.none, node);
    const choice = throughput(ab.chosen, node);
    const path = node === 'node-a' ? 'loopback' : `veth, tbf ${TBF.join(' ')}`;
    ratios.set(node, choice / none);
    console.log(
      `| ${node} | ${path} | ${mbps(first)} | ${mbps(none)} | ${mbps(choice)} | ${chosen[node] ?? ''} | ${(choice / none).toFixed(2)}× | ${(choice / first).toFixed(2)}× |`,
    );
  }
  const bytes = ab.chosen.map((s) => s.bytes);
  console.log(
    `response size: ${String(Math.min(...bytes))}–${String(Math.max(...bytes))} bytes uncompressed`,
  );
  return { a: ratios.get('node-a') ?? 0, b: ratios.get('node-b') ?? 0 };
}

describe('compression tuning on two nodes', () => {
  it(
    'raises compression on the node with a slow path and keeps none on the fast one',
    { timeout: 600_000 },
    async () => {
      assert.ok(c !== undefined && prom !== undefined);
      const [a, b] = servers();
      await measure([a, b], 1); // warm both paths (TCP windows, JIT)
      const start = await measure([a, b], ROUNDS);
      assert.deepEqual(encodings(start, 'node-a'), ['identity']);
      assert.deepEqual(encodings(start, 'node-b'), ['identity']);

      const began = Date.now();
      await c.apply(agdYaml(ns, prom.url));
      kubelet = startKubelet(c, { ns, agd: AGD }, [a, b], ['node-a', 'node-b']);
      load = startLoad([a, b], LOAD_MS);
      const cluster = c;
      const decisionsNow = async () =>
        describeDecisions(
          (await cluster.getJson<Agd>(['-n', ns, 'get', 'agd', AGD])).status?.decisions ?? [],
        );
      await settle(prom, kubelet, load, decisionsNow);
      const settledS = (Date.now() - began) / 1000;
      await load.stop();
      await kubelet.stop();

      const agd = await c.getJson<Agd>(['-n', ns, 'get', 'agd', AGD]);
      const decisions = agd.status?.decisions ?? [];
      console.log(
        `settled after ${settledS.toFixed(0)} s (${String(load.samples.length)} requests); compression decisions:\n${describeDecisions(decisions)}`,
      );
      const last = (node: string) => decisions.findLast((d) => d.knob === 'compression' && d.node === node);
      // node-a stays on none throughout (the probe, not serving, measures its other settings),
      // or is back on it.
      assert.equal(last('node-a')?.to ?? 'none', 'none', describeDecisions(decisions));
      assert.match(last('node-b')?.to ?? '', /^gzip:[1-6]$/, describeDecisions(decisions));
      assert.ok(decisions.every((d) => d.applied));

      // The loop's settings as the kubelet last copied them, frozen, against none. The loop runs
      // on after the kubelet stops and may move node-b by a level meanwhile.
      const chosen = { 'node-a': kubelet.setting('node-a'), 'node-b': kubelet.setting('node-b') };
      assert.equal(chosen['node-a'], 'none');
      assert.match(chosen['node-b'], /^gzip:[1-6]$/);
      const ab = await paired([a, b], kubelet.text(), chosen);
      assert.deepEqual(encodings(ab.chosen, 'node-a'), ['identity']);
      assert.deepEqual(encodings(ab.chosen, 'node-b'), ['gzip']);
      assert.deepEqual(encodings(ab.none, 'node-b'), ['identity']);
      const ratio = report(start, ab, chosen);
      assert.ok(ratio.b >= 1.3, `node-b: ${ratio.b.toFixed(2)}× its throughput with none, want ≥ 1.3×`);
      assert.ok(ratio.a >= 0.7, `node-a: ${ratio.a.toFixed(2)}× its throughput with none, want ≥ 0.7×`);
    },
  );
});
