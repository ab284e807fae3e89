import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GenerationResult, StepStats } from '../../engine/types.ts';
import { ServerMetrics, tuningLabelName } from './metrics.ts';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses Prometheus text exposition (0.0.4) into samples; comments are checked separately. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m[3] ?? '';
    samples.push({ name: m[1] ?? '', labels, value: raw === '+Inf' ? Infinity : Number(raw) });
  }
  return samples;
}

function pick(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = pick(samples, name, labels);
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value ?? NaN;
}

async function scrape(m: ServerMetrics): Promise<Sample[]> {
  return parseExposition(await m.metrics());
}

const step = (over: Partial<StepStats>): StepStats => ({
  running: 0,
  waiting: 0,
  kvUsage: 0,
  batchSize: 0,
  prefillTokens: 0,
  decodeTokens: 0,
  stepSeconds: 0,
  ...over,
});

const result = (over: Partial<GenerationResult>): GenerationResult => ({
  finishReason: 'stop',
  promptTokens: 10,
  completionTokens: 4,
  timeToFirstToken: 0.2,
  queueSeconds: 0.05,
  totalSeconds: 0.5,
  ...over,
});

test('every series carries model and node, and the gauges start at zero', async () => {
  const m = new ServerMetrics({ model: 'qwen2.5-0.5b', node: 'node-a', device: 'cpu' });
  const samples = await scrape(m);
  assert.ok(samples.length > 50);
  for (const s of samples) {
    assert.equal(s.labels['model'], 'qwen2.5-0.5b', s.name);
    assert.equal(s.labels['node'], 'node-a', s.name);
    assert.ok(s.name.startsWith('autoglm_'), s.name);
  }
  assert.equal(value(samples, 'autoglm_num_requests_running'), 0);
  assert.equal(value(samples, 'autoglm_num_requests_waiting'), 0);
  assert.equal(value(samples, 'autoglm_kv_cache_usage_perc'), 0);
  assert.equal(value(samples, 'autoglm_device_info', { device: 'cpu' }), 1);
  for (const reason of ['stop', 'length', 'abort', 'error']) {
    assert.equal(value(samples, 'autoglm_request_success_total', { finished_reason: reason }), 0);
  }
  assert.match(m.contentType, /^text\/plain/);
});

test('the node label defaults to NODE_NAME', () => {
  const before = process.env['NODE_NAME'];
  process.env['NODE_NAME'] = 'from-downward-api';
  try {
    assert.equal(new ServerMetrics({ model: 'm' }).node, 'from-downward-api');
  } finally {
    if (before === undefined) delete process.env['NODE_NAME'];
    else process.env['NODE_NAME'] = before;
  }
});

