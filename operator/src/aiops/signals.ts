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
  readonly arms: ArmStats[];
  readonly drainSecondsMean: number;
  /** Bytes sent over drain time in the last minute; absent when nothing drained in it. */
  readonly pathBytesPerS?: number;
}

export interface DeploymentSignals {
  readonly peakQueue: number;
  readonly peakKvUsage: number;
  readonly windowQueueSum: number;
  readonly windowKvSum: number;
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

async function nodeSignals(prom: PrometheusClient, sel: string): Promise<Map<string, NodeSignals>> {
  const by = 'sum by (node, encoding, level)';
  const w = '[5m]';
  const [bytes, sent, compress, drain, count, recentSent, recentDrain] = await Promise.all([
    prom.query(`${by} (increase(autoglm_response_bytes_uncompressed_total${sel}${w}))`),
    prom.query(`${by} (increase(autoglm_response_bytes_sent_total${sel}${w}))`),
    prom.query(`${by} (increase(autoglm_compression_seconds_sum${sel}${w}))`),
    prom.query(`${by} (increase(autoglm_response_drain_seconds_sum${sel}${w}))`),
    prom.query(`${by} (increase(autoglm_response_drain_seconds_count${sel}${w}))`),
    // The path now: arms keep their ratio and CPU cost, a path can change within a minute.
    prom.query(`sum by (node) (increase(autoglm_response_bytes_sent_total${sel}[1m]))`),
    prom.query(`sum by (node) (increase(autoglm_response_drain_seconds_sum${sel}[1m]))`),
  ]);
  const b = byArm(sent);
  const c = byArm(compress);
  const d = byArm(drain);
  const n = byArm(count);
  const nodes = new Map<string, { arms: ArmStats[]; drain: number; responses: number }>();
  const at = (m: Map<string, number>, key: string) => m.get(key) ?? 0;
  for (const s of bytes) {
    const node = label(s, 'node');
    const arm = armOf(label(s, 'encoding'), label(s, 'level'));
    const key = armLabels(s);
    const entry = nodes.get(node) ?? { arms: [], drain: 0, responses: 0 };
    const responses = Math.round(at(n, key));
    if (arm !== undefined && s.value > 0) {
      entry.arms.push({
        arm,
        responses,
        uncompressedBytes: s.value,
        sentBytes: at(b, key),
        compressSeconds: at(c, key),
        drainSeconds: at(d, key),
      });
    }
    entry.drain += at(d, key);
    entry.responses += responses;
    nodes.set(node, entry);
  }
  const recent = (samples: readonly Sample[]) => new Map(samples.map((x) => [label(x, 'node'), x.value]));
  const rs = recent(recentSent);
  const rd = recent(recentDrain);
  return new Map(
    [...nodes].map(([node, e]) => {
      const seconds = rd.get(node) ?? 0;
      const signals: NodeSignals = {
        arms: e.arms,
        drainSecondsMean: e.responses > 0 ? e.drain / e.responses : 0,
        ...(seconds > 0 ? { pathBytesPerS: (rs.get(node) ?? 0) / seconds } : {}),
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
    ttftP99Ms,
    itlP99Ms,
    itlP50Ms,
    batchP90,
    nodes,
  };
}
