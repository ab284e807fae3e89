/**
 * The server's Prometheus metrics: vLLM's names and meaning under an `autoglm_` prefix, the
 * Gateway API Inference Extension's model-server gauges, and the transport measurements
 * the tuning loop reads. One registry per ServerMetrics (never prom-client's global one), and
 * every series carries `model` and `node`. docs/metrics.md lists each series.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  FINISH_REASONS,
  type EngineObserver,
  type GenerationResult,
  type StepStats,
} from '../../engine/types.ts';
import { BUCKETS, GenerationTally, nodeName, requestPhases, tokenBuckets } from './series.ts';

export const METRIC_PREFIX = 'autoglm_';

export interface ServerMetricsOptions {
  /** The served model name, as clients send it in `model`. */
  readonly model: string;
  /** Defaults to NODE_NAME, then the hostname. */
  readonly node?: string | undefined;
  /** Execution provider the model runs on (cpu, cuda, webgpu); see setDevice. */
  readonly device?: string | undefined;
  /** Upper bound of the per-request token histograms; defaults to 32768. */
  readonly maxModelLen?: number | undefined;
  /** Also told of every response: the OTLP mirror (OtlpEngineMetrics), when metrics are pushed. */
  readonly responseMirror?: TransportObserver | undefined;
}

/** What the HTTP layer measures about sending responses, for the tuning loop. */
export interface TransportObserver {
  observeResponse(o: ResponseObservation): void;
  /** Bytes that waited on a client's path, and the node's seconds of waiting they add (PathMeter). */
  observePathWait(bytes: number, waitSeconds: number): void;
  observeProbe(p: ProbeObservation): void;
}

/** One measurement of a compression setting on a body it was not sent with. */
export interface ProbeObservation {
  readonly encoding: 'gzip' | 'br';
  readonly level: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly seconds: number;
}

/** One HTTP response, measured by the HTTP layer once the client has it all. */
export interface ResponseObservation {
  /** The route pattern (`/v1/chat/completions`), never the raw URL. */
  readonly route: string;
  /** Content-Encoding sent: identity, gzip, br, zstd. */
  readonly encoding: string;
  /** Compression level in effect; omitted for identity. */
  readonly level?: number | string | undefined;
  /** Body bytes before compression. */
  readonly bytesIn: number;
  /** Body bytes written to the socket. */
  readonly bytesOut: number;
  /** Seconds spent inside the compressor over the whole response. */
  readonly compressSeconds: number;
  /** Seconds the response waited on the client's path, in all (PathMeter); omitted if it never finished. */
  readonly drainSeconds?: number | undefined;
}

/** The KV cache's geometry, for the endpoint picker's prefix-cache scorer. */
export interface CacheConfig {
  readonly blockSize: number;
  readonly numBlocks: number;
}

export type TuningParams = Readonly<Record<string, number | string>>;

type Labels<T extends string> = Partial<Record<T, string | number>>;

function gauge<T extends string = never>(
  r: Registry,
  name: string,
  help: string,
  labelNames: readonly T[] = [],
): Gauge<T> {
  return new Gauge<T>({ name: METRIC_PREFIX + name, help, labelNames, registers: [r] });
}

function counter<T extends string = never>(
  r: Registry,
  name: string,
  help: string,
  labelNames: readonly T[] = [],
): Counter<T> {
  return new Counter<T>({ name: METRIC_PREFIX + name, help, labelNames, registers: [r] });
}

function histogram<T extends string = never>(
  r: Registry,
  name: string,
  help: string,
  buckets: readonly number[],
  labelNames: readonly T[] = [],
): Histogram<T> {
  return new Histogram<T>({
    name: METRIC_PREFIX + name,
    help,
    buckets: [...buckets],
    labelNames,
    registers: [r],
  });
}

