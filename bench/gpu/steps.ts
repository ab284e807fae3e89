/**
 * Raw forward steps for the GPU benchmark, below the engine: one decode step of `batch`
 * sequences that each hold `context` tokens, and one prefill. Two ways to hold the cache:
 * - host: one shared past/present buffer per layer in host memory, bound as both input and
 *   output (GroupQueryAttention writes in place). On CPU this is the server's own layout; on
 *   a GPU provider onnxruntime-node copies the whole buffer in and out on every step.
 * - device (WebGPU): present.* stay in device buffers and are fed back as the next past.
 */
import ort from 'onnxruntime-node';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DecoderSession, kvBytesPerToken, type KvLayout } from '../../server/src/runtime/decoder.ts';
import type { ProviderName } from '../../server/src/runtime/providers.ts';

export interface BenchSession {
  readonly session: DecoderSession;
  readonly deviceKv: boolean;
  readonly vocab: number;
  release(): Promise<void>;
}

export type DecodeResult =
  | { readonly batch: number; readonly stepMs: number; readonly kvBytes: number }
  | { readonly batch: number; readonly error: string };

export type PrefillResult =
  { readonly tokens: number; readonly ms: number } | { readonly tokens: number; readonly error: string };

type KvTensors = Record<string, ort.Tensor>;

/** Untimed steps before each measurement. */
export const WARMUP = 3;

export async function openBench(
  dir: string,
  provider: ProviderName,
  deviceKv: boolean,
): Promise<BenchSession> {
  const session = await DecoderSession.open(dir, { device: provider, kvOnDevice: deviceKv });
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { vocab_size: number };
  return { session, deviceKv, vocab: config.vocab_size, release: () => session.dispose() };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** Host buffers [batch, kvHeads, len, headDim] for every layer, filled with small non-zero values. */
function hostKv(s: DecoderSession, batch: number, len: number): KvTensors {
  const { layers, kvHeads, headDim, dtype } = s.layout;
  const n = batch * kvHeads * len * headDim;
  const out: KvTensors = {};
  for (let i = 0; i < layers; i++) {
    for (const kv of ['key', 'value']) {
      const dims = [batch, kvHeads, len, headDim];
      if (dtype === 'float16') {
        // 0x2c00..0x2cff: fp16 values near 0.06, never zero.
        const buf = new Uint16Array(n);
        for (let j = 0; j < n; j++) buf[j] = 0x2c00 | ((j * 37 + i) & 0xff);
        out[`past_key_values.${i}.${kv}`] = new ort.Tensor('float16', buf, dims);
      } else {
        const buf = new Float32Array(n);
        for (let j = 0; j < n; j++) buf[j] = (((j * 37 + i) & 0xff) - 128) / 2048;
        out[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', buf, dims);
      }
    }
  }
  return out;
}

/** Token ids that differ by position and step, the same for either binding. */
export function tokenIds(count: number, vocab: number, salt: number): number[] {
  return Array.from({ length: count }, (_, i) => (i * 7919 + salt * 104729) % vocab);
}

/** The cache a decode step reads: every sequence's `context` tokens and its new one. */
export function decodeKvBytes(layout: KvLayout, batch: number, context: number): number {
  return batch * (context + 1) * kvBytesPerToken(layout);
}

function ids(batch: number, seq: number, vocab: number, salt: number): ort.Tensor {
  const data = BigInt64Array.from(tokenIds(batch * seq, vocab, salt), (v) => BigInt(v));
  return new ort.Tensor('int64', data, [batch, seq]);
}

function inputs(b: BenchSession, batch: number, seq: number, total: number, step: number): KvTensors {
  const feeds: KvTensors = {
    input_ids: ids(batch, seq, b.vocab, step),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * total).fill(1n), [batch, total]),
  };
  if (b.session.hasPositionInput) {
    const pos = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(total - seq + (i % seq)));
    feeds['position_ids'] = new ort.Tensor('int64', pos, [batch, seq]);
  }
  return feeds;
}

/** Present bound onto past: the host layout's in-place cache. */
function inPlace(past: KvTensors): Record<string, ort.Tensor | null> {
  const fetches: Record<string, ort.Tensor | null> = { logits: null };
  for (const [k, t] of Object.entries(past)) fetches[k.replace('past_key_values.', 'present.')] = t;
  return fetches;
}

function disposeDevice(t: KvTensors): void {
  for (const v of Object.values(t)) if (v.location === 'gpu-buffer') v.dispose();
}

function presentAsPast(out: Record<string, ort.Tensor>): KvTensors {
  const past: KvTensors = {};
  for (const [k, t] of Object.entries(out)) {
    if (k.startsWith('present.')) past[k.replace('present.', 'past_key_values.')] = t;
  }
  return past;
}

export async function decodeStep(
  b: BenchSession,
  batch: number,
  context: number,
  reps: number,
): Promise<DecodeResult> {
  const steps = WARMUP + reps;
  // The host layout holds every step's token in one buffer; the device layout grows by one a step.
  let past = hostKv(b.session, batch, b.deviceKv ? context : context + steps);
  const times: number[] = [];
  for (let step = 0; step < steps; step++) {
    const total = context + step + 1;
    const feeds = { ...inputs(b, batch, 1, total, step), ...past };
    const t = performance.now();
    const out = b.deviceKv ? await b.session.run(feeds) : await b.session.run(feeds, inPlace(past));
    if (step >= WARMUP) times.push(performance.now() - t);
    if (out['logits']?.dims[0] !== batch) throw new Error('no logits for the batch');
    if (b.deviceKv) {
      disposeDevice(past);
      past = presentAsPast(out);
    }
  }
  if (b.deviceKv) disposeDevice(past);
  return { batch, stepMs: median(times), kvBytes: decodeKvBytes(b.session.layout, batch, context) };
}

export async function prefill(b: BenchSession, tokens: number, reps: number): Promise<PrefillResult> {
  const times: number[] = [];
  for (let r = 0; r < WARMUP + reps; r++) {
    const past = hostKv(b.session, 1, tokens);
    const feeds = { ...inputs(b, 1, tokens, tokens, r), ...past };
    // An empty cache: every past buffer is written from position 0.
    feeds['attention_mask'] = new ort.Tensor('int64', new BigInt64Array(tokens).fill(1n), [1, tokens]);
    const t = performance.now();
    const out = b.deviceKv ? await b.session.run(feeds) : await b.session.run(feeds, inPlace(past));
    if (r >= WARMUP) times.push(performance.now() - t);
    if (b.deviceKv) disposeDevice(presentAsPast(out));
  }
  return { tokens, ms: median(times) };
}
