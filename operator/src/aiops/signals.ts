/**
 * What the loop reads about one deployment, per deployment and per node, in PromQL. Servers
 * label every series with `model` (the served name) and `node`; the scrape adds `namespace`.
 */
import { MetricsUnavailable, type PrometheusClient, type Sample } from './prometheus.ts';
import type { Arm, ArmStats } from './policies/compression.ts';

export interface Target {
  readonly namespace: string;
  readonly model: string;
}

export interface NodeSignals {
  /** The settings responses were served with, in the window. */
  readonly arms: ArmStats[];
  /** Settings measured on sent bodies without serving them; `responses` counts measurements. */
  readonly probes: ArmStats[];
  readonly drainSecondsMean: number;
  /**
   * The path's bandwidth while it was the limit: bytes that waited on it over the node's time
   * spent waiting, counted as they wait (see pathSignals). Infinity when nothing waited.
   */
  readonly pathBytesPerS?: number;
}

export interface DeploymentSignals {
  readonly peakQueue: number;
  readonly peakKvUsage: number;
  readonly windowQueueSum: number;
  readonly windowKvSum: number;
  readonly windowQueueMax: number;
  readonly windowKvMax: number;
  readonly ttftP99Ms: number;
  readonly itlP99Ms: number;
  readonly itlP50Ms: number;
  readonly batchP90: number;
  readonly nodes: ReadonlyMap<string, NodeSignals>;
}

/** Older than this, a server's newest sample means it is not being scraped. */
export const STALE_AFTER_S = 60;

const esc = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"');
export const selector = (t: Target) => `{namespace="${esc(t.namespace)}",model="${esc(t.model)}"}`;

function quantileMs(q: number, metric: string, sel: string): string {
  return `histogram_quantile(${String(q)}, sum by (le) (rate(${metric}_bucket${sel}[1m]))) * 1000`;
}

const label = (s: Sample, k: string) => s.labels[k] ?? '';
const armLabels = (s: Sample) => `${label(s, 'node')}|${label(s, 'encoding')}|${label(s, 'level')}`;

function byArm(samples: readonly Sample[]): Map<string, number> {
  return new Map(samples.map((s) => [armLabels(s), s.value]));
}

function armOf(encoding: string, level: string): Arm | undefined {
  if (encoding === 'identity') return { algorithm: 'none', level: 0 };
  if (encoding === 'gzip' || encoding === 'br') return { algorithm: encoding, level: Number(level) };
  return undefined;
}

/** A counter's increase over the arms' 5-minute window, per node and setting. */
function armQuery(prom: PrometheusClient, sel: string, metric: string): Promise<Sample[]> {
  return prom.query(`sum by (node, encoding, level) (increase(${metric}${sel}[5m]))`);
}

/** The other window totals of a setting, keyed by armLabels. */
interface ArmTotals {
  readonly sent: ReadonlyMap<string, number>;
  readonly compress: ReadonlyMap<string, number>;
  readonly count: ReadonlyMap<string, number>;
  readonly drain?: ReadonlyMap<string, number>;
}

/** One setting's stats from its uncompressed-bytes sample; undefined for no bytes or no known setting. */
function armStats(bytes: Sample, t: ArmTotals): ArmStats | undefined {
  const arm = armOf(label(bytes, 'encoding'), label(bytes, 'level'));
  if (arm === undefined || bytes.value <= 0) return undefined;
  const key = armLabels(bytes);
  return {
    arm,
    responses: Math.round(t.count.get(key) ?? 0),
    uncompressedBytes: bytes.value,
    sentBytes: t.sent.get(key) ?? 0,
    compressSeconds: t.compress.get(key) ?? 0,
    drainSeconds: t.drain?.get(key) ?? 0,
  };
}

/** Settings measured without serving them, per node. */
async function probeSignals(prom: PrometheusClient, sel: string): Promise<Map<string, ArmStats[]>> {
  const q = (metric: string) => armQuery(prom, sel, metric);
  const [bytes, sent, compress, count] = await Promise.all([
    q('autoglm_compression_probe_bytes_uncompressed_total'),
    q('autoglm_compression_probe_bytes_compressed_total'),
    q('autoglm_compression_probe_seconds_total'),
    q('autoglm_compression_probes_total'),
  ]);
  const totals = { sent: byArm(sent), compress: byArm(compress), count: byArm(count) };
  const nodes = new Map<string, ArmStats[]>();
  for (const s of bytes) {
    const stats = armStats(s, totals);
    if (stats === undefined) continue;
    nodes.set(label(s, 'node'), [...(nodes.get(label(s, 'node')) ?? []), stats]);
  }
  return nodes;
}

/** Bytes per second of waiting, per node that waited on its path in the window at all. */
function bandwidths(bytes: readonly Sample[], wait: readonly Sample[]): Map<string, number> {
  const b = new Map(bytes.map((x) => [label(x, 'node'), x.value]));
  const out = new Map<string, number>();
  for (const w of wait) if (w.value > 0) out.set(label(w, 'node'), (b.get(label(w, 'node')) ?? 0) / w.value);
  return out;
}

