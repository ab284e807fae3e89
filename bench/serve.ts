/**
 * `npm run bench:serve`: one run, one model, one set of prompts, four ways of serving it:
 *   ours              node bin/autoglm.js serve (or --target ours=URL)
 *   llama-server      llama.cpp's server on the same model's GGUF, -np parallel slots
 *   llama-cpp-python  python -m llama_cpp.server on the same GGUF (one request at a time)
 *   transformers.js   in-process model.generate over batches of the same prompts
 * Servers run one after another, each started, warmed up, loaded and stopped in turn (and
 * killed on any way out). Writes bench/results/serve.md and serve.json (serve-quick.* with
 * --quick). Set up llama.cpp first with scripts/setup-llamacpp.sh; without it those two
 * targets are reported as not measured.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_MODEL, pullModel } from '../server/src/model/pull/index.ts';
import { resolveModel } from '../server/src/model/resolve.ts';
import { Tokenizer } from '../server/src/model/tokenizer/tokenizer.ts';
import { parseSettings, requestsFor, USAGE, type Settings, type TargetName } from './serve/args.ts';
import { servedModel, streamRequest, type Endpoint } from './serve/client.ts';
import { otherCpuPercent, sampleCpu } from './serve/cpu.ts';
import { runClosedLoop, runOpenLoop, type LevelResult } from './serve/loadgen.ts';
import { exactPrompts, serverCounter, singleTokenWords } from './serve/prompts.ts';
import {
  computeRatios,
  disturbedLevels,
  machineInfo,
  modelInfo,
  renderMarkdown,
  type BenchResult,
  type TargetResult,
} from './serve/report.ts';
import { freePort, killAll, quote, startServer, type StartedServer } from './serve/servers.ts';
import {
  extraBodyFor,
  llamaCppInstall,
  llamaCppPythonPlan,
  llamaServerPlan,
  llamaServerVersion,
  oursPlan,
  type LlamaCppInstall,
  type ServerPlan,
  type ServerTarget,
} from './serve/targets.ts';

const log = (msg: string): void => {
  console.error(`[bench:serve] ${msg}`);
};

interface Context {
  readonly s: Settings;
  readonly modelDir: string;
  readonly gguf: string;
  readonly tokenizer: Tokenizer;
  readonly prompts: readonly string[];
  readonly llama: LlamaCppInstall | undefined;
  readonly logDir: string;
  readonly notes: string[];
}

async function planFor(ctx: Context, target: ServerTarget): Promise<ServerPlan> {
  const port = await freePort();
  const missing = 'llama.cpp is not set up: run scripts/setup-llamacpp.sh';
  switch (target) {
    case 'ours':
      return oursPlan(ctx.s, ctx.modelDir, port);
    case 'llama-server':
      if (ctx.llama?.llamaServer === undefined) throw new Error(missing);
      return llamaServerPlan(ctx.s, ctx.llama.llamaServer, ctx.gguf, port);
    case 'llama-cpp-python':
      if (ctx.llama === undefined) throw new Error(missing);
      return llamaCppPythonPlan(ctx.s, ctx.llama.python, ctx.gguf, port);
  }
}

const fmt = (l: LevelResult): string =>
  `${l.ok}/${l.sent} ok, ${l.outputTokensPerSec.toFixed(1)} tok/s, TTFT p50 ${l.ttftMs.p50?.toFixed(0) ?? '–'} ms, ` +
  `TPOT p50 ${l.tpotMs.p50?.toFixed(1) ?? '–'} ms${l.timedOut ? ' (time limit)' : ''}`;

type Level =
  | { readonly mode: 'closed'; readonly c: number }
  | { readonly mode: 'open'; readonly rate: number; readonly k: number };

const levelName = (l: Level): string => (l.mode === 'closed' ? `${l.c} clients` : `${l.rate} req/s`);

/** The closed-loop sweep, then the open-loop rates, against one endpoint, within `until`. */
async function loadEndpoint(
  ctx: Context,
  ep: Endpoint,
  until: number,
): Promise<[LevelResult[], LevelResult[]]> {
  const { s } = ctx;
  const levels: Level[] = [
    ...s.concurrency.map((c) => ({ mode: 'closed' as const, c })),
    ...s.rates.map((rate, k) => ({ mode: 'open' as const, rate, k })),
  ];
  // Every request of a target gets its own prompt, so no level hits a prefix cache that an
  // earlier one filled; the last prompt is kept for the warm-up.
  let used = 0;
  const prompt = (i: number): string => ctx.prompts[(used + i) % (ctx.prompts.length - 1)] ?? '';
  const results: LevelResult[] = [];
  for (const [i, level] of levels.entries()) {
    // At most --level-timeout, and a fair share of the target's time left.
    const timeLimitMs = Math.min(s.levelTimeoutSec * 1000, (until - performance.now()) / (levels.length - i));
    if (timeLimitMs < 1000) {
      ctx.notes.push(`${ep.name}: ${levelName(level)} skipped (run budget spent)`);
      continue;
    }
    const requests = level.mode === 'closed' ? requestsFor(s, level.c) : s.openRequests;
    const opts = { requests, maxTokens: s.maxTokens, timeLimitMs, prompt };
    const before = sampleCpu();
    const measured =
      level.mode === 'closed'
        ? await runClosedLoop(ep, level.c, opts)
        : await runOpenLoop(ep, level.rate, s.seed * 1000 + level.k, opts);
    const l = { ...measured, otherCpuPct: otherCpuPercent(before, sampleCpu()) };
    used += requests;
    log(`${ep.name} ${levelName(level)}: ${fmt(l)}`);
    results.push(l);
  }
  return [results.filter((l) => l.mode === 'closed'), results.filter((l) => l.mode === 'open')];
}

