/**
 * The tuning loop's signals by both metric paths (issue 5): one real server over a seeded
 * random model, whose /metrics a real Prometheus 2.42 scrapes, and which also pushes the same
 * instruments over OTLP/HTTP (protobuf) into a real Prometheus 3's OTLP receiver. The loop's own
 * reader, readSignals(), must get fresh, sensible signals from each, through the same PromQL,
 * and the series it reads must have the same names and label names on both.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PrometheusClient } from '../../operator/src/aiops/prometheus.ts';
import { readSignals, type DeploymentSignals, type NodeSignals } from '../../operator/src/aiops/signals.ts';
import { setupPrometheus, startPrometheus, type RunningPrometheus } from '../support/prometheus.ts';
import { setupPrometheusOtlp, startPrometheusOtlp, type OtlpPrometheus } from '../support/prometheus-otlp.ts';
import { eventually } from '../support/operator.ts';
import { randomModel, spawnServer, type SpawnedServer } from '../support/server.ts';

const NS = 'otlp-ns';
const MODEL = 'm';
const NODE = 'node-a';
/** The series readSignals() queries (operator/src/aiops/signals.ts). */
const LOOP_SERIES = [
  'autoglm_num_requests_waiting',
  'autoglm_kv_cache_usage_perc',
  'autoglm_time_to_first_token_seconds_bucket',
  'autoglm_inter_token_latency_seconds_bucket',
  'autoglm_batch_size_bucket',
  'autoglm_response_bytes_uncompressed_total',
  'autoglm_compression_seconds_sum',
  'autoglm_response_drain_seconds_sum',
  'autoglm_response_drain_seconds_count',
  'autoglm_transport_bytes_total',
  'autoglm_transport_wait_seconds_total',
  'autoglm_compression_probe_bytes_uncompressed_total',
  'autoglm_compression_probe_bytes_compressed_total',
  'autoglm_compression_probe_seconds_total',
  'autoglm_compression_probes_total',
];
/** Settings the server measures on its sent bodies without serving them (the tuning file asks). */
const PROBED = [
  { algorithm: 'br', level: 4 },
  { algorithm: 'gzip', level: 6 },
] as const;
/** Labels that name where a series came from (scrape job or OTLP resource), not what it is. */
const ORIGIN_LABELS = new Set(['__name__', 'job', 'instance', 'le']);

let model: Awaited<ReturnType<typeof randomModel>> | undefined;
let otlpProm: OtlpPrometheus | undefined;
let scrapeProm: RunningPrometheus | undefined;
let server: SpawnedServer | undefined;
let dir: string | undefined;

/** The environment without any OTEL_* of the caller's, so only ours configure the exporter. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
}

async function startServer(modelDir: string, otlpEndpoint: string): Promise<SpawnedServer> {
  dir = await mkdtemp(join(tmpdir(), 'autoglm-otlp-'));
  const tuning = join(dir, 'tuning.json');
  await writeFile(
    tuning,
    JSON.stringify({
      apiVersion: 'serving.autoglm.io/v1alpha1',
      kind: 'ServingTuning',
      defaults: { compressionProbe: { settings: [...PROBED], cpuShare: 0.5 } },
    }),
  );
  // Compress where the client allows it, so a gzip arm is measured next to identity.
  const args = ['--model', modelDir, '--served-model-name', MODEL, '--compression', 'gzip:1'];
  return spawnServer([...args, '--tuning-file', tuning], {
    ...cleanEnv(),
    NODE_NAME: NODE,
    POD_NAMESPACE: NS,
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: otlpEndpoint,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
  });
}

/** One round: completions streamed and not, with and without gzip. */
async function traffic(url: string): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': i % 2 === 0 ? 'gzip' : 'identity' },
      body: JSON.stringify({
        model: MODEL,
        prompt: 'hello there',
        max_tokens: 16,
        ignore_eos: true,
        stream: i < 2,
      }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
}

/** The signals once they show every arm of node-a measured, each probed setting, and a TTFT. */
function complete(s: DeploymentSignals): DeploymentSignals | undefined {
  const node = s.nodes.get(NODE);
  const arms = node?.arms ?? [];
  const has = (algorithm: string) => arms.some((a) => a.arm.algorithm === algorithm && a.responses > 0);
  const probed = PROBED.every((p) => node?.probes.some((a) => a.arm.algorithm === p.algorithm));
  return s.ttftP99Ms > 0 && has('gzip') && has('none') && probed ? s : undefined;
}

/** Keeps traffic flowing until the loop's reader sees what it needs (increase() needs two samples). */
function signalsOf(prometheusUrl: string, url: string, what: string): Promise<DeploymentSignals> {
  const prom = new PrometheusClient(prometheusUrl);
  return eventually(
    `${what}: complete signals`,
    async () => {
      await traffic(url);
      return complete(await readSignals(prom, { namespace: NS, model: MODEL }, 60));
    },
    90_000,
  );
}

/** Each of the loop's series of this deployment, with its label names (origin labels left out). */
async function seriesShapes(prometheusUrl: string): Promise<Map<string, string>> {
  const prom = new PrometheusClient(prometheusUrl);
  const sel = `{__name__=~"${LOOP_SERIES.join('|')}",namespace="${NS}",model="${MODEL}"}`;
  const out = new Map<string, Set<string>>();
  for (const s of await prom.query(`last_over_time(${sel}[5m])`)) {
    const name = s.labels['__name__'] ?? '';
    const keys = out.get(name) ?? new Set<string>();
    for (const k of Object.keys(s.labels)) if (!ORIGIN_LABELS.has(k)) keys.add(k);
    out.set(name, keys);
  }
  return new Map([...out].map(([name, keys]) => [name, [...keys].sort().join(',')]));
}

