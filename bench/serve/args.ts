/**
 * `npm run bench:serve -- [flags]`: parsed once into a frozen settings object. Defaults fit
 * the whole run in under 25 minutes on a 2-core machine; --quick is a smoke run for CI
 * (under 2 minutes) that still measures 32 concurrent streams.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Api } from './client.ts';

export const TARGETS = ['ours', 'llama-server', 'llama-cpp-python', 'transformers.js'] as const;
export type TargetName = (typeof TARGETS)[number];

export interface Settings {
  readonly quick: boolean;
  readonly targets: readonly TargetName[];
  /** Servers already running, by target name: not started or stopped by the bench. */
  readonly urls: Readonly<Partial<Record<TargetName, string>>>;
  readonly api: Api;
  readonly promptTokens: number;
  readonly maxTokens: number;
  readonly concurrency: readonly number[];
  /** Requests per closed-loop level: max(factor × concurrency, minimum). */
  readonly requestsFactor: number;
  readonly requestsMin: number;
  readonly rates: readonly number[];
  readonly openRequests: number;
  readonly levelTimeoutSec: number;
  readonly budgetSec: number;
  readonly seed: number;
  readonly threads: number;
  /** llama-server's parallel slots; default the largest concurrency. */
  readonly slots: number;
  readonly model: string | undefined;
  readonly gguf: string | undefined;
  readonly llamacppVenv: string | undefined;
  readonly out: string;
}

export const USAGE = `usage: node bench/serve.ts [flags]
  --quick                   CI smoke run (< 2 min)
  --targets a,b             of ${TARGETS.join(', ')} (default: all)
  --target name=url         use a running server for a target instead of starting one (repeatable)
  --api completions|chat    the endpoint to load (default completions)
  --prompt-tokens N         exact prompt length (default 64)
  --max-tokens N            output tokens per request, EOS ignored (default 64)
  --concurrency 1,2,...     closed-loop levels (default 1,2,4,8,16,32,64)
  --requests-factor F       requests per level = max(F × concurrency, --requests-min) (default 2)
  --requests-min N          (default 16)
  --rates r1,r2             open-loop Poisson arrival rates, requests/s (default 0.5,1,2)
  --open-requests N         requests per open-loop rate (default 24)
  --level-timeout S         time limit of one level or batch, seconds (default 90)
  --budget S                time limit of the whole run, seconds (default 1380)
  --seed N                  prompts and arrival schedules (default 1)
  --threads N               llama.cpp threads (default: available CPUs)
  --slots N                 llama-server -np (default: the largest concurrency)
  --model DIR               ONNX model folder (default: the default model, pulled and built)
  --gguf FILE               GGUF for llama.cpp (default: the default model's)
  --llamacpp-venv DIR       (default \${AUTOGLM_HOME:-~/.cache/autoglm}/llamacpp-venv)
  --out DIR                 where serve.md and serve.json go (default bench/results)`;

const FULL = {
  promptTokens: 64,
  maxTokens: 64,
  concurrency: [1, 2, 4, 8, 16, 32, 64],
  requestsFactor: 2,
  requestsMin: 16,
  rates: [0.5, 1, 2],
  openRequests: 24,
  levelTimeoutSec: 90,
  budgetSec: 1380,
};
const QUICK: typeof FULL = {
  promptTokens: 32,
  maxTokens: 16,
  concurrency: [1, 32],
  requestsFactor: 1,
  requestsMin: 4,
  rates: [2],
  openRequests: 8,
  levelTimeoutSec: 20,
  budgetSec: 110,
};

function positive(name: string, raw: string | undefined, fallback: number, integer = true): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!(Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v))))
    throw new Error(`--${name} wants a positive ${integer ? 'integer' : 'number'}, not '${raw}'`);
  return v;
}

function list(name: string, raw: string | undefined, fallback: readonly number[], integer = true): number[] {
  if (raw === undefined) return [...fallback];
  return raw.split(',').map((x) => positive(name, x.trim(), 0, integer));
}

function targetName(name: string): TargetName {
  const t = TARGETS.find((x) => x === name);
  if (t === undefined) throw new Error(`unknown target '${name}'; one of ${TARGETS.join(', ')}`);
  return t;
}

function parseUrls(raw: readonly string[]): Partial<Record<TargetName, string>> {
  const urls: Partial<Record<TargetName, string>> = {};
  for (const item of raw) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new Error(`--target wants name=url, not '${item}'`);
    const url = new URL(item.slice(eq + 1));
    urls[targetName(item.slice(0, eq))] = url.href.replace(/\/$/, '');
  }
  return urls;
}

const OPTIONS = {
  quick: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  targets: { type: 'string' },
  target: { type: 'string', multiple: true },
  api: { type: 'string' },
  'prompt-tokens': { type: 'string' },
  'max-tokens': { type: 'string' },
  concurrency: { type: 'string' },
  'requests-factor': { type: 'string' },
  'requests-min': { type: 'string' },
  rates: { type: 'string' },
  'open-requests': { type: 'string' },
  'level-timeout': { type: 'string' },
  budget: { type: 'string' },
  seed: { type: 'string' },
  threads: { type: 'string' },
  slots: { type: 'string' },
  model: { type: 'string' },
  gguf: { type: 'string' },
  'llamacpp-venv': { type: 'string' },
  out: { type: 'string' },
} as const;

/** The settings, or undefined when --help was asked for. Throws on any bad flag. */
export function parseSettings(argv: readonly string[]): Settings | undefined {
  const { values: v } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (v.help === true) return undefined;
  const quick = v.quick === true;
  const d = quick ? QUICK : FULL;
  const api = v.api ?? 'completions';
  if (api !== 'completions' && api !== 'chat') throw new Error(`--api is completions or chat, not '${api}'`);
  const concurrency = list('concurrency', v.concurrency, d.concurrency);
  return Object.freeze({
    quick,
    targets: v.targets === undefined ? [...TARGETS] : v.targets.split(',').map((s) => targetName(s.trim())),
    urls: parseUrls(v.target ?? []),
    api,
    promptTokens: positive('prompt-tokens', v['prompt-tokens'], d.promptTokens),
    maxTokens: positive('max-tokens', v['max-tokens'], d.maxTokens),
    concurrency,
    requestsFactor: positive('requests-factor', v['requests-factor'], d.requestsFactor, false),
    requestsMin: positive('requests-min', v['requests-min'], d.requestsMin),
    rates: list('rates', v.rates, d.rates, false),
    openRequests: positive('open-requests', v['open-requests'], d.openRequests),
    levelTimeoutSec: positive('level-timeout', v['level-timeout'], d.levelTimeoutSec, false),
    budgetSec: positive('budget', v.budget, d.budgetSec, false),
    seed: positive('seed', v.seed, 1),
    threads: positive('threads', v.threads, availableParallelism()),
    slots: positive('slots', v.slots, Math.max(...concurrency)),
    model: v.model,
    gguf: v.gguf,
    llamacppVenv: v['llamacpp-venv'],
    out: v.out ?? 'bench/results',
  });
}

export const requestsFor = (s: Settings, concurrency: number): number =>
  Math.max(Math.ceil(s.requestsFactor * concurrency), s.requestsMin);