/**
 * Each node's path, from what waited on it while responses were still going: the slower of the
 * last minute and the last 15 seconds (where scrapes come that often). A path that slows is seen
 * within seconds; one that recovers is trusted once the minute says so too, which costs at most a
 * minute of compression that no longer pays. A node whose responses did not wait in the last
 * minute keeps the last 5 minutes' path: compressed bodies that fit in the socket's buffer wait
 * on no path, slow or not. Absent where nothing waited in 5 minutes: the path was never the limit.
 */
async function pathSignals(prom: PrometheusClient, sel: string): Promise<Map<string, number>> {
  const window = async (w: string) => {
    const q = (metric: string) => prom.query(`sum by (node) (increase(${metric}${sel}[${w}]))`);
    const [bytes, wait] = await Promise.all([
      q('autoglm_transport_bytes_total'),
      q('autoglm_transport_wait_seconds_total'),
    ]);
    return bandwidths(bytes, wait);
  };
  const [now, minute, past] = await Promise.all([window('15s'), window('1m'), window('5m')]);
  const out = new Map(past);
  for (const [node, bw] of minute) out.set(node, Math.min(bw, now.get(node) ?? Infinity));
  return out;
}

async function nodeSignals(prom: PrometheusClient, sel: string): Promise<Map<string, NodeSignals>> {
  const q = (metric: string) => armQuery(prom, sel, metric);
  const [bytes, sent, compress, drain, count, probes, paths] = await Promise.all([
    q('autoglm_response_bytes_uncompressed_total'),
    q('autoglm_response_bytes_sent_total'),
    q('autoglm_compression_seconds_sum'),
    q('autoglm_response_drain_seconds_sum'),
    q('autoglm_response_drain_seconds_count'),
    probeSignals(prom, sel),
    // The path now: arms keep their ratio and CPU cost, a path can change within a minute.
    pathSignals(prom, sel),
  ]);
  const totals = { sent: byArm(sent), compress: byArm(compress), count: byArm(count), drain: byArm(drain) };
  const nodes = new Map<string, { arms: ArmStats[]; drain: number; responses: number }>();
  for (const s of bytes) {
    const node = label(s, 'node');
    const key = armLabels(s);
    const entry = nodes.get(node) ?? { arms: [], drain: 0, responses: 0 };
    const stats = armStats(s, totals);
    if (stats !== undefined) entry.arms.push(stats);
    entry.drain += totals.drain.get(key) ?? 0;
    entry.responses += Math.round(totals.count.get(key) ?? 0);
    nodes.set(node, entry);
  }
  return new Map(
    [...nodes].map(([node, e]) => {
      const path = paths.get(node) ?? Infinity;
      const signals: NodeSignals = {
        arms: e.arms,
        probes: probes.get(node) ?? [],
        drainSecondsMean: e.responses > 0 ? e.drain / e.responses : 0,
        pathBytesPerS: path,
      };
      return [node, signals];
    }),
  );
}

/** Reads every signal, or throws MetricsUnavailable when the servers are not (freshly) scraped. */
export async function readSignals(
  prom: PrometheusClient,
  t: Target,
  stabilizationS: number,
): Promise<DeploymentSignals> {
  const sel = selector(t);
  const age = await prom.query(`time() - max(timestamp(autoglm_num_requests_waiting${sel}))`);
  const [newest] = age;
  if (newest === undefined)
    throw new MetricsUnavailable('NoSeries', `no autoglm_num_requests_waiting${sel} series in Prometheus`);
  if (newest.value > STALE_AFTER_S)
    throw new MetricsUnavailable('StaleMetrics', `the newest sample is ${newest.value.toFixed(0)} s old`);
  const win = `[${String(Math.max(60, stabilizationS))}s]`;
  const [
    peakQueue,
    peakKvUsage,
    windowQueueSum,
    windowKvSum,
    windowQueueMax,
    windowKvMax,
    ttftP99Ms,
    itlP99Ms,
    itlP50Ms,
    batchP90,
    nodes,
  ] = await Promise.all([
    prom.scalar(`max(max_over_time(autoglm_num_requests_waiting${sel}[1m]))`),
    prom.scalar(`max(max_over_time(autoglm_kv_cache_usage_perc${sel}[1m]))`),
    prom.scalar(`sum(max_over_time(autoglm_num_requests_waiting${sel}${win}))`),
    prom.scalar(`sum(max_over_time(autoglm_kv_cache_usage_perc${sel}${win}))`),
    prom.scalar(`max(max_over_time(autoglm_num_requests_waiting${sel}${win}))`),
    prom.scalar(`max(max_over_time(autoglm_kv_cache_usage_perc${sel}${win}))`),
    prom.scalar(quantileMs(0.99, 'autoglm_time_to_first_token_seconds', sel)),
    prom.scalar(quantileMs(0.99, 'autoglm_inter_token_latency_seconds', sel)),
    prom.scalar(quantileMs(0.5, 'autoglm_inter_token_latency_seconds', sel)),
    prom.scalar(`histogram_quantile(0.9, sum by (le) (rate(autoglm_batch_size_bucket${sel}[1m])))`),
    nodeSignals(prom, sel),
  ]);
  return {
    peakQueue,
    peakKvUsage,
    windowQueueSum,
    windowKvSum,
    windowQueueMax,
    windowKvMax,
    ttftP99Ms,
    itlP99Ms,
    itlP50Ms,
    batchP90,
    nodes,
  };
}