/** Every `autoglm_*` series name of this deployment. */
async function names(prometheusUrl: string): Promise<string[]> {
  const prom = new PrometheusClient(prometheusUrl);
  const sel = `{__name__=~"autoglm_.+",namespace="${NS}",model="${MODEL}"}`;
  return (await prom.query(`count by (__name__) (last_over_time(${sel}[5m]))`))
    .map((s) => s.labels['__name__'] ?? '')
    .sort();
}

/** The path measured as responses drain, and the probed settings, and only those. */
function assertProbed(node: NodeSignals, path: string): void {
  // Loopback: responses may never wait on the path, which reads as an unbounded one.
  assert.ok(
    (node.pathBytesPerS ?? 0) > 0,
    `${path}: path measured as it drains: ${String(node.pathBytesPerS)}`,
  );
  assert.deepEqual(
    node.probes.map((a) => a.arm).sort((a, b) => a.algorithm.localeCompare(b.algorithm)),
    PROBED,
    `${path}: the probed settings, and only those`,
  );
  for (const a of node.probes) {
    const ratio = a.sentBytes / a.uncompressedBytes;
    assert.ok(a.responses >= 1 && ratio > 0 && ratio < 1, `${path}: probe measured: ${JSON.stringify(a)}`);
    assert.ok(a.compressSeconds > 0, `${path}: probe time counted`);
  }
}

function assertSensible(s: DeploymentSignals, path: string): void {
  const node = s.nodes.get(NODE);
  assert.ok(node !== undefined, `${path}: node ${NODE} in ${JSON.stringify([...s.nodes.keys()])}`);
  for (const v of [
    s.peakQueue,
    s.peakKvUsage,
    s.windowQueueSum,
    s.windowKvSum,
    s.windowQueueMax,
    s.windowKvMax,
  ])
    assert.ok(Number.isFinite(v) && v >= 0, `${path}: queue and KV numbers present: ${JSON.stringify(s)}`);
  assert.ok(s.peakKvUsage <= 1, `${path}: KV usage is a share`);
  assert.ok(s.ttftP99Ms > 0, `${path}: TTFT p99 ${String(s.ttftP99Ms)} ms`);
  assert.ok(s.itlP99Ms > 0 && s.itlP50Ms <= s.itlP99Ms, `${path}: ITL p50 ≤ p99`);
  // One request at a time: every step is in the first bucket (le=1), which interpolates below 1.
  assert.ok(s.batchP90 > 0 && s.batchP90 <= 1, `${path}: batch p90 ${String(s.batchP90)}`);
  const gzip = node.arms.find((a) => a.arm.algorithm === 'gzip');
  assert.deepEqual(gzip?.arm, { algorithm: 'gzip', level: 1 }, `${path}: gzip arm at the server's level`);
  // Drain time counts waits on the path only: on loopback a small body may have none at all.
  for (const a of node.arms) {
    const counted = a.responses > 0 && a.uncompressedBytes > 0 && a.sentBytes > 0;
    assert.ok(counted && a.drainSeconds >= 0, `${path}: arm measured: ${JSON.stringify(a)}`);
  }
  assert.ok(Number.isFinite(node.drainSecondsMean) && node.drainSecondsMean >= 0, `${path}: drain measured`);
  assertProbed(node, path);
}

describe('the tuning loop reads the servers by scrape and by OTLP push', () => {
  before(async () => {
    await setupPrometheus();
    await setupPrometheusOtlp();
    model = await randomModel('fast');
    otlpProm = await startPrometheusOtlp();
    server = await startServer(model.dir, otlpProm.otlpMetricsEndpoint);
    scrapeProm = await startPrometheus([
      { job: 'autoglm', target: new URL(server.url).host, labels: { namespace: NS } },
    ]);
  });

  after(async () => {
    if (server !== undefined) await server.stop();
    await scrapeProm?.stop();
    await otlpProm?.stop();
    await model?.cleanup();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('gets fresh, sensible signals by either path, from the same series', async (t) => {
    assert.ok(server !== undefined && otlpProm !== undefined && scrapeProm !== undefined);
    const pushed = await signalsOf(otlpProm.url, server.url, 'OTLP');
    assertSensible(pushed, 'OTLP');
    const scraped = await signalsOf(scrapeProm.url, server.url, 'scrape');
    assertSensible(scraped, 'scrape');
    for (const [path, s] of [
      ['OTLP', pushed],
      ['scrape', scraped],
    ] as const)
      t.diagnostic(`${path}: ${JSON.stringify({ ...s, nodes: Object.fromEntries(s.nodes) })}`);

    const [viaOtlp, viaScrape] = await Promise.all([
      seriesShapes(otlpProm.url),
      seriesShapes(scrapeProm.url),
    ]);
    assert.deepEqual(
      [...viaOtlp.keys()].sort(),
      [...LOOP_SERIES].sort(),
      'OTLP: every series the loop reads',
    );
    assert.deepEqual(viaOtlp, viaScrape, 'the same names and label names by both paths');
    t.diagnostic(`series: ${JSON.stringify(Object.fromEntries(viaOtlp))}`);
    // Beyond the loop's: whatever the push sends lands under a name the scrape endpoint serves.
    const [pushedNames, scrapedNames] = await Promise.all([names(otlpProm.url), names(scrapeProm.url)]);
    assert.deepEqual(
      pushedNames.filter((n) => !scrapedNames.includes(n)),
      [],
      'no OTLP-only names',
    );
    assert.match(viaOtlp.get('autoglm_num_requests_waiting') ?? '', /^model,namespace,node$/);
  });
});