function engineSeries(r: Registry, maxModelLen: number) {
  const tokens = tokenBuckets(maxModelLen);
  return {
    running: gauge(r, 'num_requests_running', 'Number of requests in model execution batches.'),
    waiting: gauge(r, 'num_requests_waiting', 'Number of requests waiting to be processed.'),
    kvUsage: gauge(r, 'kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.'),
    preemptions: counter(r, 'num_preemptions_total', 'Cumulative number of preemptions.'),
    promptTokens: counter(r, 'prompt_tokens_total', 'Number of prefill tokens processed.'),
    generationTokens: counter(r, 'generation_tokens_total', 'Number of tokens generated.'),
    success: counter(r, 'request_success_total', 'Count of finished requests.', ['finished_reason']),
    ttft: histogram(r, 'time_to_first_token_seconds', 'Time to first token.', BUCKETS.ttft),
    itl: histogram(r, 'inter_token_latency_seconds', 'Inter-token latency.', BUCKETS.itl),
    tpot: histogram(
      r,
      'request_time_per_output_token_seconds',
      'Mean time per output token after the first, per request.',
      BUCKETS.itl,
    ),
    e2e: histogram(r, 'e2e_request_latency_seconds', 'End-to-end request latency.', BUCKETS.request),
    queue: histogram(r, 'request_queue_time_seconds', 'Time spent waiting.', BUCKETS.request),
    inference: histogram(
      r,
      'request_inference_time_seconds',
      'Time spent running (prefill and decode).',
      BUCKETS.request,
    ),
    prefill: histogram(r, 'request_prefill_time_seconds', 'Time in prefill.', BUCKETS.request),
    decode: histogram(r, 'request_decode_time_seconds', 'Time in decode.', BUCKETS.request),
    requestPrompt: histogram(r, 'request_prompt_tokens', 'Prompt tokens per request.', tokens),
    requestGeneration: histogram(r, 'request_generation_tokens', 'Generated tokens per request.', tokens),
    iterationTokens: histogram(
      r,
      'iteration_tokens_total',
      'Tokens scheduled per engine step.',
      BUCKETS.iterationTokens,
    ),
    batchSize: histogram(r, 'batch_size', 'Sequences per engine step.', BUCKETS.batchSize),
    stepSeconds: histogram(r, 'engine_step_seconds', 'Duration of one engine step.', BUCKETS.step),
  };
}

const RESPONSE_LABELS = ['route', 'encoding', 'level'] as const;
const PROBE_LABELS = ['encoding', 'level'] as const;

function serverSeries(r: Registry) {
  return {
    device: gauge(r, 'device_info', 'Execution provider the model runs on.', ['device']),
    cacheConfig: gauge(r, 'cache_config_info', 'KV cache geometry.', ['block_size', 'num_gpu_blocks']),
    http: counter(r, 'http_requests_total', 'HTTP requests by route and status.', ['route', 'status']),
    errors: counter(r, 'errors_total', 'Errors by catalog code.', ['code']),
    bytesIn: counter(
      r,
      'response_bytes_uncompressed_total',
      'Response body bytes before compression.',
      RESPONSE_LABELS,
    ),
    bytesOut: counter(
      r,
      'response_bytes_sent_total',
      'Response body bytes written to the socket.',
      RESPONSE_LABELS,
    ),
    compression: histogram(
      r,
      'compression_seconds',
      'Time spent compressing one response.',
      BUCKETS.compression,
      RESPONSE_LABELS,
    ),
    drain: histogram(
      r,
      'response_drain_seconds',
      "Time one response waited for the socket to take its body, in all, the process's own busy spells taken out.",
      BUCKETS.drain,
      RESPONSE_LABELS,
    ),
    transportBytes: counter(
      r,
      'transport_bytes_total',
      "Response body bytes that waited on the client's path, counted as each wait ends.",
    ),
    transportWait: counter(
      r,
      'transport_wait_seconds_total',
      "Seconds during which at least one response waited on its client's path (the socket full, the process's own busy spells taken out), counted as each wait ends.",
    ),
    probeBytesIn: counter(
      r,
      'compression_probe_bytes_uncompressed_total',
      'Bytes of sent bodies compressed again to measure a setting not in force.',
      PROBE_LABELS,
    ),
    probeBytesOut: counter(
      r,
      'compression_probe_bytes_compressed_total',
      'What those measurements compressed the bodies to (and threw away).',
      PROBE_LABELS,
    ),
    probeSeconds: counter(
      r,
      'compression_probe_seconds_total',
      'Time those measurements spent compressing.',
      PROBE_LABELS,
    ),
    probes: counter(r, 'compression_probes_total', 'Measurements of settings not in force.', PROBE_LABELS),
    tuningValue: gauge(r, 'tuning_value', 'Live numeric tuning parameters.', ['param']),
    tuningErrors: counter(r, 'tuning_errors_total', 'Tuning updates that failed to apply.', ['param']),
  };
}

const TUNING_INFO = `${METRIC_PREFIX}tuning_info`;
const RESERVED_LABELS = new Set(['model', 'node', 'le', 'quantile']);

