/**
 * `npm run bench:tuning`: the tuning loop against static defaults on a workload that shifts, in
 * one run. Two servers of one AutoGLMDeployment (node-a on loopback, node-b in a network
 * namespace behind a veth with a capped TCP send buffer), a real Prometheus, `autoglm operator
 * --tuning-interval-seconds=2`, and the bench playing the kubelet. The same scripted workload
 * runs twice: 2 clients per node, then 6, then node-b's path is rate-limited with tbf. Arm B
 * runs the loop (`tuning.mode: Auto`, compression and streamChunkTokens bounded), arm A the
 * static defaults (`tuning.mode: Off`, empty tuning files). B runs first, after only the warm-up,
 * so that A's traffic is not in the loop's 5-minute window. Writes bench/results/tuning.md.
 *
 * Each server has a core of its own, runs niced and has a CPU limit below that core, so that the
 * two "nodes" do not trade CPU, the clients (one process here, other machines in a cluster) are
 * not the slow end of a path, and what the clients and the control plane use does not depend on
 * how busy either node is. Without the limit, node-b's stalling behind its path in the static
 * arm freed a core for everything else, and node-a served about 15 % faster for it.
 *
 * The load steps come first and are short: while the CPU is the limit, no transport setting can
 * add goodput and both arms serve alike; the rate-limited path, where the loop's knobs matter, is
 * the longer part of the run.
 *
 *   node bench/tuning.ts [--scale F]   (F multiplies every phase's length; default 1)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  agdManifest,
  clusterWithCrd,
  freshNamespace,
  sleep,
  startOperator,
  type Cluster,
  type RunningOperator,
} from '../test/support/operator.ts';
import { setupPrometheus, startPrometheus } from '../test/support/prometheus.ts';
import { randomModel } from '../test/support/server.ts';
import {
  bigChatRequest,
  createSlowPath,
  EMPTY_TUNING,
  removeSlowPath,
  setThrottle,
  startKubelet,
  startServer,
  stopServer,
  TBF,
  writeAtomically,
  type Server,
  type SlowPath,
} from '../test/support/slow-path.ts';

const { values } = parseArgs({ options: { scale: { type: 'string', default: '1' } } });
const scale = Number(values.scale);
if (!(scale > 0)) throw new Error('--scale must be a positive number');

const AGD = 'tuning-bench';
const NODES = ['node-a', 'node-b'] as const;
const PHASES = [
  { name: '2 clients/node', clients: 2, ms: 40_000 * scale, throttled: false },
  { name: '6 clients/node', clients: 6, ms: 40_000 * scale, throttled: false },
  { name: '6 clients/node, node-b tbf on', clients: 6, ms: 150_000 * scale, throttled: true },
] as const;
const MAX_CLIENTS = Math.max(...PHASES.map((p) => p.clients));
const TRANSPORT_COOLDOWN_S = 4;
/**
 * Each server's CPU limit, in cores of its own core: the rest is left to the clients, Prometheus
 * and the control plane, so that one node's being idle or busy does not change the other's CPU.
 */
const CPU_LIMIT = 0.75;
const WARM_UP_MS = 20_000 * scale;
const REQUEST = bigChatRequest(AGD);

interface Sample {
  readonly node: string;
  /** ms since the arm's start. */
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
  readonly bytes: number;
  readonly encoding: string;
}
const latency = (s: Sample) => (s.end - s.start) / 1000;

interface Decision {
  time: string;
  knob: string;
  node?: string;
  from: string;
  to: string;
  reason: string;
}

interface ArmResult {
  readonly name: string;
  readonly samples: Sample[];
  readonly seconds: number;
  readonly decisions: number;
  readonly statusDecisions: Decision[];
  /** When node-b's tbf went on (wall clock, as the decisions' times). */
  readonly throttledAt: string;
}

function agdYaml(ns: string, promUrl: string, mode: 'Off' | 'Auto'): string {
  return agdManifest(
    ns,
    AGD,
    `  model:
    source: hf:org/${AGD}
  tuning:
    mode: "${mode}"
    prometheusURL: ${promUrl}
    cooldownSeconds: { replicas: 0, batching: 0, transport: ${String(TRANSPORT_COOLDOWN_S)} }
    bounds:
      compression: { algorithms: [none, gzip, br], minLevel: 1, maxLevel: 6 }
      streamChunkTokens: { min: 1, max: 8 }
`,
  );
}