/** Sends one request and checks that the server honours max_tokens with EOS ignored. */
async function warmUp(ctx: Context, ep: Endpoint): Promise<void> {
  const signal = AbortSignal.timeout(60_000);
  const last = ctx.prompts.at(-1) ?? '';
  const warm = await streamRequest(ep, last, ctx.s.maxTokens, performance.now(), signal);
  if (!warm.ok) throw new Error(`warm-up request failed: ${warm.error ?? '?'}`);
  if (warm.outputTokens !== ctx.s.maxTokens)
    ctx.notes.push(
      `${ep.name}: the warm-up produced ${warm.outputTokens} tokens for max_tokens ${ctx.s.maxTokens}`,
    );
}

async function start(ctx: Context, target: ServerTarget): Promise<StartedServer> {
  const plan = await planFor(ctx, target);
  log(`starting ${target}: ${[plan.spec.command, ...plan.spec.args].map(quote).join(' ')}`);
  const server = await startServer(plan.spec, ctx.logDir);
  log(`${target} ready in ${server.startupSec.toFixed(1)} s`);
  return server;
}

async function benchServer(ctx: Context, target: ServerTarget, until: number): Promise<TargetResult> {
  const given = ctx.s.urls[target];
  let server: StartedServer | undefined;
  let where: Partial<TargetResult> = {};
  try {
    if (given === undefined) {
      server = await start(ctx, target);
      where = { command: server.commandLine, logFile: server.logFile, startupSec: server.startupSec };
    }
    const baseUrl = given ?? server?.baseUrl ?? '';
    const model = await servedModel(baseUrl, DEFAULT_MODEL.name);
    where = { ...where, url: baseUrl, model };
    const extraBody = extraBodyFor(target, ctx.s);
    const ep: Endpoint = { name: target, baseUrl, model, api: ctx.s.api, extraBody };
    await warmUp(ctx, ep);
    const [closed, open] = await loadEndpoint(ctx, ep, until);
    return { name: target, status: 'ok', ...where, closed, open };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log(`${target} not measured: ${error}`);
    return { name: target, status: 'failed', error, ...where, closed: [], open: [] };
  } finally {
    await server?.stop();
  }
}

async function benchTjs(ctx: Context, until: number): Promise<TargetResult> {
  const { s, tokenizer } = ctx;
  const batches = s.concurrency;
  const ids = ctx.prompts.slice(0, Math.max(...batches)).map((p) =>
    s.api === 'chat'
      ? tokenizer.encode(
          tokenizer.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }),
          {
            addSpecialTokens: false,
          },
        )
      : tokenizer.encode(p),
  );
  try {
    log(`transformers.js: batches ${batches.join(', ')} from ${ctx.modelDir}`);
    // Loaded only when measured: a GPU run carries the production dependencies alone.
    const { benchTransformersJs } = await import('./serve/tjs.ts');
    const tjs = await benchTransformersJs(ctx.modelDir, ids, {
      batches,
      maxTokens: s.maxTokens,
      levelTimeoutMs: s.levelTimeoutSec * 1000,
      deadline: until,
    });
    return { name: 'transformers.js', status: 'ok', command: '(in process)', closed: [], open: [], tjs };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log(`transformers.js not measured: ${error}`);
    return { name: 'transformers.js', status: 'failed', error, closed: [], open: [] };
  }
}

