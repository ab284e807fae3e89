/**
 * `node bench/gpu/capi-compare.ts [--model DIR] [--device cpu|cuda] [--graph]`: decode step
 * time of one model through onnxruntime-node (a host cache bound as past and present, as
 * SlotKvCache runs it) against the C API binding, in one process. Rounds alternate which goes
 * first, so load that comes and goes (a shared machine) falls on both alike; each round's
 * number is the median of its timed steps, and the table gives the median of the rounds.
 * Without --model it uses the default model as `autoglm` caches it, or else builds a random
 * model of the `small` size.
 */
import { existsSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildRandom } from '../../server/src/model/build/index.ts';
import { capiDecodeStep, openCapiBench, type CapiBench } from './capi-steps.ts';
import { decodeStep, median, openBench, type BenchSession, type DecodeResult } from './steps.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    graph: { type: 'boolean', default: false },
    context: { type: 'string', default: '96' },
    batches: { type: 'string', default: '1,32' },
    rounds: { type: 'string', default: '5' },
    reps: { type: 'string', default: '10' },
  },
});

const DEFAULT_DIR = join(homedir(), '.cache', 'autoglm', 'models', 'smollm2-135m-instruct-fast-int4');

async function modelDir(): Promise<string> {
  if (values.model !== undefined) return values.model;
  if (existsSync(join(DEFAULT_DIR, 'config.json'))) return DEFAULT_DIR;
  const dir = join(tmpdir(), 'autoglm-capi-compare-small');
  if (!existsSync(join(dir, 'config.json'))) {
    await buildRandom('small', dir, { profile: 'fast', precision: 'int4' }, { seed: 1 });
  }
  return dir;
}

function ms(d: DecodeResult): number {
  if (!('stepMs' in d)) throw new Error(d.error);
  return d.stepMs;
}

async function main(): Promise<void> {
  const device = values.device === 'cuda' ? 'cuda' : 'cpu';
  const context = Number(values.context);
  const reps = Number(values.reps);
  const rounds = Number(values.rounds);
  const batches = values.batches.split(',').map(Number);
  const dir = await modelDir();
  const ort: BenchSession = await openBench(dir, device, false);
  const capi: CapiBench = openCapiBench(dir, device, values.graph);
  const times = new Map<string, number[]>();
  const record = (key: string, v: number): void => {
    times.set(key, [...(times.get(key) ?? []), v]);
  };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const batch of batches) {
        const runs = [
          async () => {
            record(`ort ${batch}`, ms(await decodeStep(ort, batch, context, reps)));
          },
          async () => {
            record(`capi ${batch}`, ms(await capiDecodeStep(capi, batch, context, reps)));
          },
        ];
        if (r % 2 === 1) runs.reverse();
        for (const run of runs) await run();
      }
      console.error(`[capi-compare] round ${r + 1}/${rounds} done`);
    }
  } finally {
    capi.release();
    await ort.release();
  }
  const binding = `C API${values.graph ? ' + CUDA graph' : ''}`;
  console.log(`Model ${dir}, ${device}, context ${context}, ${rounds} rounds of ${reps} timed steps.\n`);
  console.log(`| batch | onnxruntime-node ms | ${binding} ms | speed-up | rounds (ort / capi) |`);
  console.log('|---:|---:|---:|---:|---|');
  for (const batch of batches) {
    const o = times.get(`ort ${batch}`) ?? [];
    const c = times.get(`capi ${batch}`) ?? [];
    const list = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
    console.log(
      `| ${batch} | ${median(o).toFixed(2)} | ${median(c).toFixed(2)} | ${(median(o) / median(c)).toFixed(2)}× | ${list(o)} / ${list(c)} |`,
    );
  }
}

await main();
