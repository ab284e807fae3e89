/**
 * Saturation-based autoscaling end to end. The test plays the kubelet and kube-proxy: it runs
 * as many real server processes as the Deployment asks for, spreads its load over them, and
 * tells Prometheus (file service discovery) which ones to scrape. A load ramp raises replicas;
 * a square wave within the stabilization window does not make them flap; idle load lowers them
 * after the window.
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
import { randomModel, spawnServer, type SpawnedServer } from '../support/server.ts';

interface Decision {
  time: string;
  knob: string;
  from: string;
  to: string;
  reason: string;
}

let c: Cluster;
let ns: string;
let op: RunningOperator;
let prom: RunningPrometheus;
let model: Awaited<ReturnType<typeof randomModel>>;
let dir: string;
const servers: SpawnedServer[] = [];

function startServer(i: number): Promise<SpawnedServer> {
  const args = ['--model', model.dir, '--served-model-name', 'scaled', '--max-model-len', '256'];
  return spawnServer([...args, '--max-batch-size', '1', '--threads', '1'], {
    ...process.env,
    NODE_NAME: `node-${String(i)}`,
  });
}

/** The kubelet's part: as many servers as the Deployment's replicas, and Prometheus told so. */
async function syncServers(): Promise<number> {
  const d = await c.getJson<{ spec: { replicas: number } }>(['-n', ns, 'get', 'deployment', 'scaled']);
  while (servers.length < d.spec.replicas) servers.push(await startServer(servers.length));
  while (servers.length > d.spec.replicas) {
    await servers.pop()?.stop();
  }
  const targets = [{ targets: servers.map((s) => new URL(s.url).host), labels: { namespace: ns } }];
  await writeFile(join(dir, 'targets.json'), JSON.stringify(targets));
  return servers.length;
}

/** `clients` closed-loop clients for `ms`, spread round-robin over the running servers. */
async function load(clients: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const s = servers[next++ % Math.max(1, servers.length)];
        if (s === undefined) return;
        await fetch(`${s.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'scaled', prompt: 'count', max_tokens: 48, ignore_eos: true }),
        }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        );
      }
    }),
  );
}

const replicaDecisions = async (): Promise<Decision[]> => {
  const a = await c.getJson<{ status?: { decisions?: Decision[] } }>(['-n', ns, 'get', 'agd', 'scaled']);
  return (a.status?.decisions ?? []).filter((d) => d.knob === 'replicas');
};

before(async () => {
  await setupPrometheus();
  c = await clusterWithCrd();
  ns = await freshNamespace(c, 'scale');
  model = await randomModel('fast');
  dir = await mkdtemp(join(tmpdir(), 'autoglm-scale-'));
  await writeFile(join(dir, 'targets.json'), '[]');
  prom = await startPrometheus([
    { job: 'servers', target: '', targetsFile: join(dir, 'targets.json'), labels: {} },
  ]);
  await c.apply(
    agdManifest(
      ns,
      'scaled',
      `  model:
    source: hf:org/scaled
  autoscaling:
    enabled: true
    minReplicas: 1
    maxReplicas: 4
    scaleDownStabilizationSeconds: 30
  tuning:
    prometheusURL: ${prom.url}
    cooldownSeconds: { replicas: 10 }
`,
    ),
  );
  op = await startOperator(c.info, {
    leaseNamespace: ns,
    namespace: ns,
    args: ['--tuning-interval-seconds=2'],
  });
  await eventually('the Deployment', () =>
    c.getJson(['-n', ns, 'get', 'deployment', 'scaled']).catch(() => undefined),
  );
  await syncServers();
});

after(async () => {
  await op.stop();
  await prom.stop().catch(() => undefined);
  for (const s of servers.splice(0)) await s.stop();
  await model.cleanup();
  await rm(dir, { recursive: true, force: true });
  await c.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
});

describe('autoscaling on saturation', () => {
  it('a load ramp that saturates one replica raises replicas at once', async () => {
    const kubelet = { on: true };
    const sync = (async () => {
      while (kubelet.on) {
        await syncServers();
        await sleep(1000);
      }
    })();
    const loadDone = load(8, 40_000);
    await eventually(
      'a scale-up',
      async () => ((await replicaDecisions()).some((d) => Number(d.to) > Number(d.from)) ? true : undefined),
      60_000,
    );
    await loadDone;
    kubelet.on = false;
    await sync;
    const ups = (await replicaDecisions()).filter((d) => Number(d.to) > Number(d.from));
    assert.ok(ups.length >= 1);
    assert.ok(
      ups.every((d) => Number(d.to) <= 2 * Number(d.from)),
      'at most ×2 per step',
    );
    assert.match(ups[0]?.reason ?? '', /saturated/);
    assert.ok((await syncServers()) >= 2);
  });

  it('a square wave inside the stabilization window does not make replicas flap', async () => {
    const before = (await replicaDecisions()).length;
    const replicas = await syncServers();
    for (let i = 0; i < 3; i++) {
      await load(3 * replicas, 6_000);
      await sleep(6_000);
    }
    const during = (await replicaDecisions()).slice(before);
    // Flapping is a reversal: up then down, or down then up. A ramp that overshot may settle by
    // justified steps (the wave's peak fits on fewer replicas); it must not swing back.
    const ups = during.filter((d) => Number(d.to) > Number(d.from));
    const downs = during.filter((d) => Number(d.to) < Number(d.from));
    assert.ok(
      ups.length === 0 || downs.length === 0,
      `replicas reversed inside the window: ${JSON.stringify(during)}`,
    );
  });

  it('idle load lowers replicas after the window, one at a time, not below the minimum', async () => {
    const start = Date.now();
    const d = await eventually(
      'scale-down to 1 replica',
      async () => {
        const n = await syncServers();
        return n === 1 ? await replicaDecisions() : undefined;
      },
      180_000,
    );
    const downs = d.filter((x) => Number(x.to) < Number(x.from));
    assert.ok(downs.length >= 1);
    assert.ok(
      downs.every((x) => Number(x.from) - Number(x.to) === 1),
      'one replica per step',
    );
    assert.ok(Date.now() - start >= 20_000, 'not before the stabilization window has seen idle load');
    await sleep(5_000);
    assert.equal(await syncServers(), 1, 'stays at the minimum');
  });
});
