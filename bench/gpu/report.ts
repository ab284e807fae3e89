/** The GPU benchmark's tables and goal ratios, from the measured rows. */
import type { DecodeResult, PrefillResult } from './steps.ts';

export interface ModelRow {
  readonly model: string;
  readonly provider: string;
  readonly deviceKv: boolean;
  /** Every weight file's bytes: what one decode step reads once (the tied head reads the table). */
  readonly weightBytes: number;
  readonly decode: DecodeResult[];
  readonly prefill: PrefillResult[];
  error?: string;
  /** Op types (and how many nodes of each) onnxruntime ran on another provider. */
  offProvider?: Record<string, number>;
}

export interface Report {
  readonly date: string;
  readonly seconds: number;
  readonly context: number;
  readonly ortVersion: string;
  readonly gpu: string | undefined;
  readonly autoPicked: string;
  readonly bandwidth: { readonly gbs: number; readonly how: string } | undefined;
  readonly skipped: readonly string[];
  readonly rows: readonly ModelRow[];
  readonly serve?: string;
}

const GB = 1e9;

function label(r: ModelRow): string {
  return `${r.provider}${r.deviceKv ? ' (KV on device)' : ''}`;
}

function stepOf(r: ModelRow | undefined, batch: number): number | undefined {
  const d = r?.decode.find((x) => x.batch === batch);
  return d !== undefined && 'stepMs' in d ? d.stepMs : undefined;
}

/** Bytes a decode step must read over the bandwidth: the time no implementation beats. */
export function floorMs(r: ModelRow, kvBytes: number, gbs: number): number {
  return ((r.weightBytes + kvBytes) / (gbs * GB)) * 1000;
}

function decodeTable(rows: readonly ModelRow[], gbs: number | undefined): string[] {
  const out = [
    '| model | provider | batch | step ms | tokens/s | bytes read / step | floor ms | step ÷ floor | MBU |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.error !== undefined) {
      out.push(`| ${r.model} | ${label(r)} | | failed: ${r.error} | | | | | |`);
      continue;
    }
    for (const d of r.decode) {
      if (!('stepMs' in d)) {
        out.push(`| ${r.model} | ${label(r)} | ${d.batch} | failed: ${d.error} | | | | | |`);
        continue;
      }
      const bytes = r.weightBytes + d.kvBytes;
      const floor = gbs === undefined ? undefined : floorMs(r, d.kvBytes, gbs);
      const cells = [
        r.model,
        label(r),
        String(d.batch),
        d.stepMs.toFixed(2),
        ((d.batch * 1000) / d.stepMs).toFixed(0),
        `${(bytes / 1e6).toFixed(0)} MB`,
        floor?.toFixed(3) ?? '',
        floor === undefined ? '' : `${(d.stepMs / floor).toFixed(1)}×`,
        floor === undefined ? '' : `${((floor / d.stepMs) * 100).toFixed(1)} %`,
      ];
      out.push(`| ${cells.join(' | ')} |`);
    }
  }
  return out;
}

function prefillTable(rows: readonly ModelRow[]): string[] {
  const out = ['| model | provider | prompt tokens | ms | tokens/s |', '|---|---|---:|---:|---:|'];
  for (const r of rows) {
    for (const p of r.prefill) {
      out.push(
        'ms' in p
          ? `| ${r.model} | ${label(r)} | ${p.tokens} | ${p.ms.toFixed(1)} | ${((p.tokens * 1000) / p.ms).toFixed(0)} |`
          : `| ${r.model} | ${label(r)} | ${p.tokens} | failed: ${p.error} | |`,
      );
    }
  }
  return out;
}

function find(
  rows: readonly ModelRow[],
  model: string,
  provider: string,
  deviceKv = false,
): ModelRow | undefined {
  return rows.find((r) => r.model === model && r.provider === provider && r.deviceKv === deviceKv);
}

/** Every way CUDA ran a model: onnxruntime-node and the C API binding, with or without graphs. */
function cudaRows(rows: readonly ModelRow[], model: string): ModelRow[] {
  return rows.filter((r) => r.model === model && r.provider.startsWith('cuda') && !r.deviceKv);
}