test('engine hooks become vLLM-style series', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n' });
  // A prefill-only step (no sequence decoded), a decode step, a mixed one, an idle one.
  m.onStep(step({ running: 2, waiting: 2, kvUsage: 0.42, prefillTokens: 100, stepSeconds: 0.3 }));
  m.onStep(step({ running: 2, waiting: 1, kvUsage: 0.5, batchSize: 2, decodeTokens: 2 }));
  m.onStep(step({ running: 2, waiting: 0, batchSize: 1, decodeTokens: 1, prefillTokens: 5 }));
  m.onStep(step({ running: 0, waiting: 0, kvUsage: 1.7 })); // idle: no step histograms
  // Request a: three tokens streamed, four reported at finish (one emitted without a hook).
  m.onFirstToken('a', 0.2);
  m.onToken('a', 0.03);
  m.onToken('a', 0.07);
  m.onPreempt();
  m.onFinish('a', result({ completionTokens: 4 }));
  // Request b: aborted in the queue, no tokens.
  m.onFinish('b', result({ finishReason: 'abort', promptTokens: 7, completionTokens: 0, timeToFirstToken: undefined, queueSeconds: 1.5, totalSeconds: 1.5 })); // prettier-ignore
  // Request c: the engine reported no hooks at all, only the result.
  m.onFinish('c', result({ finishReason: 'length', completionTokens: 1, timeToFirstToken: 0.6 }));

  const s = await scrape(m);
  assert.equal(value(s, 'autoglm_num_requests_running'), 0);
  assert.equal(value(s, 'autoglm_num_requests_waiting'), 0);
  assert.equal(value(s, 'autoglm_kv_cache_usage_perc'), 1, 'clamped to 1');
  assert.equal(value(s, 'autoglm_num_preemptions_total'), 1);
  assert.equal(value(s, 'autoglm_prompt_tokens_total'), 10 + 7 + 10);
  assert.equal(value(s, 'autoglm_generation_tokens_total'), 4 + 0 + 1);
  assert.equal(value(s, 'autoglm_request_success_total', { finished_reason: 'stop' }), 1);
  assert.equal(value(s, 'autoglm_request_success_total', { finished_reason: 'abort' }), 1);
  assert.equal(value(s, 'autoglm_request_success_total', { finished_reason: 'length' }), 1);
  assert.equal(value(s, 'autoglm_request_success_total', { finished_reason: 'error' }), 0);

  // TTFT: 0.2 from the hook for a, 0.6 from c's result; none for b.
  assert.equal(value(s, 'autoglm_time_to_first_token_seconds_count'), 2);
  assert.ok(Math.abs(value(s, 'autoglm_time_to_first_token_seconds_sum') - 0.8) < 1e-9);
  assert.equal(value(s, 'autoglm_time_to_first_token_seconds_bucket', { le: '0.25' }), 1);
  assert.equal(value(s, 'autoglm_time_to_first_token_seconds_bucket', { le: '0.75' }), 2);
  assert.equal(value(s, 'autoglm_time_to_first_token_seconds_bucket', { le: '0.001' }), 0);
  assert.equal(value(s, 'autoglm_time_to_first_token_seconds_bucket', { le: '60' }), 2);

  assert.equal(value(s, 'autoglm_inter_token_latency_seconds_count'), 2);
  assert.equal(value(s, 'autoglm_inter_token_latency_seconds_bucket', { le: '0.05' }), 1);
  assert.equal(value(s, 'autoglm_inter_token_latency_seconds_bucket', { le: '10' }), 2);

  assert.equal(value(s, 'autoglm_e2e_request_latency_seconds_count'), 3);
  assert.ok(Math.abs(value(s, 'autoglm_e2e_request_latency_seconds_sum') - 2.5) < 1e-9);
  assert.equal(value(s, 'autoglm_e2e_request_latency_seconds_bucket', { le: '300' }), 3);
  assert.equal(value(s, 'autoglm_request_queue_time_seconds_count'), 3);
  assert.equal(value(s, 'autoglm_request_queue_time_seconds_bucket', { le: '0.05' }), 2);
  assert.equal(value(s, 'autoglm_request_prefill_time_seconds_count'), 2);
  assert.equal(value(s, 'autoglm_request_decode_time_seconds_count'), 2);
  // Only a has two or more tokens: (0.5 - 0.2) / 3 = 0.1 s per output token.
  assert.equal(value(s, 'autoglm_request_time_per_output_token_seconds_count'), 1);
  assert.ok(Math.abs(value(s, 'autoglm_request_time_per_output_token_seconds_sum') - 0.1) < 1e-9);

  assert.equal(value(s, 'autoglm_request_prompt_tokens_count'), 3);
  assert.equal(value(s, 'autoglm_request_prompt_tokens_bucket', { le: '10' }), 3);
  assert.equal(value(s, 'autoglm_request_generation_tokens_bucket', { le: '1' }), 2);
  assert.equal(value(s, 'autoglm_iteration_tokens_total_count'), 3);
  assert.equal(value(s, 'autoglm_iteration_tokens_total_sum'), 108);
  assert.equal(value(s, 'autoglm_batch_size_count'), 2);
  assert.equal(value(s, 'autoglm_batch_size_sum'), 3);
  assert.equal(value(s, 'autoglm_engine_step_seconds_count'), 3);
  assert.equal(value(s, 'autoglm_engine_step_seconds_bucket', { le: '0.25' }), 2);
});

test('gauges follow the latest step', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n' });
  m.onStep(step({ running: 8, waiting: 5, kvUsage: 0.875, batchSize: 8, decodeTokens: 8 }));
  const s = await scrape(m);
  assert.equal(value(s, 'autoglm_num_requests_running'), 8);
  assert.equal(value(s, 'autoglm_num_requests_waiting'), 5);
  assert.equal(value(s, 'autoglm_kv_cache_usage_perc'), 0.875);
});

