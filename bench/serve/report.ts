/**
 * The benchmark's results: the JSON document (everything measured) and the Markdown page
 * made from it (machine, commands, the target ratios, and one table per server and mode).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus, platform, release, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import type { Settings, TargetName } from './args.ts';
import type { LevelResult } from './loadgen.ts';
import type { Summary } from './stats.ts';
import type { TjsResult } from './tjs.ts';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly onnxruntimeNode: string;
  readonly transformersJs: string;
  readonly llamaCppPython: string;
  readonly llamaCppCommit: string;
  readonly llamaServer: string;
}

/** Which build of the model was measured: the ONNX folder and its builder stamp, the GGUF. */
export interface ModelInfo {
  readonly onnxDir: string;
  readonly onnxBytes: number | null;
  readonly onnxModified: string | null;
  /** config.json's "autoglm" stamp: builder version, profile, precision, source hash. */
  readonly build: unknown;
  readonly gguf: string;
}

export function modelInfo(onnxDir: string, gguf: string): ModelInfo {
  let onnxBytes: number | null = null;
  let onnxModified: string | null = null;
  let build: unknown = null;
  try {
    const st = statSync(join(onnxDir, 'onnx', 'model.onnx'));
    onnxBytes = st.size;
    onnxModified = st.mtime.toISOString();
    build =
      (JSON.parse(readFileSync(join(onnxDir, 'config.json'), 'utf8')) as { autoglm?: unknown }).autoglm ??
      null;
  } catch {
    // A folder of another layout: report what there is.
  }
  return { onnxDir, onnxBytes, onnxModified, build, gguf };
}

export interface TargetResult {
  readonly name: TargetName;
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly url?: string;
  readonly command?: string;
  readonly logFile?: string;
  readonly startupSec?: number;
  readonly model?: string;
  readonly closed: readonly LevelResult[];
  readonly open: readonly LevelResult[];
  readonly tjs?: TjsResult;
}

export interface Ratio {
  readonly name: string;
  readonly value: number | null;
  readonly goal?: number;
  readonly detail: string;
}

export interface BenchResult {
  readonly startedAt: string;
  readonly durationSec: number;
  readonly machine: Machine;
  readonly model: ModelInfo;
  readonly settings: Settings;
  readonly commands: readonly string[];
  readonly targets: readonly TargetResult[];
  readonly ratios: readonly Ratio[];
  readonly notes: readonly string[];
  /** 1, 5 and 15 minute load averages when the run began and ended: other work skews results. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
}

/** The version of an installed package, found from its entry point (its exports may hide package.json). */
function packageVersion(name: string, from = import.meta.url): string {
  try {
    let dir = dirname(createRequire(from).resolve(name));
    for (; dir !== dirname(dir); dir = dirname(dir)) {
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? 'unknown';
    }
  } catch {
    // Not installed.
  }
  return 'unknown';
}

/** "family 25 model 1; avx2 fma" from /proc/cpuinfo, where there is one. */
function cpuDetails(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (k: string): string => new RegExp(`^${k}\\s*: (.*)$`, 'm').exec(info)?.[1] ?? '?';
    const flags = new Set(field('flags').split(' '));
    const simd = ['avx512f', 'avx512_vnni', 'avx_vnni', 'avx2', 'fma', 'f16c'].filter((f) => flags.has(f));
    return ` (family ${field('cpu family')} model ${field('model')}; ${simd.join(' ')})`;
  } catch {
    return '';
  }
}

/** A GPU run carries the production dependencies alone: transformers.js may be absent. */
function transformersJsVersion(): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('@huggingface/transformers');
  } catch {
    return 'not installed';
  }
  return `${packageVersion('@huggingface/transformers')} (onnxruntime-node ${packageVersion('onnxruntime-node', entry)})`;
}

export function machineInfo(llamaCpp: { python: string; commit: string; server: string }): Machine {
  const list = cpus();
  return {
    cpu: `${list[0]?.model ?? 'unknown'}${cpuDetails()}`,
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    onnxruntimeNode: packageVersion('onnxruntime-node'),
    transformersJs: transformersJsVersion(),
    llamaCppPython: llamaCpp.python,
    llamaCppCommit: llamaCpp.commit,
    llamaServer: llamaCpp.server,
  };
}

/** A target's aggregate output tokens/s at a concurrency (its batch, for transformers.js). */
export interface Rate {
  readonly value: number;
  /** The level hit its time limit: the rate is over the tokens streamed until then. */
  readonly cut: boolean;
}

export function throughputAt(t: TargetResult | undefined, c: number): Rate | null {
  if (t === undefined || t.status !== 'ok') return null;
  if (t.tjs !== undefined) {
    const l = t.tjs.levels.find((x) => x.batch === c && (x.status === 'ok' || x.status === 'cut'));
    return l === undefined ? null : { value: l.outputTokensPerSec, cut: l.status === 'cut' };
  }
  const l = t.closed.find((x) => x.concurrency === c && x.outputTokens > 0);
  return l === undefined ? null : { value: l.outputTokensPerSec, cut: l.timedOut };
}