function bandwidthGoal(rep: Report): string[] {
  const gbs = rep.bandwidth?.gbs;
  if (gbs === undefined) return [];
  return cudaRows(rep.rows, '1b-fp16').flatMap((r) => {
    const d = r.decode.find((x) => x.batch === 1);
    if (d === undefined || !('stepMs' in d)) return [];
    const ratio = d.stepMs / floorMs(r, d.kvBytes, gbs);
    return [
      `| 1b-fp16 ${r.provider} decode, batch 1: step ÷ bandwidth floor | ${ratio.toFixed(1)}× | ≤ 3× | ${verdict(ratio <= 3)} |`,
    ];
  });
}

function verdict(met: boolean): string {
  return met ? 'met' : 'not met';
}

function scalingGoals(rep: Report, model: string): string[] {
  const out: string[] = [];
  for (const cuda of cudaRows(rep.rows, model)) {
    const s1 = stepOf(cuda, 1);
    const s64 = stepOf(cuda, 64);
    if (s1 !== undefined && s64 !== undefined) {
      const ratio = 64 / s64 / (1 / s1);
      out.push(
        `| ${model} ${cuda.provider} aggregate decode tokens/s, batch 64 ÷ batch 1 | ${ratio.toFixed(1)}× | ≥ 25× | ${verdict(ratio >= 25)} |`,
      );
    }
    const c = stepOf(cuda, 32);
    for (const deviceKv of [false, true]) {
      const w = stepOf(find(rep.rows, model, 'webgpu', deviceKv), 32);
      if (w === undefined || c === undefined) continue;
      const ratio = w / c;
      const kv = deviceKv ? ' (KV on device)' : '';
      out.push(
        `| ${model} ${cuda.provider} ÷ WebGPU${kv} decode throughput, batch 32 | ${ratio.toFixed(1)}× | ≥ 5× | ${verdict(ratio >= 5)} |`,
      );
    }
  }
  return out;
}

function goals(rep: Report): string[] {
  return [
    '| goal | measured | target | |',
    '|---|---:|---:|---|',
    ...bandwidthGoal(rep),
    ...['1b-fp16', '1b-int4', 'default-fp16', 'default-int4'].flatMap((m) => scalingGoals(rep, m)),
  ];
}

export function renderReport(rep: Report): string {
  const lines = [
    '# GPU benchmark',
    '',
    `Run ${rep.date}, ${rep.seconds.toFixed(0)} s. Written by \`node bench/gpu/run.ts\` (bench/gpu/README.md gives the whole recipe).`,
    '',
    `- GPU: ${rep.gpu ?? 'none'}; onnxruntime-node ${rep.ortVersion}; the server's \`--device auto\` opens **${rep.autoPicked}** here`,
    `- Copy bandwidth: ${rep.bandwidth === undefined ? 'not measured' : `${rep.bandwidth.gbs.toFixed(0)} GB/s (${rep.bandwidth.how})`}`,
    `- Decode at a fixed context of ${rep.context} tokens per sequence; median of the timed steps after 3 warm-up steps.`,
    ...rep.skipped.map((s) => `- Provider not loaded: ${s}`),
    '',
    '## Goals',
    '',
    ...goals(rep),
    '',
    '## Decode',
    '',
    ...decodeTable(rep.rows, rep.bandwidth?.gbs),
    '',
    '## Prefill (batch 1)',
    '',
    ...prefillTable(rep.rows),
    '',
  ];
  const off = rep.rows.filter((r) => r.offProvider !== undefined);
  if (off.length > 0) {
    lines.push('## Nodes left off the CUDA provider', '');
    for (const r of off) {
      const ops = Object.entries(r.offProvider ?? {}).map(([op, n]) => `${op} × ${n}`);
      lines.push(`- ${r.model}: ${ops.length === 0 ? 'none' : ops.join(', ')}`);
    }
    lines.push('');
  }
  if (rep.serve !== undefined) {
    const link = rep.serve.endsWith('.md') ? `[${rep.serve}](${rep.serve})` : rep.serve;
    lines.push('## End to end', '', `The whole server on the GPU under bench:serve's sweep: ${link}`, '');
  }
  return lines.join('\n');
}