/** A tuning parameter's name as a Prometheus label name. */
export function tuningLabelName(param: string): string {
  let name = param.replace(/[^a-zA-Z0-9_]/g, '_');
  if (!/^[a-zA-Z_]/.test(name)) name = `_${name}`;
  if (name.startsWith('__')) name = `p${name}`;
  return RESERVED_LABELS.has(name) ? `param_${name}` : name;
}

const finite = (x: number): boolean => Number.isFinite(x) && x >= 0;

export class ServerMetrics implements EngineObserver, TransportObserver {
  readonly registry = new Registry();
  readonly model: string;
  readonly node: string;
  readonly #engine: ReturnType<typeof engineSeries>;
  readonly #server: ReturnType<typeof serverSeries>;
  readonly #tally = new GenerationTally();
  readonly #mirror: ServerMetricsOptions['responseMirror'];
  #tuningInfo: Gauge | undefined;
  #tuningInfoKeys = '';

  constructor(options: ServerMetricsOptions) {
    this.model = options.model;
    this.node = options.node ?? nodeName();
    this.#mirror = options.responseMirror;
    this.registry.setDefaultLabels({ model: this.model, node: this.node });
    this.#engine = engineSeries(this.registry, options.maxModelLen ?? 32768);
    this.#server = serverSeries(this.registry);
    for (const reason of FINISH_REASONS) this.#engine.success.inc({ finished_reason: reason }, 0);
    if (options.device !== undefined) this.setDevice(options.device);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for GET /metrics. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  // ---- EngineObserver -------------------------------------------------------------------

  onStep(stats: StepStats): void {
    const e = this.#engine;
    e.running.set(stats.running);
    e.waiting.set(stats.waiting);
    e.kvUsage.set(Math.min(1, Math.max(0, stats.kvUsage)));
    const tokens = stats.prefillTokens + stats.decodeTokens;
    if (tokens <= 0) return; // an idle step says nothing about step size or speed
    if (stats.batchSize > 0) e.batchSize.observe(stats.batchSize);
    e.iterationTokens.observe(tokens);
    e.stepSeconds.observe(stats.stepSeconds);
  }

  onFirstToken(requestId: string, secondsSinceArrival: number): void {
    this.#tally.token(requestId);
    this.#engine.generationTokens.inc();
    this.#engine.ttft.observe(secondsSinceArrival);
  }

  onToken(requestId: string, secondsSinceLastToken: number): void {
    this.#tally.token(requestId);
    this.#engine.generationTokens.inc();
    this.#engine.itl.observe(secondsSinceLastToken);
  }

  onPreempt(): void {
    this.#engine.preemptions.inc();
  }

  onFinish(requestId: string, result: GenerationResult): void {
    const e = this.#engine;
    const { uncounted, sawFirst } = this.#tally.settle(requestId, result.completionTokens);
    if (uncounted > 0) e.generationTokens.inc(uncounted);
    if (!sawFirst && result.timeToFirstToken !== undefined) e.ttft.observe(result.timeToFirstToken);
    e.success.inc({ finished_reason: result.finishReason });
    e.promptTokens.inc(result.promptTokens);
    e.requestPrompt.observe(result.promptTokens);
    e.requestGeneration.observe(result.completionTokens);
    e.e2e.observe(result.totalSeconds);
    const p = requestPhases(result);
    e.queue.observe(p.queue);
    e.inference.observe(p.inference);
    if (p.prefill !== undefined) e.prefill.observe(p.prefill);
    if (p.decode !== undefined) e.decode.observe(p.decode);
    if (p.timePerOutputToken !== undefined) e.tpot.observe(p.timePerOutputToken);
  }

  // ---- server state ---------------------------------------------------------------------

  /** `autoglm_device_info{device}` = 1 for the execution provider in use. */
  setDevice(device: string): void {
    this.#server.device.reset();
    this.#server.device.set({ device }, 1);
  }

  /** `autoglm_cache_config_info{block_size,num_gpu_blocks}` = 1, as vLLM's cache_config_info. */
  setCacheConfig(config: CacheConfig): void {
    this.#server.cacheConfig.reset();
    this.#server.cacheConfig.set({ block_size: config.blockSize, num_gpu_blocks: config.numBlocks }, 1);
  }

  /** One finished HTTP request; `route` is the route pattern, not the URL. */
  countHttpRequest(route: string, status: number): void {
    this.#server.http.inc({ route, status: String(status) });
  }

  /** One error by its catalog code (errors.ts) or OpenAI error code. */
  countError(code: string): void {
    this.#server.errors.inc({ code });
  }

  observeResponse(o: ResponseObservation): void {
    const s = this.#server;
    const labels: Labels<(typeof RESPONSE_LABELS)[number]> = {
      route: o.route,
      encoding: o.encoding,
      level: o.level ?? 'none',
    };
    if (finite(o.bytesIn)) s.bytesIn.inc(labels, o.bytesIn);
    if (finite(o.bytesOut)) s.bytesOut.inc(labels, o.bytesOut);
    if (o.encoding !== 'identity' && finite(o.compressSeconds)) {
      s.compression.observe(labels, o.compressSeconds);
    }
    if (o.drainSeconds !== undefined && finite(o.drainSeconds)) {
      s.drain.observe(labels, o.drainSeconds);
    }
    this.#mirror?.observeResponse(o);
  }

  observePathWait(bytes: number, waitSeconds: number): void {
    const s = this.#server;
    if (finite(bytes)) s.transportBytes.inc(bytes);
    if (finite(waitSeconds)) s.transportWait.inc(waitSeconds);
    this.#mirror?.observePathWait(bytes, waitSeconds);
  }

  observeProbe(p: ProbeObservation): void {
    const s = this.#server;
    const labels = { encoding: p.encoding, level: p.level };
    if (!finite(p.bytesIn) || !finite(p.bytesOut) || !finite(p.seconds)) return;
    s.probeBytesIn.inc(labels, p.bytesIn);
    s.probeBytesOut.inc(labels, p.bytesOut);
    s.probeSeconds.inc(labels, p.seconds);
    s.probes.inc(labels);
    this.#mirror?.observeProbe(p);
  }

  /**
   * Replaces the published tuning state: each numeric parameter becomes
   * `autoglm_tuning_value{param}`, and the string ones together become one
   * `autoglm_tuning_info{<param>="<value>",…} 1` series. Parameters absent from `params`
   * disappear.
   */
  setTuning(params: TuningParams): void {
    if (typeof params['compression'] === 'string') this.#zeroResponseSeries(params['compression']);
    const strings: Record<string, string> = {};
    this.#server.tuningValue.reset();
    for (const [param, value] of Object.entries(params)) {
      if (typeof value === 'string') strings[tuningLabelName(param)] = value;
      else if (Number.isFinite(value)) this.#server.tuningValue.set({ param }, value);
    }
    this.#setTuningInfo(strings);
  }

  /** A tuning update the server could not apply; `param` names the offending parameter. */
  countTuningError(param: string): void {
    this.#server.tuningErrors.inc({ param });
  }

  /**
   * Creates the response series of the compression setting now in force (and of identity, which
   * clients that accept no encoding get) at zero. A series born at its first response hides that
   * response from increase(), and the tuning loop counts responses per setting that way.
   */
  #zeroResponseSeries(compression: string): void {
    const [algorithm = 'none', level = '0'] = compression.split(':');
    const settings = [{ encoding: 'identity', level: '0' }];
    if (algorithm === 'gzip' || algorithm === 'br') settings.push({ encoding: algorithm, level });
    const s = this.#server;
    for (const route of ['chat', 'completions']) {
      for (const { encoding, level: l } of settings) {
        const labels = { route, encoding, level: l };
        s.bytesIn.inc(labels, 0);
        s.bytesOut.inc(labels, 0);
        s.drain.zero(labels);
        if (encoding !== 'identity') s.compression.zero(labels);
      }
    }
  }

  #setTuningInfo(labels: Record<string, string>): void {
    const keys = Object.keys(labels).sort();
    const signature = keys.join(',');
    if (signature !== this.#tuningInfoKeys || this.#tuningInfo === undefined) {
      // prom-client fixes label names at creation, so a new set of names means a new gauge.
      this.registry.removeSingleMetric(TUNING_INFO);
      this.#tuningInfo = undefined;
      this.#tuningInfoKeys = signature;
      if (keys.length === 0) return;
      this.#tuningInfo = new Gauge({
        name: TUNING_INFO,
        help: 'Live string-valued tuning parameters, one label each.',
        labelNames: keys,
        registers: [this.registry],
      });
    }
    this.#tuningInfo.reset();
    this.#tuningInfo.set(labels, 1);
  }
}