function ratio(name: string, a: Rate | null, b: Rate | null, detail: string, goal?: number): Ratio {
  const value = a !== null && b !== null && b.value > 0 ? a.value / b.value : null;
  const cut = a?.cut === true || b?.cut === true ? '; a level hit its time limit' : '';
  return { name, value, ...(goal === undefined ? {} : { goal }), detail: `${detail}${cut}` };
}

/** The ratios the performance targets ask for, then the same figures for the baselines. */
export function computeRatios(targets: readonly TargetResult[], ref: number): Ratio[] {
  const t = (n: TargetName): TargetResult | undefined => targets.find((x) => x.name === n);
  const at = (n: TargetName, c: number): Rate | null => throughputAt(t(n), c);
  const ours = at('ours', ref);
  const r = `${ref} concurrent`;
  const tjs = `transformers.js batch ${ref}`;
  const scaling = 'baseline scaling';
  return [
    ratio(`ours ${r} ÷ ours single stream`, ours, at('ours', 1), 'aggregate output tokens/s', 8),
    ratio(`ours ${r} ÷ ${tjs}`, ours, at('transformers.js', ref), 'output tokens/s', 5),
    ratio(`ours ${r} ÷ llama-server ${r}`, ours, at('llama-server', ref), 'output tokens/s'),
    ratio(`ours ${r} ÷ llama-cpp-python ${r}`, ours, at('llama-cpp-python', ref), 'output tokens/s'),
    ratio(`llama-server ${r} ÷ its single stream`, at('llama-server', ref), at('llama-server', 1), scaling),
    ratio(
      `llama-cpp-python ${r} ÷ its single stream`,
      at('llama-cpp-python', ref),
      at('llama-cpp-python', 1),
      scaling,
    ),
    ratio(`${tjs} ÷ batch 1`, at('transformers.js', ref), at('transformers.js', 1), scaling),
    ratio(`llama-server ${r} ÷ ${tjs}`, at('llama-server', ref), at('transformers.js', ref), 'baselines'),
  ];
}

const num = (x: number | null, digits = 1): string => (x === null ? '–' : x.toFixed(digits));
const pcts = (s: Summary, scale = 1, digits = 1): string =>
  s.n === 0 ? '–' : [s.p50, s.p90, s.p99].map((v) => num(v === null ? null : v / scale, digits)).join(' / ');

const LEVEL_HEAD =
  '| ok / sent | out tok/s | req/s | TTFT ms p50 / p90 / p99 | TPOT ms p50 / p90 / p99 | ITL ms p50 / p90 / p99 | E2E s p50 / p90 / p99 | other CPU % |';
const LEVEL_ALIGN = '|---:|---|---:|---:|---|---|---|---|---:|';

function levelRow(first: string, l: LevelResult): string {
  const flags = [l.timedOut ? 'time limit' : '', l.offLength > 0 ? `${l.offLength} off-length` : '']
    .filter((x) => x !== '')
    .join(', ');
  const ok = `${l.ok} / ${l.sent}${flags === '' ? '' : ` (${flags})`}`;
  const cells = [
    first,
    ok,
    num(l.outputTokensPerSec),
    num(l.requestsPerSec, 2),
    pcts(l.ttftMs, 1, 0),
    pcts(l.tpotMs),
    pcts(l.itlMs),
    pcts(l.e2eMs, 1000, 2),
    num(l.otherCpuPct ?? null, 0),
  ];
  return `| ${cells.join(' | ')} |`;
}

function targetSection(t: TargetResult): string[] {
  const out = [`### ${t.name}`, ''];
  if (t.command !== undefined) out.push(`\`${t.command}\``, '');
  if (t.url !== undefined) out.push(`URL ${t.url}, model \`${t.model ?? '?'}\``, '');
  if (t.status === 'failed') return [...out, `**Not measured:** ${t.error ?? 'failed'}`, ''];
  if (t.tjs !== undefined) return [...out, ...tjsTable(t.tjs)];
  if (t.closed.length > 0) out.push('Closed loop:', '', `| clients ${LEVEL_HEAD}`, LEVEL_ALIGN);
  for (const l of t.closed) out.push(levelRow(String(l.concurrency), l));
  if (t.open.length > 0)
    out.push('', 'Open loop (Poisson arrivals):', '', `| rate req/s ${LEVEL_HEAD}`, LEVEL_ALIGN);
  for (const l of t.open) out.push(levelRow(String(l.ratePerSec), l));
  const errors = [...new Set([...t.closed, ...t.open].flatMap((l) => l.errors))];
  if (errors.length > 0) out.push('', `Errors: ${errors.slice(0, 5).join('; ')}`);
  return [...out, ''];
}

