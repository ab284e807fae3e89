/**
 * `node bench/gpu/run.ts`: decode and prefill on every execution provider that loads here,
 * for the default model and a random model with Llama-3.2-1B's shapes, then the whole
 * server under bench:serve's sweep. Made for one call on the lent GPU machine (README.md
 * beside this says how it gets there); on a machine without a GPU it measures the CPU alone.
 *
 * `--bindings ort,capi,capi-graph` measures cpu and cuda also through the C API binding
 * (capi-steps.ts): I/O binding with the cache left in place, and on CUDA optionally CUDA
 * graphs. Its rows are labelled "<provider> (C API)"; the goals read onnxruntime-node's rows.
 *
 * Decode is timed at a fixed context: every sequence already holds `--context` tokens.
 * The model bandwidth utilization (MBU) of a step is the bytes it must read (every weight
 * once, every sequence's cache once) over its time, over the copy bandwidth measured here.
 */
import ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildFromGguf, buildRandom } from '../../server/src/model/build/index.ts';
import type { Precision } from '../../server/src/model/build/options.ts';
import { DecoderSession } from '../../server/src/runtime/decoder.ts';
import { providerAvailable, type ProviderName } from '../../server/src/runtime/providers.ts';
import { BINDINGS, capiDecodeStep, capiPrefill, openCapiBench, type Binding } from './capi-steps.ts';
import { decodeStep, openBench, prefill, type DecodeResult, type PrefillResult } from './steps.ts';
import { renderReport, type ModelRow, type Report } from './report.ts';

const { values } = parseArgs({
  allowNegative: true,
  options: {
    gguf: { type: 'string' },
    work: { type: 'string', default: '/tmp/autoglm-gpu' },
    out: { type: 'string', default: 'bench/results' },
    context: { type: 'string', default: '512' },
    batches: { type: 'string', default: '1,4,16,32,64,256' },
    'cpu-batches': { type: 'string', default: '1,4,16' },
    providers: { type: 'string', default: 'cuda,webgpu,cpu' },
    models: { type: 'string', default: 'default-int4,default-fp16,1b-fp16,1b-int4' },
    reps: { type: 'string', default: '10' },
    'bandwidth-gbs': { type: 'string' },
    serve: { type: 'boolean', default: true },
    merge: { type: 'string' },
    'serve-md': { type: 'string' },
    bindings: { type: 'string', default: 'ort' },
  },
});

const context = Number(values.context);
const reps = Number(values.reps);
const list = (s: string): string[] => s.split(',').filter((x) => x !== '');

function log(msg: string): void {
  console.error(`[gpu-bench] ${msg}`);
}

function folderBytes(dir: string): number {
  const onnx = join(dir, 'onnx');
  return readdirSync(onnx).reduce((n, f) => n + statSync(join(onnx, f)).size, 0);
}

