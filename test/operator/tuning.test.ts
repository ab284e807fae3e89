/**
 * The tuning loop end to end: a real server (its metrics labelled node-a) scraped by a real
 * Prometheus, an AutoGLMDeployment on the real control plane, and `autoglm operator` reading
 * Prometheus. The test plays the kubelet's part of copying the tuning ConfigMap into the
 * server's mounted file, so a decision travels all the way into the serving process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
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
import { metricValue, randomModel, spawnServer, type SpawnedServer } from '../support/server.ts';

interface Decision {
  knob: string;
  node?: string;
  from: string;
  to: string;
  applied: boolean;
  reason: string;
}
interface Agd {
  status?: {
    conditions?: { type: string; status: string; reason: string }[];
    decisions?: Decision[];
    tuning?: {
      generation: number;
      nodes?: Record<string, Record<string, unknown>>;
      recommendations?: Record<string, unknown>;
    };
  };
}

let c: Cluster;
let ns: string;
let op: RunningOperator;
let prom: RunningPrometheus;
let model: Awaited<ReturnType<typeof randomModel>>;
let server: SpawnedServer;
let tuningDir: string;

function startServer(tuningFile: string): Promise<SpawnedServer> {
  const args = ['--model', model.dir, '--served-model-name', 'tuned', '--max-model-len', '512'];
  return spawnServer([...args, '--tuning-file', tuningFile], { ...process.env, NODE_NAME: 'node-a' });
}

const getAgd = () => c.getJson<Agd>(['-n', ns, 'get', 'agd', 'tuned']);
const cond = (a: Agd, type: string) => a.status?.conditions?.find((x) => x.type === type);

/** Streamed completions, some asking for gzip, so every transport series exists. */
async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'accept-encoding': i % 2 === 0 ? 'gzip, br' : 'identity',
      },
      body: JSON.stringify({
        model: 'tuned',
        prompt: 'hello there',
        max_tokens: 24,
        ignore_eos: true,
        stream: i % 3 !== 0,
      }),
    });
    await res.arrayBuffer();
  }
}

/**
 * The kubelet's part, in any mode: the mounted file follows the ConfigMap. Atomically, as the
 * kubelet swaps a ConfigMap volume: a watcher must never read half a file.
 */
async function syncTuningFile(): Promise<string | undefined> {
  const cm = await c
    .getJson<{ data: Record<string, string> }>(['-n', ns, 'get', 'configmap', 'tuned-tuning'])
    .catch(() => undefined);
  const text = cm?.data['tuning.yaml'];
  if (text === undefined) return undefined;
  const file = join(tuningDir, 'tuning.yaml');
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
  return text;
}

/**
 * The bounds leave out none: the server starts on none, outside them, and the loop must move each
 * node to the best gzip level once the servers' probe (which the tuning file turns on) has
 * measured both.
 */
function agdYaml(mode: string, promUrl: string): string {
  return agdManifest(
    ns,
    'tuned',
    `  model:
    source: hf:org/tuned
  tuning:
    mode: ${mode}
    prometheusURL: ${promUrl}
    cooldownSeconds: { replicas: 0, batching: 0, transport: 0 }
    bounds:
      compression: { algorithms: [gzip], minLevel: 1, maxLevel: 2 }
      streamChunkTokens: { min: 1, max: 8 }
`,
  );
}

before(async () => {
  await setupPrometheus();
  c = await clusterWithCrd();
  ns = await freshNamespace(c, 'tune');
  model = await randomModel('fast');
  tuningDir = await mkdtemp(join(tmpdir(), 'autoglm-tuning-'));
  await writeFile(
    join(tuningDir, 'tuning.yaml'),
    'apiVersion: serving.autoglm.io/v1alpha1\nkind: ServingTuning\n',
  );
  server = await startServer(join(tuningDir, 'tuning.yaml'));
  prom = await startPrometheus([
    { job: 'server', target: new URL(server.url).host, labels: { namespace: ns, pod: 'tuned-0' } },
  ]);
  op = await startOperator(c.info, {
    leaseNamespace: ns,
    namespace: ns,
    args: ['--tuning-interval-seconds=2'],
  });
});

after(async () => {
  await op.stop();
  await prom.stop().catch(() => undefined);
  await server.stop();
  await model.cleanup();
  await rm(tuningDir, { recursive: true, force: true });
  await c.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
});

