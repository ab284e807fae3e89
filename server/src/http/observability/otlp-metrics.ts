/**
 * The engine's key measurements as OpenTelemetry instruments, pushed over OTLP when
 * startTracing() has set up a meter provider (OTEL_METRICS_EXPORTER / OTLP endpoint).
 * Names and units are chosen so that Prometheus's OTLP receiver, with its default
 * translation (UnderscoreEscapingWithSuffixes), yields exactly the names the /metrics
 * endpoint serves: `autoglm.time_to_first_token` with unit `s` becomes
 * `autoglm_time_to_first_token_seconds`, the counter `autoglm.prompt_tokens` becomes
 * `autoglm_prompt_tokens_total`. docs/metrics.md has the table.
 *
 * Besides the engine's measurements, it mirrors the series the tuning loop reads (batch size
 * and the per-response transport measurements), and labels every point with `namespace`
 * (POD_NAMESPACE) as well as `model` and `node`: a scrape gets `namespace` from the target,
 * a push has no target, so the loop's selectors match either path.
 *
 * Construct it after startTracing(): the OpenTelemetry API hands out no-op meters until a
 * provider is registered, and an instrument made from a no-op meter stays a no-op.
 */
import {
  metrics,
  ValueType,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type ObservableGauge,
} from '@opentelemetry/api';
import type { EngineObserver, GenerationResult, StepStats } from '../../engine/types.ts';
import type { ProbeObservation, ResponseObservation, TransportObserver } from './metrics.ts';
import { BUCKETS, GenerationTally, nodeName, requestPhases } from './series.ts';

export const METER_NAME = 'autoglm';

export interface OtlpEngineMetricsOptions {
  readonly model: string;
  /** Defaults to NODE_NAME, then the hostname. */
  readonly node?: string | undefined;
  /** The `namespace` attribute; defaults to POD_NAMESPACE, and is left out when neither is set. */
  readonly namespace?: string | undefined;
  /** Defaults to the global meter provider's `autoglm` meter. */
  readonly meter?: Meter | undefined;
}

function seconds(meter: Meter, name: string, description: string, buckets: readonly number[]) {
  return meter.createHistogram(`autoglm.${name}`, {
    description,
    unit: 's',
    valueType: ValueType.DOUBLE,
    advice: { explicitBucketBoundaries: [...buckets] },
  });
}

function count(meter: Meter, name: string, description: string, unit: string): Counter {
  return meter.createCounter(`autoglm.${name}`, { description, unit, valueType: ValueType.INT });
}

function level(meter: Meter, name: string, description: string, unit: string): ObservableGauge {
  return meter.createObservableGauge(`autoglm.${name}`, { description, unit });
}

interface Instruments {
  readonly ttft: Histogram;
  readonly itl: Histogram;
  readonly tpot: Histogram;
  readonly e2e: Histogram;
  readonly queue: Histogram;
  readonly iterationTokens: Histogram;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly success: Counter;
  readonly preemptions: Counter;
  readonly batchSize: Histogram;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly compression: Histogram;
  readonly drain: Histogram;
  readonly transportBytes: Counter;
  readonly transportWait: Counter;
  readonly probeBytesIn: Counter;
  readonly probeBytesOut: Counter;
  readonly probeSeconds: Counter;
  readonly probes: Counter;
}

