import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { trace } from '@opentelemetry/api';
import { AutoGLMError } from '../../errors.ts';
import type { GenerationResult } from '../../engine/types.ts';
import { Logger } from './logging.ts';
import { OtlpEngineMetrics } from './otlp-metrics.ts';
import { RequestSpan, shutdownTracing, startTracing, telemetryPlan } from './tracing.ts';

// ---- a real OTLP/HTTP receiver (JSON encoding) ------------------------------------------

interface Received {
  readonly path: string;
  readonly body: unknown;
}

const received: Received[] = [];
let receiver: Server;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      received.push({ path: req.url ?? '', body: JSON.parse(text) as unknown });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
});

after(async () => {
  await shutdownTracing();
  receiver.close();
  await once(receiver, 'close');
});

// ---- OTLP JSON helpers -------------------------------------------------------------------

type Json = Record<string, unknown>;
interface KeyValue {
  key: string;
  value: Json;
}

const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** Flattens OTLP's `[{key, value: {stringValue|intValue|doubleValue|arrayValue}}]`. */
function attrs(kvs: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list(kvs) as unknown as KeyValue[]) out[kv.key] = anyValue(kv.value);
  return out;
}

function anyValue(v: Json): unknown {
  if ('stringValue' in v) return v['stringValue'];
  if ('intValue' in v) return Number(v['intValue']);
  if ('doubleValue' in v) return Number(v['doubleValue']);
  if ('boolValue' in v) return v['boolValue'];
  const array = v['arrayValue'] as Json | undefined;
  return list(array?.['values']).map(anyValue);
}

function spans(): Json[] {
  return received
    .filter((r) => r.path === '/v1/traces')
    .flatMap((r) => list((r.body as Json)['resourceSpans']))
    .flatMap((rs) => list(rs['scopeSpans']))
    .flatMap((ss) => list(ss['spans']));
}

function metricsNamed(name: string): Json[] {
  return received
    .filter((r) => r.path === '/v1/metrics')
    .flatMap((r) => list((r.body as Json)['resourceMetrics']))
    .flatMap((rm) => list(rm['scopeMetrics']))
    .flatMap((sm) => list(sm['metrics']))
    .filter((m) => m['name'] === name);
}

/** The data points of the last export of `name`, whatever its kind. */
function points(name: string): Json[] {
  const m = metricsNamed(name).at(-1);
  assert.ok(m, `metric ${name} was exported`);
  const data = (m['histogram'] ?? m['sum'] ?? m['gauge']) as Json;
  return list(data['dataPoints']);
}

const num = (p: Json | undefined, key: string): number => Number(p?.[key]);

const result: GenerationResult = {
  finishReason: 'stop',
  promptTokens: 12,
  completionTokens: 3,
  timeToFirstToken: 0.25,
  queueSeconds: 0.05,
  totalSeconds: 0.45,
};

// ---- tests -------------------------------------------------------------------------------

test('telemetry is off unless an exporter or endpoint is configured', () => {
  assert.deepEqual(telemetryPlan({}), { traces: false, metrics: false });
  assert.deepEqual(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), {
    traces: true,
    metrics: true,
  });
  assert.deepEqual(telemetryPlan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }), {
    traces: true,
    metrics: false,
  });
  assert.deepEqual(telemetryPlan({ OTEL_METRICS_EXPORTER: 'otlp' }), {
    traces: false,
    metrics: true,
  });
  assert.deepEqual(
    telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    { traces: false, metrics: true },
  );
  assert.deepEqual(
    telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }),
    { traces: false, metrics: false },
  );
});

test('with nothing configured, startTracing builds nothing and spans do not record', () => {
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) Reflect.deleteProperty(process.env, k);
  assert.deepEqual(startTracing(), { traces: false, metrics: false });
  const span = RequestSpan.start({ operation: 'chat', model: 'm', requestId: 'r0' });
  assert.equal(span.span.isRecording(), false);
  span.end('chatcmpl-0', result);
  assert.equal(span.ended, true);
});

