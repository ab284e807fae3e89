/**
 * `npm run bench:build`: time and peak memory of building the default model, each profile
 * and precision in a fresh process so peak RSS is the build's own. Writes
 * bench/results/build.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MODEL, pullModel } from '../server/src/model/pull/index.ts';
import { PRECISIONS, PROFILES } from '../server/src/model/build/options.ts';

const CHILD = `
const { buildFromGguf } = await import(${JSON.stringify(new URL('../server/src/model/build/index.ts', import.meta.url).href)});
const [gguf, out, profile, precision] = process.argv.slice(1);
const t = performance.now();
const r = await buildFromGguf(gguf, out, { profile, precision });
const seconds = (performance.now() - t) / 1000;
console.log(JSON.stringify({ seconds, bytes: r.modelBytes + r.externalDataBytes, maxRssKiB: process.resourceUsage().maxRSS }));
`;

interface Row {
  readonly profile: string;
  readonly precision: string;
  readonly seconds: number;
  readonly bytes: number;
  readonly maxRssKiB: number;
}

const pulled = await pullModel(DEFAULT_MODEL.source);
if (pulled.kind !== 'gguf') throw new Error('the default model is a GGUF file');
const work = mkdtempSync(join(tmpdir(), 'autoglm-bench-build-'));
const rows: Row[] = [];
try {
  for (const profile of PROFILES) {
    for (const precision of PRECISIONS) {
      const out = join(work, `${profile}-${precision}`);
      const res = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', CHILD, pulled.path, out, profile, precision],
        {
          encoding: 'utf8',
        },
      );
      if (res.status !== 0) throw new Error(`build ${profile} ${precision} failed:\n${res.stderr}`);
      rows.push({
        profile,
        precision,
        ...(JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as Omit<Row, 'profile' | 'precision'>),
      });
      rmSync(out, { recursive: true, force: true });
      console.log(rows.at(-1));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const ortVersion = (await import('onnxruntime-node/package.json', { with: { type: 'json' } })).default
  .version;
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const table = rows
  .map(
    (r) =>
      `| ${r.profile} | ${r.precision} | ${r.seconds.toFixed(2)} | ${(r.maxRssKiB / 1024).toFixed(0)} | ${(r.bytes / 1e6).toFixed(1)} |`,
  )
  .join('\n');
const md = `# Building the default model

SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) to ONNX, each build in a fresh Node process.
Target: under a minute on this machine.

- Command: \`npm run bench:build\`
- Machine: ${cpus().length} × ${cpu}, Node ${process.version}, onnxruntime-node ${ortVersion}, commit ${commit}
- Time is wall-clock from reading the GGUF to the renamed output folder; memory is the process's peak RSS.

| profile | precision | seconds | peak RSS (MiB) | output (MB) |
| --- | --- | ---: | ---: | ---: |
${table}
`;
writeFileSync(new URL('results/build.md', import.meta.url), md);
console.log(md);
