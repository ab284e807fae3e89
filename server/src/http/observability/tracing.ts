/**
 * OpenTelemetry for the server, configured only by the standard OTEL_* environment
 * variables and started through @opentelemetry/sdk-node.
 *
 * A signal (traces, metrics) is on when OTEL_SDK_DISABLED is not true and either its
 * exporter is named (OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER, other than `none`) or an
 * OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or the per-signal one). The SDK's own
 * default, OTLP to localhost:4318, would otherwise log an export failure every few seconds
 * on every server that has no collector. Everything else (protocol, headers, sampler,
 * batch sizes, OTEL_METRIC_EXPORT_INTERVAL, resource attributes) is the SDK's, read from
 * the environment as the specification says. The SDK's diagnostics go to our JSON log at
 * OTEL_LOG_LEVEL (default warn), never to the console.
 */
import {
  context,
  diag,
  DiagLogLevel,
  metrics,
  propagation,
  trace,
  type DiagLogger,
} from '@opentelemetry/api';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { log, type Logger } from './logging.ts';

export { RequestSpan, type GenAIOperation, type RequestSpanInit } from './request-span.ts';

export interface TelemetryPlan {
  readonly traces: boolean;
  readonly metrics: boolean;
}

const set = (v: string | undefined): boolean => v !== undefined && v.trim() !== '';

function signalOn(env: NodeJS.ProcessEnv, exporterVar: string, endpointVar: string): boolean {
  const exporters = (env[exporterVar] ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (exporters.includes('none')) return false;
  if (exporters.length > 0) return true;
  return set(env['OTEL_EXPORTER_OTLP_ENDPOINT']) || set(env[endpointVar]);
}

/** Which signals the environment asks for; a pure function of `env`. */
export function telemetryPlan(env: NodeJS.ProcessEnv = process.env): TelemetryPlan {
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') {
    return { traces: false, metrics: false };
  }
  return {
    traces: signalOn(env, 'OTEL_TRACES_EXPORTER', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
    metrics: signalOn(env, 'OTEL_METRICS_EXPORTER', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'),
  };
}

const DIAG_LEVELS: Record<string, DiagLogLevel> = {
  none: DiagLogLevel.NONE,
  error: DiagLogLevel.ERROR,
  warn: DiagLogLevel.WARN,
  info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG,
  verbose: DiagLogLevel.VERBOSE,
  all: DiagLogLevel.ALL,
};

function diagLogger(logger: Logger): DiagLogger {
  const line =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, ...args: unknown[]): void => {
      logger.log(level, message, args.length === 0 ? undefined : { args });
    };
  return {
    error: line('error'),
    warn: line('warn'),
    info: line('info'),
    debug: line('debug'),
    verbose: line('debug'),
  };
}

function installDiag(logger: Logger, env: NodeJS.ProcessEnv): void {
  const level = DIAG_LEVELS[env['OTEL_LOG_LEVEL']?.trim().toLowerCase() ?? ''] ?? DiagLogLevel.WARN;
  diag.setLogger(diagLogger(logger.child({ component: 'opentelemetry' })), {
    logLevel: level,
    suppressOverrideMessage: true,
  });
}

/** service.name defaults to `autoglm` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES set it. */
function serviceNameDefault(env: NodeJS.ProcessEnv): string | undefined {
  if (set(env['OTEL_SERVICE_NAME'])) return undefined;
  return /(^|,)\s*service\.name\s*=/.test(env['OTEL_RESOURCE_ATTRIBUTES'] ?? '') ? undefined : 'autoglm';
}

let sdk: NodeSDK | undefined;
let started: TelemetryPlan = { traces: false, metrics: false };
let startedLogger: Logger = log;

/**
 * Starts the SDK for the signals the environment asks for, and registers it with the
 * OpenTelemetry API (global tracer and meter providers, W3C trace-context propagation).
 * Call it once, before building OtlpEngineMetrics. Returns what was switched on; with
 * nothing on, no SDK is built at all.
 */
export function startTracing(options: { logger?: Logger | undefined } = {}): TelemetryPlan {
  if (sdk !== undefined) return started;
  const env = process.env;
  const plan = telemetryPlan(env);
  if (!plan.traces && !plan.metrics) return plan;
  const logger = options.logger ?? log;
  installDiag(logger, env);
  const config: Partial<NodeSDKConfiguration> = {
    instrumentations: [],
    // We log JSON to stdout; the OTel logs signal stays off.
    logRecordProcessors: [],
  };
  if (!plan.traces) config.spanProcessors = [];
  if (!plan.metrics) config.metricReaders = [];
  const serviceName = serviceNameDefault(env);
  if (serviceName !== undefined) config.serviceName = serviceName;
  sdk = constructQuietly(config, env);
  sdk.start();
  started = plan;
  startedLogger = logger;
  logger.info('opentelemetry started', { ...plan });
  return plan;
}

/**
 * NodeSDK's constructor replaces the diagnostic logger with a console one when
 * OTEL_LOG_LEVEL is set. We honour OTEL_LOG_LEVEL ourselves (installDiag), so the
 * constructor does not see it, and its own messages reach the JSON log too.
 */
function constructQuietly(config: Partial<NodeSDKConfiguration>, env: NodeJS.ProcessEnv): NodeSDK {
  const level = env['OTEL_LOG_LEVEL'];
  delete env['OTEL_LOG_LEVEL'];
  try {
    return new NodeSDK(config);
  } finally {
    if (level !== undefined) env['OTEL_LOG_LEVEL'] = level;
  }
}

/**
 * Flushes what is buffered (finished spans, the metrics' last values) and shuts the SDK
 * down, then unregisters it from the API so that a later startTracing() can register
 * again. A collector that cannot be reached is logged, not thrown: shutdown goes on.
 * Safe to call when tracing never started.
 */
export async function shutdownTracing(): Promise<void> {
  const current = sdk;
  const logger = startedLogger;
  sdk = undefined;
  started = { traces: false, metrics: false };
  if (current === undefined) return;
  try {
    await current.shutdown();
  } catch (err) {
    logger.warn('opentelemetry could not flush at shutdown', { err });
  } finally {
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
    diag.disable();
  }
}