test('HTTP, error, device and cache-config series', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n', device: 'cpu' });
  m.countHttpRequest('/v1/chat/completions', 200);
  m.countHttpRequest('/v1/chat/completions', 200);
  m.countHttpRequest('/v1/completions', 400);
  m.countError('invalid_argument');
  m.setDevice('cuda');
  m.setCacheConfig({ blockSize: 16, numBlocks: 2048 });
  const s = await scrape(m);
  const route = '/v1/chat/completions';
  assert.equal(value(s, 'autoglm_http_requests_total', { route, status: '200' }), 2);
  assert.equal(value(s, 'autoglm_http_requests_total', { route: '/v1/completions' }), 1);
  assert.equal(value(s, 'autoglm_errors_total', { code: 'invalid_argument' }), 1);
  assert.equal(pick(s, 'autoglm_device_info').length, 1, 'the old device is gone');
  assert.equal(value(s, 'autoglm_device_info', { device: 'cuda' }), 1);
  assert.equal(value(s, 'autoglm_cache_config_info', { block_size: '16', num_gpu_blocks: '2048' }), 1);
});

test('response transport measurements', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n' });
  const route = '/v1/chat/completions';
  m.observeResponse({ route, encoding: 'gzip', level: 6, bytesIn: 10_000, bytesOut: 2_500, compressSeconds: 0.0004, drainSeconds: 0.002 }); // prettier-ignore
  m.observeResponse({ route, encoding: 'gzip', level: 6, bytesIn: 6_000, bytesOut: 1_500, compressSeconds: 0.0002, drainSeconds: 0.2 }); // prettier-ignore
  m.observeResponse({ route, encoding: 'identity', bytesIn: 800, bytesOut: 800, compressSeconds: 0 }); // prettier-ignore
  const s = await scrape(m);
  const gzip = { route, encoding: 'gzip', level: '6' };
  const identity = { route, encoding: 'identity', level: 'none' };
  assert.equal(value(s, 'autoglm_response_bytes_uncompressed_total', gzip), 16_000);
  assert.equal(value(s, 'autoglm_response_bytes_sent_total', gzip), 4_000);
  assert.equal(value(s, 'autoglm_response_bytes_sent_total', identity), 800);
  assert.equal(value(s, 'autoglm_compression_seconds_count', gzip), 2);
  assert.ok(Math.abs(value(s, 'autoglm_compression_seconds_sum', gzip) - 0.0006) < 1e-12);
  assert.equal(value(s, 'autoglm_compression_seconds_bucket', { ...gzip, le: '0.00025' }), 1);
  assert.equal(pick(s, 'autoglm_compression_seconds_count', identity).length, 0);
  assert.equal(value(s, 'autoglm_response_drain_seconds_count', gzip), 2);
  assert.equal(value(s, 'autoglm_response_drain_seconds_bucket', { ...gzip, le: '0.0025' }), 1);
  assert.equal(pick(s, 'autoglm_response_drain_seconds_count', identity).length, 0);
});

test('draining as it goes, and probes of settings not in force', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n' });
  m.observePathWait(65_536, 0);
  m.observePathWait(65_536, 0.25);
  m.observeProbe({ encoding: 'br', level: 4, bytesIn: 400_000, bytesOut: 90_000, seconds: 0.006 });
  m.observeProbe({ encoding: 'br', level: 4, bytesIn: 200_000, bytesOut: 50_000, seconds: 0.004 });
  m.observeProbe({ encoding: 'gzip', level: 1, bytesIn: 400_000, bytesOut: 110_000, seconds: 0.004 });
  m.observeProbe({ encoding: 'gzip', level: 2, bytesIn: 1, bytesOut: 1, seconds: NaN });
  const s = await scrape(m);
  assert.equal(value(s, 'autoglm_transport_bytes_total', {}), 131_072);
  assert.equal(value(s, 'autoglm_transport_wait_seconds_total', {}), 0.25);
  const br = { encoding: 'br', level: '4' };
  assert.equal(value(s, 'autoglm_compression_probes_total', br), 2);
  assert.equal(value(s, 'autoglm_compression_probe_bytes_uncompressed_total', br), 600_000);
  assert.equal(value(s, 'autoglm_compression_probe_bytes_compressed_total', br), 140_000);
  assert.ok(Math.abs(value(s, 'autoglm_compression_probe_seconds_total', br) - 0.01) < 1e-12);
  assert.equal(value(s, 'autoglm_compression_probes_total', { encoding: 'gzip', level: '1' }), 1);
  assert.equal(pick(s, 'autoglm_compression_probes_total', { encoding: 'gzip', level: '2' }).length, 0);
});

