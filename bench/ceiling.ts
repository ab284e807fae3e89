/**
 * `npm run bench:ceiling`: how far bench:serve's throughput targets sit from this machine's
 * arithmetic. Reads the committed bench/results/serve.json (what was measured), counts the
 * workload's floating-point operations from the model's config.json, measures the fastest
 * float32 matrix product ONNX Runtime runs here, and writes bench/results/ceiling.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { measureGemmPeak, modelShape, requestFlops, tokensPerSecondCeiling } from './serve/ceiling.ts';
import { throughputAt, type BenchResult } from './serve/report.ts';
import { DEFAULT_MODEL, pullModel } from '../server/src/model/pull/index.ts';
import { resolveModel } from '../server/src/model/resolve.ts';

const { values } = parseArgs({
  options: {
    serve: { type: 'string', default: 'bench/results/serve.json' },
    model: { type: 'string' },
    out: { type: 'string', default: 'bench/results/ceiling.md' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});

async function modelDir(): Promise<string> {
  if (values.model !== undefined) return values.model;
  await pullModel(DEFAULT_MODEL.source);
  return (await resolveModel(undefined)).dir;
}

const res = JSON.parse(readFileSync(values.serve, 'utf8')) as BenchResult;
const { promptTokens: prompt, maxTokens: output } = res.settings;
const dir = await modelDir();
const shape = await modelShape(dir);
const flops = requestFlops(shape, prompt, output, true);
const lean = requestFlops(shape, prompt, output, false);
const load = loadavg()[0] ?? 0;
const peak = await measureGemmPeak(Number(values.threads));
const int8 = await measureGemmPeak(Number(values.threads), 'int8');
const target = (name: string) => res.targets.find((t) => t.name === name);
const ours1 = throughputAt(target('ours'), 1)?.value;
const tjs32 = throughputAt(target('transformers.js'), 32)?.value;
const ceiling = tokensPerSecondCeiling(flops, output, peak.gflops);
const gflopsFor = (tokPerSec: number): number => ((tokPerSec / output) * flops.total) / 1e9;

const rows: [string, number][] = [];
if (ours1 !== undefined) rows.push([`8 × ours single stream (8 × ${ours1.toFixed(1)})`, 8 * ours1]);
if (tjs32 !== undefined) rows.push([`5 × transformers.js batch 32 (5 × ${tjs32.toFixed(1)})`, 5 * tjs32]);
for (const name of ['ours', 'llama-server', 'transformers.js']) {
  const r = throughputAt(target(name), 32)?.value;
  if (r !== undefined) rows.push([`${name} at 32, measured`, r]);
}

const g = (x: number): string => (x / 1e9).toFixed(2);
const md = [
  '# Throughput ceiling of the serving benchmark',
  '',
  `Written by \`npm run bench:ceiling\` (bench/ceiling.ts) on ${new Date().toISOString()}, from \`${values.serve}\` (run ${res.startedAt}).`,
  '',
  `- CPU: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores; load average ${load.toFixed(2)} at start`,
  `- Fastest float32 matrix product (ONNX Runtime MatMul, [${peak.m}, ${peak.k}] × [${peak.k}, ${peak.n}], ${peak.threads} threads, median of 10): **${peak.gflops.toFixed(1)} GFLOP/s**`,
  `- Model \`${dir}\`: ${shape.num_hidden_layers} layers, hidden ${shape.hidden_size}, MLP ${shape.intermediate_size}, vocabulary ${shape.vocab_size}`,
  `- One request (${prompt} prompt tokens, ${output} generated): ${g(flops.total)} GFLOP = ${g(flops.matmul)} projections and MLP + ${g(flops.attention)} attention + ${g(flops.head)} output head over every prompt position (${g(lean.total)} GFLOP if the head ran on the last prompt position only)`,
  `- So no server of this model reaches more than **${ceiling.toFixed(0)} output tokens/s** on this workload here, even with every operation at the matrix-product peak (${tokensPerSecondCeiling(lean, output, peak.gflops).toFixed(0)} with the leaner head).`,
  '',
  `- int8 products (MatMulInteger, the same sizes) run at ${int8.gflops.toFixed(1)} GOP/s: an implementation computing every matrix product in int8, as llama.cpp does for 4-bit weights, would be bound at ${tokensPerSecondCeiling(flops, output, int8.gflops).toFixed(0)} output tokens/s.`,
  '',
  '| throughput | output tokens/s | arithmetic it needs | share of the float32 peak | share of the int8 peak |',
  '|---|---:|---:|---:|---:|',
  ...rows.map(([label, t]) => {
    const need = gflopsFor(t);
    return `| ${label} | ${t.toFixed(1)} | ${need.toFixed(1)} GFLOP/s | ${((need / peak.gflops) * 100).toFixed(0)} % | ${((need / int8.gflops) * 100).toFixed(0)} % |`;
  }),
  '',
  'A target above 100 % of the peak cannot be met on this machine by any implementation; one',
  'near it only by running every operation, attention and sampling included, at the speed of',
  "ONNX Runtime's best large matrix product.",
  '',
].join('\n');
writeFileSync(values.out, md);
console.log(md);