function instruments(meter: Meter): Instruments {
  return {
    ttft: seconds(meter, 'time_to_first_token', 'Time to first token.', BUCKETS.ttft),
    itl: seconds(meter, 'inter_token_latency', 'Inter-token latency.', BUCKETS.itl),
    tpot: seconds(
      meter,
      'request_time_per_output_token',
      'Mean time per output token after the first, per request.',
      BUCKETS.itl,
    ),
    e2e: seconds(meter, 'e2e_request_latency', 'End-to-end request latency.', BUCKETS.request),
    queue: seconds(meter, 'request_queue_time', 'Time spent waiting.', BUCKETS.request),
    iterationTokens: meter.createHistogram('autoglm.iteration_tokens_total', {
      description: 'Tokens scheduled per engine step.',
      unit: '{token}',
      valueType: ValueType.INT,
      advice: { explicitBucketBoundaries: [...BUCKETS.iterationTokens] },
    }),
    promptTokens: count(meter, 'prompt_tokens', 'Number of prefill tokens processed.', '{token}'),
    generationTokens: count(meter, 'generation_tokens', 'Number of tokens generated.', '{token}'),
    success: count(meter, 'request_success', 'Count of finished requests.', '{request}'),
    preemptions: count(meter, 'num_preemptions', 'Cumulative number of preemptions.', '{preemption}'),
    batchSize: meter.createHistogram('autoglm.batch_size', {
      description: 'Sequences per engine step.',
      unit: '{sequence}',
      valueType: ValueType.INT,
      advice: { explicitBucketBoundaries: [...BUCKETS.batchSize] },
    }),
    // Unit By: the names already hold the token `bytes`, so the receiver adds only `_total`.
    bytesIn: count(meter, 'response_bytes_uncompressed', 'Response body bytes before compression.', 'By'),
    bytesOut: count(meter, 'response_bytes_sent', 'Response body bytes written to the socket.', 'By'),
    compression: seconds(meter, 'compression', 'Time spent compressing one response.', BUCKETS.compression),
    drain: seconds(
      meter,
      'response_drain',
      "Time one response waited for the socket to take its body, in all, the process's own busy spells taken out.",
      BUCKETS.drain,
    ),
    transportBytes: count(
      meter,
      'transport_bytes',
      "Response body bytes that waited on the client's path, counted as each wait ends.",
      'By',
    ),
    transportWait: meter.createCounter('autoglm.transport_wait', {
      description:
        "Seconds during which at least one response waited on its client's path (the socket full, the process's own busy spells taken out), counted as each wait ends.",
      unit: 's',
      valueType: ValueType.DOUBLE,
    }),
    probeBytesIn: count(
      meter,
      'compression_probe_bytes_uncompressed',
      'Bytes of sent bodies compressed again to measure a setting not in force.',
      'By',
    ),
    probeBytesOut: count(
      meter,
      'compression_probe_bytes_compressed',
      'What those measurements compressed the bodies to (and threw away).',
      'By',
    ),
    probeSeconds: meter.createCounter('autoglm.compression_probe', {
      description: 'Time those measurements spent compressing.',
      unit: 's',
      valueType: ValueType.DOUBLE,
    }),
    probes: count(meter, 'compression_probes', 'Measurements of settings not in force.', '{probe}'),
  };
}

const finite = (x: number): boolean => Number.isFinite(x) && x >= 0;

function podNamespace(): string | undefined {
  const ns = process.env['POD_NAMESPACE']?.trim();
  return ns === undefined || ns === '' ? undefined : ns;
}