test('a request span and the engine metrics reach an OTLP/HTTP receiver', async () => {
  const { port } = receiver.address() as AddressInfo;
  process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = `http://127.0.0.1:${port}`;
  process.env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'http/json';
  process.env['OTEL_METRIC_EXPORT_INTERVAL'] = '600000';
  process.env['OTEL_RESOURCE_ATTRIBUTES'] = 'deployment.environment.name=test';
  const logs = new PassThrough();
  const plan = startTracing({ logger: new Logger({ sink: logs }) });
  assert.deepEqual(plan, { traces: true, metrics: true });

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentId = '00f067aa0ba902b7';
  const span = RequestSpan.start({
    operation: 'chat',
    model: 'qwen2.5-0.5b',
    requestId: 'req-42',
    maxTokens: 64,
    temperature: 0.7,
    topP: 0.9,
    headers: { traceparent: `00-${traceId}-${parentId}-01` },
  });
  assert.equal(span.traceId, traceId);
  assert.equal(trace.getSpan(span.context), span.span);
  span.recordFirstToken(0.25);
  span.end('chatcmpl-42', result);

  const failed = RequestSpan.start({ operation: 'text_completion', model: 'm', requestId: 'r2' });
  failed.fail(new AutoGLMError('invalid_argument', 'prompt too long'), 400);

  const engine = new OtlpEngineMetrics({ model: 'qwen2.5-0.5b', node: 'node-a' });
  engine.onStep({ running: 2, waiting: 3, kvUsage: 0.5, batchSize: 2, prefillTokens: 12, decodeTokens: 1, stepSeconds: 0.02 }); // prettier-ignore
  engine.onFirstToken('req-42', 0.25);
  engine.onToken('req-42', 0.1);
  engine.onToken('req-42', 0.1);
  engine.onFinish('req-42', result);
  engine.observeResponse({ route: '/v1/chat/completions', encoding: 'gzip', level: 6, bytesIn: 900, bytesOut: 300, compressSeconds: 0.002, drainSeconds: 0.01 }); // prettier-ignore

  await shutdownTracing(); // flushes both signals

  const all = spans();
  const chat = all.find((s) => s['name'] === 'chat qwen2.5-0.5b');
  assert.ok(chat, `chat span received; got ${all.map((s) => String(s['name'])).join(', ')}`);
  assert.equal(chat['traceId'], traceId);
  assert.equal(chat['parentSpanId'], parentId);
  const a = attrs(chat['attributes']);
  assert.equal(a['gen_ai.operation.name'], 'chat');
  assert.equal(a['gen_ai.provider.name'], 'autoglm');
  assert.equal(a['gen_ai.system'], 'autoglm');
  assert.equal(a['gen_ai.request.model'], 'qwen2.5-0.5b');
  assert.equal(a['gen_ai.request.max_tokens'], 64);
  assert.equal(a['gen_ai.request.temperature'], 0.7);
  assert.equal(a['gen_ai.request.top_p'], 0.9);
  assert.equal(a['gen_ai.response.id'], 'chatcmpl-42');
  assert.deepEqual(a['gen_ai.response.finish_reasons'], ['stop']);
  assert.equal(a['gen_ai.usage.input_tokens'], 12);
  assert.equal(a['gen_ai.usage.output_tokens'], 3);
  assert.equal(a['gen_ai.server.time_to_first_token'], 0.25);
  assert.ok(Math.abs(Number(a['gen_ai.server.time_per_output_token']) - 0.1) < 1e-9);
  assert.equal(a['autoglm.request_id'], 'req-42');
  const events = list(chat['events']);
  assert.equal(events.length, 1);
  assert.equal(events[0]?.['name'], 'gen_ai.first_token');

  const bad = all.find((s) => s['name'] === 'text_completion m');
  assert.ok(bad);
  assert.equal((bad['status'] as Json)['code'], 2); // STATUS_CODE_ERROR
  const b = attrs(bad['attributes']);
  assert.equal(b['error.type'], 'invalid_argument');
  assert.equal(b['http.response.status_code'], 400);
  assert.equal(list(bad['events'])[0]?.['name'], 'exception');

  const resource = received
    .filter((r) => r.path === '/v1/traces')
    .flatMap((r) => list((r.body as Json)['resourceSpans']))
    .map((rs) => attrs((rs['resource'] as Json)['attributes']))[0];
  assert.equal(resource?.['service.name'], 'autoglm');
  assert.equal(resource['deployment.environment.name'], 'test');

  const ttft = points('autoglm.time_to_first_token');
  assert.equal(ttft.length, 1);
  assert.deepEqual(attrs(ttft[0]?.['attributes']), { model: 'qwen2.5-0.5b', node: 'node-a' });
  assert.equal(num(ttft[0], 'count'), 1);
  assert.equal(num(ttft[0], 'sum'), 0.25);
  assert.equal(metricsNamed('autoglm.time_to_first_token')[0]?.['unit'], 's');
  assert.equal(num(points('autoglm.inter_token_latency')[0], 'count'), 2);
  assert.equal(num(points('autoglm.e2e_request_latency')[0], 'sum'), 0.45);
  assert.equal(num(points('autoglm.generation_tokens')[0], 'asInt'), 3);
  assert.equal(num(points('autoglm.prompt_tokens')[0], 'asInt'), 12);
  const success = points('autoglm.request_success')[0];
  assert.equal(attrs(success?.['attributes'])['finished_reason'], 'stop');
  assert.equal(num(points('autoglm.num_requests_running')[0], 'asDouble'), 2);
  assert.equal(num(points('autoglm.num_requests_waiting')[0], 'asDouble'), 3);
  assert.equal(num(points('autoglm.kv_cache_usage_perc')[0], 'asDouble'), 0.5);
  assert.equal(num(points('autoglm.iteration_tokens_total')[0], 'sum'), 13);
  assert.equal(num(points('autoglm.batch_size')[0], 'sum'), 2);
  const sent = points('autoglm.response_bytes_sent')[0];
  assert.deepEqual(attrs(sent?.['attributes']), { model: 'qwen2.5-0.5b', node: 'node-a', route: '/v1/chat/completions', encoding: 'gzip', level: '6' }); // prettier-ignore
  assert.equal(num(sent, 'asInt'), 300);
  assert.equal(metricsNamed('autoglm.response_bytes_uncompressed')[0]?.['unit'], 'By');
  assert.equal(num(points('autoglm.response_bytes_uncompressed')[0], 'asInt'), 900);
  assert.equal(num(points('autoglm.compression')[0], 'sum'), 0.002);
  assert.equal(num(points('autoglm.response_drain')[0], 'count'), 1);
});