test('tuning values replace the previous state', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n' });
  m.setTuning({ maxBatchSize: 16, compression: 'gzip:6', 'sse.flush': 'per-token' });
  let s = await scrape(m);
  assert.equal(value(s, 'autoglm_tuning_value', { param: 'maxBatchSize' }), 16);
  assert.equal(value(s, 'autoglm_tuning_info', { compression: 'gzip:6', sse_flush: 'per-token' }), 1); // prettier-ignore

  m.setTuning({ maxBatchSize: 32, compression: 'br:4' });
  s = await scrape(m);
  assert.equal(value(s, 'autoglm_tuning_value', { param: 'maxBatchSize' }), 32);
  assert.equal(pick(s, 'autoglm_tuning_info').length, 1);
  assert.equal(value(s, 'autoglm_tuning_info', { compression: 'br:4' }), 1);
  assert.equal(pick(s, 'autoglm_tuning_info')[0]?.labels['sse_flush'], undefined);

  m.setTuning({ maxBatchSize: 32, compression: 'br:5' });
  m.setTuning({ kvBlocks: 100 });
  s = await scrape(m);
  assert.equal(pick(s, 'autoglm_tuning_value').length, 1);
  assert.equal(value(s, 'autoglm_tuning_value', { param: 'kvBlocks' }), 100);
  assert.equal(pick(s, 'autoglm_tuning_info').length, 0);

  m.countTuningError('compression');
  s = await scrape(m);
  assert.equal(value(s, 'autoglm_tuning_errors_total', { param: 'compression' }), 1);
});

test('tuning parameter names become valid, unreserved label names', () => {
  assert.equal(tuningLabelName('compression'), 'compression');
  assert.equal(tuningLabelName('sse.flush-mode'), 'sse_flush_mode');
  assert.equal(tuningLabelName('1st'), '_1st');
  assert.equal(tuningLabelName('__x'), 'p__x');
  assert.equal(tuningLabelName('model'), 'param_model');
});

test('HELP and TYPE lines name each family once', async () => {
  const text = await new ServerMetrics({ model: 'm', node: 'n' }).metrics();
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((t) => `${t[1]} ${t[2]}`);
  assert.equal(new Set(types).size, types.length);
  for (const expected of [
    'autoglm_num_requests_running gauge',
    'autoglm_num_requests_waiting gauge',
    'autoglm_kv_cache_usage_perc gauge',
    'autoglm_time_to_first_token_seconds histogram',
    'autoglm_inter_token_latency_seconds histogram',
    'autoglm_e2e_request_latency_seconds histogram',
    'autoglm_request_queue_time_seconds histogram',
    'autoglm_prompt_tokens_total counter',
    'autoglm_generation_tokens_total counter',
    'autoglm_request_success_total counter',
    'autoglm_num_preemptions_total counter',
    'autoglm_iteration_tokens_total histogram',
    'autoglm_compression_seconds histogram',
    'autoglm_response_drain_seconds histogram',
  ]) {
    assert.ok(types.includes(expected), expected);
  }
});

test('the compression setting in force has its response series from zero, before any response', async () => {
  const m = new ServerMetrics({ model: 'm', node: 'n' });
  m.setTuning({ maxBatchSize: 8, compression: 'gzip:6' });
  const s = await scrape(m);
  for (const route of ['chat', 'completions']) {
    for (const [encoding, level] of [
      ['gzip', '6'],
      ['identity', '0'],
    ] as const) {
      const labels = { route, encoding, level };
      assert.equal(value(s, 'autoglm_response_bytes_uncompressed_total', labels), 0, JSON.stringify(labels));
      assert.equal(value(s, 'autoglm_response_bytes_sent_total', labels), 0);
      assert.equal(value(s, 'autoglm_response_drain_seconds_count', labels), 0);
    }
  }
  assert.equal(
    value(s, 'autoglm_compression_seconds_count', { route: 'chat', encoding: 'gzip', level: '6' }),
    0,
  );
});