export class OtlpEngineMetrics implements EngineObserver, TransportObserver {
  readonly attributes: Attributes;
  readonly #i: Instruments;
  readonly #tally = new GenerationTally();
  #last: Pick<StepStats, 'running' | 'waiting' | 'kvUsage'> = {
    running: 0,
    waiting: 0,
    kvUsage: 0,
  };

  constructor(options: OtlpEngineMetricsOptions) {
    const meter = options.meter ?? metrics.getMeter(METER_NAME);
    const namespace = options.namespace ?? podNamespace();
    this.attributes = {
      model: options.model,
      node: options.node ?? nodeName(),
      ...(namespace === undefined ? {} : { namespace }),
    };
    this.#i = instruments(meter);
    const attrs = this.attributes;
    // At zero from the start, as the scrape endpoint has them: a node whose responses never
    // waited on their path has these series, not none.
    this.#i.transportBytes.add(0, attrs);
    this.#i.transportWait.add(0, attrs);
    level(meter, 'num_requests_running', 'Requests in model execution batches.', '{request}').addCallback(
      (r) => {
        r.observe(this.#last.running, attrs);
      },
    );
    level(meter, 'num_requests_waiting', 'Requests waiting to be processed.', '{request}').addCallback(
      (r) => {
        r.observe(this.#last.waiting, attrs);
      },
    );
    // No unit on purpose: unit "1" would make the receiver append `_ratio`, and the
    // Prometheus name would no longer be the scrape endpoint's (and vLLM's) name.
    level(meter, 'kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', '').addCallback((r) => {
      r.observe(this.#last.kvUsage, attrs);
    });
  }

  onStep(stats: StepStats): void {
    this.#last = {
      running: stats.running,
      waiting: stats.waiting,
      kvUsage: Math.min(1, Math.max(0, stats.kvUsage)),
    };
    const tokens = stats.prefillTokens + stats.decodeTokens;
    if (tokens <= 0) return; // an idle step says nothing about step size
    this.#i.iterationTokens.record(tokens, this.attributes);
    if (stats.batchSize > 0) this.#i.batchSize.record(stats.batchSize, this.attributes);
  }

  /** One finished HTTP response, as ServerMetrics.observeResponse counts it. */
  observeResponse(o: ResponseObservation): void {
    const a: Attributes = {
      ...this.attributes,
      route: o.route,
      encoding: o.encoding,
      level: String(o.level ?? 'none'),
    };
    if (finite(o.bytesIn)) this.#i.bytesIn.add(o.bytesIn, a);
    if (finite(o.bytesOut)) this.#i.bytesOut.add(o.bytesOut, a);
    if (o.encoding !== 'identity' && finite(o.compressSeconds))
      this.#i.compression.record(o.compressSeconds, a);
    if (o.drainSeconds !== undefined && finite(o.drainSeconds)) this.#i.drain.record(o.drainSeconds, a);
  }

  observePathWait(bytes: number, waitSeconds: number): void {
    if (finite(bytes)) this.#i.transportBytes.add(bytes, this.attributes);
    if (finite(waitSeconds)) this.#i.transportWait.add(waitSeconds, this.attributes);
  }

  observeProbe(p: ProbeObservation): void {
    const a: Attributes = { ...this.attributes, encoding: p.encoding, level: String(p.level) };
    this.#i.probeBytesIn.add(p.bytesIn, a);
    this.#i.probeBytesOut.add(p.bytesOut, a);
    this.#i.probeSeconds.add(p.seconds, a);
    this.#i.probes.add(1, a);
  }

  onFirstToken(requestId: string, secondsSinceArrival: number): void {
    this.#tally.token(requestId);
    this.#i.generationTokens.add(1, this.attributes);
    this.#i.ttft.record(secondsSinceArrival, this.attributes);
  }

  onToken(requestId: string, secondsSinceLastToken: number): void {
    this.#tally.token(requestId);
    this.#i.generationTokens.add(1, this.attributes);
    this.#i.itl.record(secondsSinceLastToken, this.attributes);
  }

  onPreempt(): void {
    this.#i.preemptions.add(1, this.attributes);
  }

  onFinish(requestId: string, result: GenerationResult): void {
    const a = this.attributes;
    const { uncounted, sawFirst } = this.#tally.settle(requestId, result.completionTokens);
    if (uncounted > 0) this.#i.generationTokens.add(uncounted, a);
    if (!sawFirst && result.timeToFirstToken !== undefined) {
      this.#i.ttft.record(result.timeToFirstToken, a);
    }
    this.#i.success.add(1, { ...a, finished_reason: result.finishReason });
    this.#i.promptTokens.add(result.promptTokens, a);
    this.#i.e2e.record(result.totalSeconds, a);
    const p = requestPhases(result);
    this.#i.queue.record(p.queue, a);
    if (p.timePerOutputToken !== undefined) this.#i.tpot.record(p.timePerOutputToken, a);
  }
}

/** One observer that forwards every hook to each of `observers`, in order. */
export function fanOut(...observers: readonly EngineObserver[]): EngineObserver {
  return {
    onStep: (stats) => {
      for (const o of observers) o.onStep?.(stats);
    },
    onFirstToken: (id, s) => {
      for (const o of observers) o.onFirstToken?.(id, s);
    },
    onToken: (id, s) => {
      for (const o of observers) o.onToken?.(id, s);
    },
    onPreempt: (id) => {
      for (const o of observers) o.onPreempt?.(id);
    },
    onFinish: (id, result) => {
      for (const o of observers) o.onFinish?.(id, result);
    },
    onError: (err) => {
      for (const o of observers) o.onError?.(err);
    },
  };
}