async function complete(s: Server, t0: number, signal: AbortSignal): Promise<Sample> {
  const start = performance.now() - t0;
  try {
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, br' },
      body: REQUEST,
      signal: AbortSignal.any([signal, AbortSignal.timeout(60_000)]),
    });
    const body = await res.arrayBuffer();
    const encoding = res.headers.get('content-encoding') ?? 'identity';
    return { node: s.node, start, end: performance.now() - t0, ok: res.ok, bytes: body.byteLength, encoding };
  } catch {
    return {
      node: s.node,
      start,
      end: performance.now() - t0,
      ok: false,
      bytes: 0,
      encoding: signal.aborted ? 'aborted' : 'error',
    };
  }
}

const phaseAt = (ms: number) => {
  let end = 0;
  for (const [i, p] of PHASES.entries()) {
    end += p.ms;
    if (ms < end) return i;
  }
  return PHASES.length;
};

/** One client: requests back to back while its index is below the phase's client count. */
async function client(s: Server, index: number, t0: number, stop: AbortSignal, out: Sample[]) {
  while (!stop.aborted) {
    const phase = PHASES[phaseAt(performance.now() - t0)];
    if (phase === undefined) return;
    if (index >= phase.clients) {
      await sleep(200);
      continue;
    }
    const sample = await complete(s, t0, stop);
    if (sample.encoding !== 'aborted') out.push(sample);
  }
}

/**
 * Traffic before either arm, not counted: the servers' first responses run cold code, and
 * whichever arm ran first would pay for it.
 */
async function warmUp(servers: readonly Server[]): Promise<void> {
  const stop = AbortSignal.timeout(WARM_UP_MS);
  const t0 = performance.now();
  const loops = servers.flatMap((s) =>
    Array.from({ length: 2 }, async () => {
      while (!stop.aborted) await complete(s, t0, stop);
    }),
  );
  await Promise.all(loops);
  console.log(`warm-up: ${String(WARM_UP_MS / 1000)} s`);
}

async function decisionsTotal(op: RunningOperator): Promise<number> {
  const text = await op.metrics();
  let n = 0;
  for (const m of text.matchAll(/^autoglm_operator_tuning_decisions_total\{([^}]*)\} (\S+)$/gm))
    if (m[1]?.includes(`deployment="${AGD}"`) === true) n += Number(m[2]);
  return n;
}

interface Env {
  readonly c: Cluster;
  readonly ns: string;
  readonly promUrl: string;
  readonly op: RunningOperator;
  readonly slow: SlowPath;
  readonly servers: readonly Server[];
}

async function runArm(env: Env, name: string, mode: 'Off' | 'Auto'): Promise<ArmResult> {
  for (const s of env.servers) await writeAtomically(s.file, EMPTY_TUNING);
  await env.c.apply(agdYaml(env.ns, env.promUrl, mode));
  const kubelet =
    mode === 'Auto' ? startKubelet(env.c, { ns: env.ns, agd: AGD }, env.servers, NODES) : undefined;
  const before = await decisionsTotal(env.op);
  const samples: Sample[] = [];
  const stop = new AbortController();
  const t0 = performance.now();
  console.log(`arm ${name}: start`);
  const clients = env.servers.flatMap((s) =>
    Array.from({ length: MAX_CLIENTS }, (_, i) => client(s, i, t0, stop.signal, samples)),
  );
  let throttledAt = '';
  for (const p of PHASES) {
    if (p.throttled) {
      await setThrottle(env.slow, true);
      throttledAt = new Date().toISOString();
    }
    await sleep(p.ms);
    console.log(`arm ${name}: ${p.name} done, ${String(samples.length)} responses so far`);
  }
  const seconds = (performance.now() - t0) / 1000;
  stop.abort();
  await Promise.all(clients);
  await kubelet?.stop();
  await setThrottle(env.slow, false);
  const decisions = (await decisionsTotal(env.op)) - before;
  const agd = await env.c.getJson<{ status?: { decisions?: Decision[] } }>(['-n', env.ns, 'get', 'agd', AGD]);
  return { name, samples, seconds, decisions, statusDecisions: agd.status?.decisions ?? [], throttledAt };
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
}

