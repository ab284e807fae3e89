/**
 * Starting and stopping the inference server. The HTTP port opens first, so /health can say
 * 503 while the model loads; SIGTERM drains: not ready, new work refused with 503, running
 * generations finished (until the deadline), everything disposed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { SERVING_PARAMS_DEFAULTS, type ServingParams } from '../../../crds/tuning.ts';
import { Engine } from '../engine/engine.ts';
import { DEFAULT_BUILD, resolveModel } from '../model/resolve.ts';
import type { BuildOptions } from '../model/build/options.ts';
import { Tokenizer } from '../model/tokenizer/tokenizer.ts';
import type { Device } from '../runtime/decoder.ts';
import { openServingModel, type Binding } from '../runtime/open-kv.ts';
import { LiveParams } from '../tuning/live.ts';
import { watchTuningFile, type TuningWatcher } from '../tuning/watcher.ts';
import { createApp } from './app.ts';
import { CompressionProbe } from './compression-probe.ts';
import { PathMeter } from './path-meter.ts';
import type { LoadedModel, ServerContext } from './context.ts';
import { createLogger } from './observability/logging.ts';
import { ServerMetrics } from './observability/metrics.ts';
import { fanOut, OtlpEngineMetrics } from './observability/otlp-metrics.ts';
import { shutdownTracing, startTracing } from './observability/tracing.ts';

export interface ServeOptions {
  /** A model folder or source; undefined serves the default model. */
  readonly model: string | undefined;
  readonly servedModelName: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly device: Device;
  readonly threads: number;
  /** How steps reach ONNX Runtime (runtime/open-kv.ts). */
  readonly binding: Binding;
  /** Longest prompt + output per request (and the slot length of the shared KV layout). */
  readonly maxModelLen: number;
  readonly kvCacheTokens: number;
  readonly maxWaiting: number;
  readonly apiKeys: readonly string[];
  readonly tuningFile: string | undefined;
  /** How a GGUF source is built to ONNX (ignored for an ONNX folder). */
  readonly build: BuildOptions;
  /** Starting values of the live parameters; a tuning file overrides them. */
  readonly params: ServingParams;
  readonly version: string;
}

export interface RunningServer {
  readonly url: string;
  readonly context: ServerContext;
  /** Resolves when the model is loaded and /health says 200; rejects if loading fails. */
  readonly ready: Promise<void>;
  /** Drains and stops; `deadlineMs` bounds how long running generations may take. */
  close(deadlineMs?: number): Promise<void>;
}

export const DEFAULT_SERVE: Omit<ServeOptions, 'model' | 'servedModelName' | 'version'> = {
  host: '127.0.0.1',
  port: 8000,
  device: 'auto',
  threads: 0,
  binding: 'auto',
  maxModelLen: 2048,
  kvCacheTokens: 65536,
  maxWaiting: 256,
  apiKeys: [],
  tuningFile: undefined,
  build: DEFAULT_BUILD,
  params: SERVING_PARAMS_DEFAULTS,
};

async function loadModel(
  ctx: ServerContext,
  o: ServeOptions,
  observer: OtlpEngineMetrics | undefined,
): Promise<LoadedModel> {
  const { dir, fileName } = await resolveModel(o.model, {
    build: o.build,
    onProgress: (m) => {
      ctx.logger.info(m);
    },
  });
  const tokenizer = await Tokenizer.load(dir);
  const model = await openServingModel(
    dir,
    { device: o.device, binding: o.binding, threads: o.threads, fileName },
    { maxSeqs: o.params.maxBatchSize * 2, capacityTokens: o.kvCacheTokens, maxModelLen: o.maxModelLen },
    () => ctx.live.get(),
  );
  const { kv } = model;
  const engine = new Engine({
    kv,
    params: () => ctx.live.get(),
    decoder: (ctx2) => tokenizer.incrementalDecoder({ skipSpecialTokens: true, context: ctx2 }),
    eosTokenIds: tokenizer.eosTokenIds,
    maxModelLen: o.maxModelLen,
    maxWaiting: o.maxWaiting,
    observer: fanOut(ctx.metrics, ...(observer === undefined ? [] : [observer]), {
      onError: (err) => {
        ctx.metrics.countError('model_run_failed');
        ctx.logger.error('model run failed; its sequences end with an error', {
          error: err instanceof Error ? err.stack : String(err),
        });
      },
    }),
  });
  ctx.metrics.setDevice(model.provider);
  ctx.logger.info('model loaded', {
    dir,
    device: model.provider,
    binding: model.binding,
    skipped: model.skipped,
    kv_layout: model.layout,
    kv_capacity_tokens: kv.capacityTokens,
  });
  return {
    name: ctx.servedName,
    dir,
    tokenizer,
    engine,
    device: model.provider,
    maxModelLen: o.maxModelLen,
    vocabSize: tokenizer.vocabSize,
    created: Math.floor(Date.now() / 1000),
    dispose: () => model.dispose(),
  };
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve(`http://${h}:${a.port}`);
    });
  });
}