describe('the tuning loop', () => {
  it('in Recommend mode records decisions per node in status and changes nothing', async () => {
    await traffic(12);
    await c.apply(agdYaml('Recommend', prom.url));
    const a = await eventually(
      'recommendations',
      async () => {
        await syncTuningFile();
        await traffic(2);
        const x = await getAgd();
        return (x.status?.decisions?.length ?? 0) > 0 && x.status?.tuning?.recommendations !== undefined
          ? x
          : undefined;
      },
      90_000,
    );
    assert.equal(cond(a, 'MetricsAvailable')?.status, 'True');
    assert.equal(cond(a, 'Tuned')?.reason, 'RecommendOnly');
    assert.ok(a.status?.decisions?.every((d) => !d.applied));
    assert.ok(
      a.status?.decisions?.some((d) => d.node === 'node-a'),
      JSON.stringify(a.status?.decisions),
    );
    assert.equal(a.status?.tuning?.generation, 0, 'nothing applied');
    const cm = await c.getJson<{ data: Record<string, string> }>([
      '-n',
      ns,
      'get',
      'configmap',
      'tuned-tuning',
    ]);
    assert.doesNotMatch(cm.data['tuning.yaml'] ?? '', /nodes:/);
  });

  it('in Auto mode applies per-node decisions through the ConfigMap into the server', async () => {
    await c.apply(agdYaml('Auto', prom.url));
    const cmText = await eventually(
      'a node-a section in the tuning ConfigMap',
      async () => {
        await syncTuningFile();
        await traffic(2);
        const cm = await c.getJson<{ data: Record<string, string> }>([
          '-n',
          ns,
          'get',
          'configmap',
          'tuned-tuning',
        ]);
        const text = cm.data['tuning.yaml'] ?? '';
        return /node-a:/.test(text) ? text : undefined;
      },
      90_000,
    );
    const a = await getAgd();
    assert.equal(cond(a, 'Tuned')?.status, 'True');
    assert.ok((a.status?.tuning?.generation ?? 0) > 0);
    assert.ok(a.status?.decisions?.some((d) => d.applied && d.node === 'node-a'));
    // The server applies the file live (the ConfigMap as it is now: the loop may have moved on).
    const fileText = (await syncTuningFile()) ?? cmText;
    const section =
      (
        parse(fileText) as {
          nodes: Record<
            string,
            { compression?: { algorithm: string; level?: number }; streamChunkTokens?: number }
          >;
        }
      ).nodes['node-a'] ?? {};
    assert.ok(section.compression !== undefined || section.streamChunkTokens !== undefined, fileText);
    const applied = (metrics: string) => {
      const c = section.compression;
      const compressionOk =
        c === undefined ||
        metricValue(metrics, 'autoglm_tuning_info', {
          compression: `${c.algorithm}:${String(c.level ?? 0)}`,
        }) === 1;
      const chunk = section.streamChunkTokens;
      const chunkOk =
        chunk === undefined ||
        metricValue(metrics, 'autoglm_tuning_value', { param: 'streamChunkTokens' }) === chunk;
      return compressionOk && chunkOk;
    };
    let last = '';
    await eventually(
      `the server to apply node-a's section (${JSON.stringify(section)})`,
      async () => {
        last = await (await fetch(`${server.url}/metrics`)).text();
        return applied(last) ? true : undefined;
      },
      30_000,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}\nserver tuning: ${last
          .split('\n')
          .filter((l) => l.startsWith('autoglm_tuning'))
          .join('\n')}`,
      );
    });
  });

  it('with Prometheus gone it freezes: MetricsAvailable=False and no new decisions', async () => {
    await prom.stop();
    const frozen = await eventually(
      'MetricsAvailable=False',
      async () => {
        const x = await getAgd();
        return cond(x, 'MetricsAvailable')?.status === 'False' ? x : undefined;
      },
      60_000,
    );
    assert.equal(cond(frozen, 'MetricsAvailable')?.reason, 'PrometheusUnreachable');
    const count = frozen.status?.decisions?.length ?? 0;
    await traffic(4);
    await sleep(6000);
    assert.equal((await getAgd()).status?.decisions?.length ?? 0, count);
  });
});