/** The longest time any node spent between a breaching completion and its next good one. */
function longestBreach(r: ArmResult, slo: number): { s: number; node: string; at: number } {
  let worst = { s: 0, node: '-', at: 0 };
  for (const node of NODES) {
    const mine = r.samples.filter((x) => x.node === node).sort((a, b) => a.end - b.end);
    let since: number | undefined;
    const close = (end: number) => {
      if (since !== undefined && (end - since) / 1000 > worst.s)
        worst = { s: (end - since) / 1000, node, at: since / 1000 };
      since = undefined;
    };
    for (const x of mine) {
      const bad = !x.ok || latency(x) > slo;
      if (bad) since ??= x.end;
      else close(x.end);
    }
    close(r.seconds * 1000);
  }
  return worst;
}

const good = (xs: readonly Sample[], slo: number) => xs.filter((x) => x.ok && latency(x) <= slo);
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function phaseRows(r: ArmResult, slo: number): string[] {
  const rows: string[] = [];
  for (const [i, p] of PHASES.entries())
    for (const node of NODES) {
      const xs = r.samples.filter((x) => x.node === node && phaseAt(x.start) === i);
      const lat = xs.filter((x) => x.ok).map(latency);
      const enc = [...new Set(xs.map((x) => x.encoding))].sort().join(', ');
      rows.push(
        `| ${r.name} | ${p.name} | ${node} | ${String(xs.length)} | ${String(good(xs, slo).length)} | ${f(quantile(lat, 0.5))} | ${f(quantile(lat, 0.99))} | ${enc} |`,
      );
    }
  return rows;
}

function summaryRow(r: ArmResult, slo: number): string {
  const g = good(r.samples, slo);
  const mb = g.reduce((n, x) => n + x.bytes, 0) / 1e6 / r.seconds;
  const b = longestBreach(r, slo);
  return `| ${r.name} | ${String(r.samples.length)} | ${String(g.length)} | ${f(g.length / r.seconds, 3)} | ${f(mb, 3)} | ${String(r.decisions)} | ${f(b.s, 1)} s (${b.node}, from t=${f(b.at, 0)} s) |`;
}