async function prepare(s: Settings): Promise<Context> {
  const modelDir = s.model ?? (await resolveModel(undefined, { onProgress: log })).dir;
  let gguf = s.gguf;
  if (gguf === undefined) {
    const pulled = await pullModel(DEFAULT_MODEL.source);
    if (pulled.kind !== 'gguf') throw new Error('the default model source is not a GGUF file');
    gguf = pulled.path;
  }
  const tokenizer = await Tokenizer.load(modelDir);
  const words = singleTokenWords((t) => tokenizer.encode(t, { addSpecialTokens: false }));
  // One prompt per request of a target (the closed levels, the open rates), one more to warm up.
  const closedTotal = s.concurrency.reduce((n, c) => n + requestsFor(s, c), 0);
  const most = Math.max(closedTotal + s.rates.length * s.openRequests, ...s.concurrency) + 1;
  const prompts = exactPrompts(serverCounter(tokenizer, s.api), words, s.promptTokens, most, s.seed);
  const logDir = mkdtempSync(join(tmpdir(), 'autoglm-bench-serve-'));
  log(
    `model ${modelDir}; GGUF ${gguf}; ${prompts.length} prompts of ${s.promptTokens} tokens; logs in ${logDir}`,
  );
  return { s, modelDir, gguf, tokenizer, prompts, llama: llamaCppInstall(s), logDir, notes: [] };
}

function describeLlama(ctx: Context): { python: string; commit: string; server: string } {
  const v = ctx.llama?.versions ?? {};
  const str = (x: unknown): string => (typeof x === 'string' && x !== '' ? x : 'unknown');
  return {
    python: ctx.llama === undefined ? 'not installed' : str(v['llamaCppPython']),
    commit: str(v['llamaCppCommit']),
    server: ctx.llama?.llamaServer === undefined ? 'not built' : llamaServerVersion(ctx.llama.llamaServer),
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const s = parseSettings(argv);
  if (s === undefined) {
    console.log(USAGE);
    return;
  }
  const t0 = performance.now();
  const loadAtStart = loadavg();
  const startedAt = new Date().toISOString();
  const runDeadline = t0 + s.budgetSec * 1000;
  const ctx = await prepare(s);
  const targets: TargetResult[] = [];
  for (const [i, name] of s.targets.entries()) {
    // A fair share of what is left, so a slow target cannot starve the ones after it.
    const until = performance.now() + (runDeadline - performance.now()) / (s.targets.length - i);
    const target: TargetName = name;
    targets.push(
      target === 'transformers.js' ? await benchTjs(ctx, until) : await benchServer(ctx, target, until),
    );
  }
  if (s.targets.includes('llama-cpp-python'))
    ctx.notes.push(
      'llama-cpp-python serves one request at a time (an asyncio lock around a single llama context; it has no parallel slots), so its concurrency levels measure queueing; llama-server is the batching baseline.',
    );
  const disturbed = disturbedLevels(targets);
  if (disturbed.length > 0)
    ctx.notes.push(
      `Other processes used more than 10 % of the CPUs during ${disturbed.join(', ')} (column "other CPU %"): on 2 cores that slows every target, llama.cpp's spinning threads most; rerun on a quiet machine before trusting those rows.`,
    );
  const ref = s.concurrency.includes(32) ? 32 : Math.max(...s.concurrency);
  const result: BenchResult = {
    startedAt,
    durationSec: (performance.now() - t0) / 1000,
    machine: machineInfo(describeLlama(ctx)),
    model: modelInfo(ctx.modelDir, ctx.gguf),
    settings: s,
    commands: [
      'scripts/setup-llamacpp.sh',
      `npm run bench:serve${argv.length > 0 ? ` -- ${argv.map(quote).join(' ')}` : ''}`,
    ],
    targets,
    ratios: computeRatios(targets, ref),
    notes: ctx.notes,
    loadAverage: { start: loadAtStart, end: loadavg() },
  };
  mkdirSync(s.out, { recursive: true });
  const base = join(s.out, s.quick ? 'serve-quick' : 'serve');
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(result));
  log(`wrote ${relative(process.cwd(), base)}.md and .json in ${result.durationSec.toFixed(0)} s`);
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
try {
  await main(process.argv.slice(2));
} catch (err) {
  console.error(`bench:serve failed: ${err instanceof Error ? err.message : String(err)}`);
  killAll();
  process.exitCode = 1;
}