/** The probe as one label value: `off`, or its settings and CPU share (`gzip:1,br:4 @ 0.02`). */
function probeText(p: ServingParams['compressionProbe']): string {
  if (p.settings.length === 0 || p.cpuShare === 0) return 'off';
  return `${p.settings.map((x) => `${x.algorithm}:${String(x.level)}`).join(',')} @ ${String(p.cpuShare)}`;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const logger = createLogger();
  const servedName = o.servedModelName ?? (o.model === undefined ? 'smollm2-135m-instruct' : o.model);
  const nodeName = process.env['NODE_NAME'] ?? hostname();
  const telemetry = startTracing({ logger });
  const otlp = telemetry.metrics ? new OtlpEngineMetrics({ model: servedName, node: nodeName }) : undefined;
  const metrics = new ServerMetrics({
    model: servedName,
    node: nodeName,
    maxModelLen: o.maxModelLen,
    responseMirror: otlp,
  });
  const ctx: ServerContext = {
    phase: 'loading',
    inFlight: 0,
    model: undefined,
    loadError: undefined,
    servedName,
    live: new LiveParams(o.params),
    metrics,
    probe: new CompressionProbe((p) => {
      metrics.observeProbe(p);
    }),
    path: new PathMeter((bytes, seconds) => {
      metrics.observePathWait(bytes, seconds);
    }),
    logger,
    apiKeys: new Set(o.apiKeys),
    version: o.version,
  };
  const tuningValues = () => {
    const p = ctx.live.get();
    metrics.setTuning({
      maxBatchSize: p.maxBatchSize,
      maxBatchedTokens: p.maxBatchedTokens,
      maxQueueDelayMs: p.maxQueueDelayMs,
      streamChunkTokens: p.streamChunkTokens,
      kvWindowTokens: p.kvWindowTokens,
      kvSinkTokens: p.kvSinkTokens,
      headEntropyThreshold: p.headEntropyThreshold,
      headUpdateInterval: p.headUpdateInterval,
      compression: `${p.compression.algorithm}:${p.compression.level ?? 0}`,
      compressionProbe: probeText(p.compressionProbe),
    });
    ctx.probe.configure(p.compressionProbe);
  };
  tuningValues();
  ctx.live.subscribe(tuningValues);
  const server = createServer(createApp(ctx));
  // Generations stream for long; only idle keep-alive sockets should time out.
  server.requestTimeout = 0;
  const url = await listen(server, o.host, o.port);
  let watcher: TuningWatcher | undefined;
  if (o.tuningFile !== undefined) {
    watcher = await watchTuningFile(o.tuningFile, {
      nodeName,
      base: o.params,
      live: ctx.live,
      onApplied: (a) => {
        if (a.changed)
          logger.info('tuning applied', { source: a.source, generation: a.generation, params: a.params });
      },
      onError: (p) => {
        metrics.countTuningError(p.reason);
        logger.error('tuning file rejected; keeping the last good values', {
          path: p.path,
          reason: p.reason,
          errors: p.errors,
        });
      },
    });
  }
  const ready = loadModel(ctx, o, otlp).then(
    (m) => {
      ctx.model = m;
      if (ctx.phase === 'loading') ctx.phase = 'ready';
    },
    (err: unknown) => {
      ctx.loadError = err instanceof Error ? err.message : String(err);
      logger.error('model failed to load', { error: ctx.loadError });
      throw err;
    },
  );
  let closing: Promise<void> | undefined;
  const close = (deadlineMs = 30_000): Promise<void> =>
    (closing ??= (async () => {
      // Keep listening while draining: readiness and new work answer 503, which a load
      // balancer retries elsewhere, while the endpoint is being removed.
      ctx.phase = 'draining';
      logger.info('draining', { deadline_ms: deadlineMs });
      const engine = ctx.model?.engine;
      const deadline = new Promise((r) => setTimeout(r, deadlineMs).unref());
      if (engine !== undefined) {
        await Promise.race([engine.drain(), deadline]);
        // Past the deadline: end what is left; the loop stops after its current step.
        engine.abortAll();
        await engine.drain();
      }
      // Let responses write their last events ([DONE]) before connections are closed.
      const until = performance.now() + deadlineMs;
      while (ctx.inFlight > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
      await watcher?.close();
      await ctx.model?.dispose();
      // An unreachable collector must not hold the exit past the deadline.
      await Promise.race([shutdownTracing(), new Promise((r) => setTimeout(r, 5000).unref())]);
      logger.info('stopped');
    })());
  return { url, context: ctx, ready, close };
}