async function buildModel(name: string): Promise<string> {
  const [source, precision] = name.split('-') as [string, Precision];
  const dir = join(values.work, name);
  if (existsSync(join(dir, 'config.json'))) return dir;
  const t = performance.now();
  const o = { profile: 'fast' as const, precision, maxPositions: 4096 };
  if (source === 'default') {
    if (values.gguf === undefined) throw new Error('--gguf is required for the default model');
    await buildFromGguf(values.gguf, dir, o);
  } else {
    await buildRandom('1b', dir, o, { seed: 1 });
  }
  log(`built ${name} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return dir;
}

/** Device copy bandwidth (read + write bytes / s), measured with torch where it exists. */
function measureBandwidth(): { gbs: number; how: string } | undefined {
  if (values['bandwidth-gbs'] !== undefined) return { gbs: Number(values['bandwidth-gbs']), how: 'given' };
  const py = `
import torch
x = torch.empty(1 << 30, dtype=torch.uint8, device='cuda'); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
ts = []
for _ in range(20):
    s.record(); y.copy_(x); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
ts.sort(); print(2 * x.numel() / (ts[len(ts)//2] / 1e3) / 1e9)`;
  const r = spawnSync('python3', ['-c', py], { encoding: 'utf8' });
  const gbs = Number(r.stdout.trim());
  return r.status === 0 && gbs > 0
    ? { gbs, how: 'torch: 1 GiB device-to-device copy, median of 20, bytes read + written' }
    : undefined;
}

function providers(): { ok: ProviderName[]; skipped: string[] } {
  const ok: ProviderName[] = [];
  const skipped: string[] = [];
  for (const p of list(values.providers) as ProviderName[]) {
    const a = providerAvailable(p);
    if (a.ok) ok.push(p);
    else skipped.push(`${p}: ${a.reason}`);
  }
  return { ok, skipped };
}

/** One way to run decode and prefill steps: onnxruntime-node, or the C API binding. */
interface Stepper {
  decode(batch: number): Promise<DecodeResult>;
  prefill(tokens: number, reps: number): Promise<PrefillResult>;
  release(): Promise<void>;
}

async function openStepper(
  dir: string,
  provider: ProviderName,
  deviceKv: boolean,
  binding: Binding,
): Promise<Stepper> {
  if (binding === 'ort') {
    const s = await openBench(dir, provider, deviceKv);
    return {
      decode: (batch) => decodeStep(s, batch, context, reps),
      prefill: (tokens, r) => prefill(s, tokens, r),
      release: () => s.release(),
    };
  }
  const c = openCapiBench(dir, provider, binding === 'capi-graph');
  return {
    decode: (batch) => capiDecodeStep(c, batch, context, reps),
    prefill: (tokens, r) => capiPrefill(c, tokens, r),
    release: () => {
      c.release();
      return Promise.resolve();
    },
  };
}

const BINDING_LABEL: Record<Binding, string> = {
  ort: '',
  capi: ' (C API)',
  'capi-graph': ' (C API, CUDA graph)',
};

function bindings(provider: ProviderName): Binding[] {
  const wanted = list(values.bindings);
  const unknown = wanted.filter((b) => !(BINDINGS as readonly string[]).includes(b));
  if (unknown.length > 0) throw new Error(`unknown --bindings ${unknown.join(', ')}`);
  return BINDINGS.filter(
    (b) =>
      wanted.includes(b) &&
      (b === 'ort' || provider !== 'webgpu') &&
      (b !== 'capi-graph' || provider === 'cuda'),
  );
}

async function measureDecode(s: Stepper, row: ModelRow, batches: readonly number[]): Promise<void> {
  const label = `${row.model} ${row.provider}${row.deviceKv ? ' device-kv' : ''}`;
  for (const batch of batches) {
    try {
      const d = await s.decode(batch);
      row.decode.push(d);
      if ('stepMs' in d) log(`${label} decode b=${batch}: ${d.stepMs.toFixed(2)} ms`);
    } catch (err) {
      row.decode.push({ batch, error: firstLine(err) });
      // A larger batch fails the same way (out of memory), only slower.
      break;
    }
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/**
 * Op types onnxruntime placed off the CUDA provider, with counts, from the verbose log of a
 * session opened in a child process (the log goes to the process's own output).
 */
function offCuda(dir: string): Record<string, number> {
  const r = spawnSync(process.execPath, ['bench/gpu/placement.ts', dir], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const counts: Record<string, number> = {};
  let ep = '';
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) {
    const text = /VerifyEachNodeIsAssignedToAnEp\]\s*(.*)$/.exec(line)?.[1];
    if (text === undefined) continue;
    const placed = /placed on \[(\w+)\]/.exec(text);
    if (placed !== null) ep = placed[1] ?? '';
    const op = /^(\w+) \(/.exec(text)?.[1];
    if (op !== undefined && ep !== '' && ep !== 'CUDAExecutionProvider') {
      counts[`${op} on ${ep}`] = (counts[`${op} on ${ep}`] ?? 0) + 1;
    }
  }
  return counts;
}

async function measureModel(
  name: string,
  dir: string,
  provider: ProviderName,
  deviceKv: boolean,
  binding: Binding = 'ort',
): Promise<ModelRow> {
  const batches = (provider === 'cpu' ? list(values['cpu-batches']) : list(values.batches)).map(Number);
  const row: ModelRow = {
    model: name,
    provider: `${provider}${BINDING_LABEL[binding]}`,
    deviceKv,
    weightBytes: folderBytes(dir),
    decode: [],
    prefill: [],
  };
  if (provider === 'cuda' && binding === 'ort') row.offProvider = offCuda(dir);
  let s: Stepper | undefined;
  try {
    s = await openStepper(dir, provider, deviceKv, binding);
    await measureDecode(s, row, batches);
    for (const tokens of new Set([128, context])) {
      row.prefill.push(
        await s.prefill(tokens, Math.max(3, Math.floor(reps / 2))).catch((err: unknown) => ({
          tokens,
          error: firstLine(err),
        })),
      );
    }
  } catch (err) {
    row.error = firstLine(err);
  } finally {
    await s?.release();
  }
  return row;
}

function serveSweep(modelDir: string, out: string): string {
  const r = spawnSync(
    process.execPath,
    [
      'bench/serve.ts',
      '--targets',
      'ours',
      '--model',
      modelDir,
      // Only to describe the model: the default model cannot be pulled where there is no network.
      ...(values.gguf === undefined ? [] : ['--gguf', values.gguf]),
      '--out',
      out,
      '--budget',
      '240',
      '--level-timeout',
      '40',
      '--rates',
      '2,8',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 },
  );
  return r.status === 0 ? join(out, 'serve.md') : `failed (${r.status}): ${r.stderr.slice(-2000)}`;
}

function gpuName(): string | undefined {
  const r = spawnSync(
    'nvidia-smi',
    ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
    {
      encoding: 'utf8',
    },
  );
  return r.error === undefined && r.status === 0 ? r.stdout.trim() : undefined;
}

/** The provider the server's `--device auto` opens here. */
async function autoPicked(): Promise<string> {
  const dir = await buildModel(list(values.models)[0] ?? 'default-int4');
  const s = await DecoderSession.open(dir, { device: 'auto' });
  await s.dispose();
  return s.provider;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  mkdirSync(values.work, { recursive: true });
  mkdirSync(values.out, { recursive: true });
  const bw = measureBandwidth();
  log(`copy bandwidth: ${bw === undefined ? 'unknown' : `${bw.gbs.toFixed(0)} GB/s`}`);
  const { ok, skipped } = providers();
  const rows: ModelRow[] = [];
  for (const name of list(values.models)) {
    const dir = await buildModel(name);
    for (const p of ok) {
      for (const binding of bindings(p)) rows.push(await measureModel(name, dir, p, false, binding));
      // WebGPU outputs can stay in device buffers and feed the next step.
      if (p === 'webgpu') rows.push(await measureModel(name, dir, p, true));
    }
  }
  let serve: string | undefined;
  if (values.serve && ok.includes('cuda')) {
    serve = serveSweep(await buildModel('default-fp16'), join(values.out, 'gpu-serve'));
  }
  const report: Report = {
    date: new Date().toISOString(),
    seconds: (performance.now() - t0) / 1000,
    context,
    ortVersion: ort.env.versions.common,
    gpu: gpuName(),
    autoPicked: await autoPicked(),
    bandwidth: bw,
    skipped,
    rows,
    ...(serve === undefined ? {} : { serve }),
  };
  writeFileSync(join(values.out, 'gpu.json'), JSON.stringify(report, null, 2));
  const md = renderReport(report);
  writeFileSync(join(values.out, 'gpu.md'), md);
  console.log(md);
}

/**
 * Several runs' gpu.json into one report: a lease's 10-minute calls each measure part of the
 * matrix. Later files win for the same model, provider and cache placement.
 */
function merge(files: readonly string[]): void {
  const reports = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Report);
  const first = reports[0];
  if (first === undefined) throw new Error('--merge needs at least one gpu.json');
  const rows = new Map<string, ModelRow>();
  for (const r of reports) {
    for (const row of r.rows) {
      const key = `${row.model}|${row.provider}|${row.deviceKv}`;
      // The fuller measurement of the same thing wins; on a tie, the later one.
      if (row.decode.length >= (rows.get(key)?.decode.length ?? 0)) rows.set(key, row);
    }
  }
  const serveMd = values['serve-md'];
  if (serveMd !== undefined) copyFileSync(serveMd, join(values.out, 'gpu-serve.md'));
  const serve = serveMd === undefined ? undefined : 'gpu-serve.md';
  const report: Report = {
    ...first,
    date: reports.map((r) => r.date).join(', '),
    seconds: reports.reduce((n, r) => n + r.seconds, 0),
    rows: [...rows.values()],
    ...(serve === undefined ? {} : { serve }),
  };
  writeFileSync(join(values.out, 'gpu.json'), JSON.stringify(report, null, 2));
  writeFileSync(join(values.out, 'gpu.md'), renderReport(report));
}

if (values.merge === undefined) await main();
else merge(list(values.merge));