function report(a: ArmResult, b: ArmResult, loadAtStart: number, wallS: number): string {
  const phase2 = a.samples.filter((x) => x.ok && phaseAt(x.start) === 1).map(latency);
  const slo = 2 * quantile(phase2, 0.5);
  const ratio = good(b.samples, slo).length / b.seconds / (good(a.samples, slo).length / a.seconds);
  const shifts = PHASES.slice(0, -1).reduce<number[]>(
    (acc, p) => [...acc, (acc.at(-1) ?? 0) + p.ms / 1000],
    [],
  );
  const decisions = b.statusDecisions
    .map((d) => `${d.time} ${d.knob} ${d.node ?? '*'}: ${d.from} → ${d.to} (${d.reason})`)
    .join('\n');
  return [
    '# bench:tuning',
    '',
    `Command: \`npm run bench:tuning${scale === 1 ? '' : ` -- --scale ${String(scale)}`}\` (as root). Machine: ${String(cpus().length)} cores, load average (1 min) at start ${loadAtStart.toFixed(2)}; Node ${process.version}; whole bench ${wallS.toFixed(0)} s wall time.`,
    '',
    `Workload per arm: ${PHASES.map((p) => `${p.name} for ${String(p.ms / 1000)} s`).join(', then ')} (phase shifts at t=${shifts.join(' s and t=')} s). Clients send non-streamed chat completions back to back (n 4, 64 tokens, logprobs with 20 alternatives: ~434 KB of JSON, \`accept-encoding: gzip, br\`). node-b's tbf: \`${TBF.join(' ')}\` on its namespace's egress, switched on at the last shift; its TCP send buffer is capped at 64 KiB throughout. Each server runs on a core of its own (\`taskset\`, one inference thread, \`nice 10\` so that the clients read promptly) with a CPU limit of ${String(CPU_LIMIT)} core (a CFS quota, as a pod's \`limits.cpu\`), as two nodes would; the clients, Prometheus and the control plane share both cores' remainder. ${String(WARM_UP_MS / 1000)} s of uncounted traffic warm both servers before the first arm.`,
    '',
    `Arms: **B** = \`tuning.mode: Auto\`, bounds compression {none, gzip, br; levels 1–6} and streamChunkTokens 1–8, transport cooldown ${String(TRANSPORT_COOLDOWN_S)} s, \`--tuning-interval-seconds=2\`, tuning ConfigMap copied into the servers' files every 0.5 s. **A** = \`tuning.mode: Off\`, empty tuning files (server defaults: no compression, 1 token per event). B ran first, on a Prometheus that had seen only the warm-up; A second.`,
    '',
    `SLO: end-to-end latency ≤ ${f(slo)} s = 2 × the median latency of arm A's 6-clients unthrottled phase (both nodes). Goodput counts only responses within it, over the arm's whole ${f(a.seconds, 0)} s.`,
    '',
    '| arm | responses | within SLO | goodput (responses/s) | goodput (uncompressed MB/s) | decisions (operator counter) | longest SLO breach |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    summaryRow(b, slo),
    summaryRow(a, slo),
    '',
    `**Goodput B / A: ${f(ratio)}×** (goal ≥ 1.3×).`,
    '',
    '| arm | phase | node | responses | within SLO | p50 (s) | p99 (s) | encodings |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...phaseRows(b, slo),
    ...phaseRows(a, slo),
    '',
    "The phase of a response is the phase its request started in. Longest breach: the longest time on one node from a response outside the SLO (or failed) to that node's next response within it; t is seconds since the arm's start.",
    '',
    `B's decisions as status.decisions keeps them (the last 20); node-b's tbf went on at ${b.throttledAt}:`,
    '',
    '```',
    decisions,
    '```',
    '',
  ].join('\n');
}

const wall0 = performance.now();
const loadAtStart = loadavg()[0] ?? 0;
const slow = await createSlowPath({ throttled: false });
const dir = await mkdtemp(join(tmpdir(), 'autoglm-bench-tuning-'));
const model = await randomModel('fast');
const started: Server[] = [];
try {
  await setupPrometheus();
  const c = await clusterWithCrd();
  const ns = await freshNamespace(c, 'bench-tuning');
  for (const n of NODES) await writeFile(join(dir, `${n}.yaml`), EMPTY_TUNING);
  const opts = (node: (typeof NODES)[number]) => ({
    model: model.dir,
    servedName: AGD,
    node,
    file: join(dir, `${node}.yaml`),
    cpu: NODES.indexOf(node),
    cpuLimit: CPU_LIMIT,
  });
  started.push(await startServer(opts('node-a')));
  started.push(
    await startServer(opts('node-b'), { name: slow.netns, ip: slow.nsIp, scrapeIp: slow.scrapeIp }),
  );
  const prom = await startPrometheus(
    started.map((s) => ({
      job: s.node,
      target: s.scrapeTarget,
      labels: { namespace: ns, pod: `${AGD}-${s.node}` },
    })),
  );
  await prom.scrapedSince(Date.now(), 2);
  const op = await startOperator(c.info, {
    leaseNamespace: ns,
    namespace: ns,
    args: ['--tuning-interval-seconds=2'],
  });
  try {
    const env = { c, ns, promUrl: prom.url, op, slow, servers: started };
    await warmUp(started);
    const b = await runArm(env, 'B (loop)', 'Auto');
    const a = await runArm(env, 'A (static)', 'Off');
    const md = report(a, b, loadAtStart, (performance.now() - wall0) / 1000);
    writeFileSync(new URL('results/tuning.md', import.meta.url), md);
    console.log(md);
  } finally {
    await op.stop();
    await prom.stop().catch(() => undefined);
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
  }
} finally {
  await Promise.all(started.map(stopServer));
  await removeSlowPath(slow);
  await model.cleanup();
  await rm(dir, { recursive: true, force: true });
}