function tjsTable(r: TjsResult): string[] {
  const out = [
    `Model load ${r.loadSec.toFixed(1)} s. One \`model.generate\` per batch; TTFT is the batch prefill.`,
    '',
    '| batch | status | out tok/s | TTFT ms | TPOT ms | ITL ms p50 / p90 / p99 | total s | other CPU % |',
    '|---:|---|---:|---:|---:|---|---:|---:|',
  ];
  for (const l of r.levels) {
    const status = l.note === undefined ? l.status : `${l.status}: ${l.note}`;
    const cells = [
      l.batch,
      status,
      num(l.outputTokensPerSec),
      num(l.ttftMs, 0),
      num(l.tpotMs),
      pcts(l.itlMs),
      num(l.totalSec),
      num(l.otherCpuPct ?? null, 0),
    ];
    out.push(`| ${cells.join(' | ')} |`);
  }
  return [...out, ''];
}

function ratioRows(ratios: readonly Ratio[]): string[] {
  const rows = ['| ratio | value | target | |', '|---|---:|---:|---|'];
  for (const r of ratios) {
    const goal = r.goal === undefined ? '' : `≥ ${r.goal}×`;
    const verdict = r.goal === undefined || r.value === null ? '' : r.value >= r.goal ? 'met' : 'not met';
    rows.push(
      `| ${r.name} (${r.detail}) | ${r.value === null ? 'n/a' : `${r.value.toFixed(2)}×`} | ${goal} | ${verdict} |`,
    );
  }
  return rows;
}

/** How many measured levels ran while other processes took more than `pct` % of the CPUs. */
export function disturbedLevels(targets: readonly TargetResult[], pct = 10): string[] {
  const out: string[] = [];
  for (const t of targets) {
    for (const l of [...t.closed, ...t.open])
      if ((l.otherCpuPct ?? 0) > pct)
        out.push(`${t.name} ${l.mode === 'closed' ? `${l.concurrency} clients` : `${l.ratePerSec} req/s`}`);
    for (const l of t.tjs?.levels ?? [])
      if ((l.otherCpuPct ?? 0) > pct) out.push(`${t.name} batch ${l.batch}`);
  }
  return out;
}

export function renderMarkdown(res: BenchResult): string {
  const m = res.machine;
  const s = res.settings;
  return [
    '# Serving benchmark',
    '',
    `Run ${res.startedAt}, ${res.durationSec.toFixed(0)} s${s.quick ? ' (--quick smoke run)' : ''}. Written by \`npm run bench:serve\` (bench/serve.ts).`,
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}`,
    `- Node ${m.node}; onnxruntime-node ${m.onnxruntimeNode}; transformers.js ${m.transformersJs}`,
    `- Load average (1/5/15 min) at start ${res.loadAverage.start.map((x) => x.toFixed(2)).join(' / ')}, at end ${res.loadAverage.end.map((x) => x.toFixed(2)).join(' / ')}`,
    `- llama-cpp-python ${m.llamaCppPython} (vendored llama.cpp ${m.llamaCppCommit}); llama-server: ${m.llamaServer}`,
    '',
    '## Model',
    '',
    `- ONNX (ours, transformers.js): \`${res.model.onnxDir}\`, model.onnx ${res.model.onnxBytes === null ? '?' : `${(res.model.onnxBytes / 2 ** 20).toFixed(0)} MiB`}, written ${res.model.onnxModified ?? '?'}, build ${JSON.stringify(res.model.build)}`,
    `- GGUF (llama.cpp): \`${res.model.gguf}\``,
    '',
    '## Workload',
    '',
    `- ${s.api === 'chat' ? '/v1/chat/completions' : '/v1/completions'}, streamed, prompts of exactly ${s.promptTokens} tokens (distinct, seed ${s.seed}), ${s.maxTokens} output tokens each (EOS ignored), greedy.`,
    `- Closed loop at ${s.concurrency.join(', ')} clients, max(${s.requestsFactor} × clients, ${s.requestsMin}) requests each; open loop at ${s.rates.join(', ')} req/s, ${s.openRequests} requests each; ${s.levelTimeoutSec} s limit per level.`,
    "- TTFT: send → first text chunk. TPOT: (E2E − TTFT) / (tokens − 1). ITL: every gap between text chunks. Throughput: output tokens streamed (by requests cut at the time limit too) ÷ the level's wall time; latencies are of finished requests.",
    '',
    '## Commands',
    '',
    '```sh',
    ...res.commands,
    '```',
    '',
    '## Targets',
    '',
    ...ratioRows(res.ratios),
    '',
    ...(res.notes.length > 0 ? ['## Notes', '', ...res.notes.map((n) => `- ${n}`), ''] : []),
    '## Results',
    '',
    ...res.targets.flatMap(targetSection),
  ].join('\n');
}
