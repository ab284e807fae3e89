import { readFileSync } from 'node:fs';
import { SERVING_PARAMS_DEFAULTS, servingParamsErrors, type ServingParams } from '../../../crds/tuning.ts';
import { AutoGLMError } from '../errors.ts';
import { DEFAULT_SERVE, startServer, type ServeOptions } from '../http/server.ts';
import { DEVICES } from '../runtime/decoder.ts';
import { BINDINGS } from '../runtime/open-kv.ts';
import { PRECISIONS, PROFILES } from '../model/build/options.ts';
import { DEFAULT_BUILD } from '../model/resolve.ts';
import pkg from '../../../package.json' with { type: 'json' };
import { intArg, numArg, oneOf, parse } from './args.ts';

export const SERVE_USAGE = `usage: autoglm serve [options]

Serves a model over an OpenAI-compatible HTTP API.

options:
  -m, --model <dir|source>      model folder or source (default: SmolLM2-135M-Instruct)
  --served-model-name <name>    the name clients send as "model"
  --host <addr>                 listen address (default $HOST or 127.0.0.1)
  --port <n>                    listen port (default $PORT or 8000)
  --device auto|cuda|webgpu|cpu execution provider (auto: CUDA, then WebGPU, then CPU)
  --precision int4|int8|fp16|fp32  weights when building a GGUF source (default int4)
  --profile fast|portable       graph profile when building a GGUF source (default fast)
  --head-gating                 build with attention-head gating (see --head-entropy-threshold)
  --threads <n>                 CPU threads per op (0: one per core)
  --binding auto|capi|node      how steps reach ONNX Runtime (default $AUTOGLM_BINDING or auto: the C API for fast-profile models on CPU or CUDA)
  --max-model-len <n>           longest prompt + completion per request (default 2048)
  --kv-cache-tokens <n>         KV cache capacity in tokens (default 65536)
  --max-batch-size <n>          sequences per step (live-tunable)
  --max-batched-tokens <n>      tokens per step (live-tunable)
  --max-queue-delay-ms <ms>     how long a step may wait to fill a batch (live-tunable)
  --compression none|gzip:L|br:L  response compression (live-tunable)
  --stream-chunk-tokens <n>     tokens per streamed event (live-tunable)
  --kv-window-tokens <n>        recent tokens a sequence keeps in the KV cache; 0 keeps all (live-tunable)
  --kv-sink-tokens <n>          first tokens never evicted from the KV cache (live-tunable, default 4)
  --head-entropy-threshold <x>  skip attention heads below this normalized entropy; 0 skips none (live-tunable)
  --head-update-interval <n>    tokens between head-entropy measurements (live-tunable, default 32)
  --max-waiting <n>             queued requests before 429 (default 256)
  --api-key-file <path>         accept the keys in this file, one per line (also $AUTOGLM_API_KEYS, comma-separated)
  --tuning-file <path>          live tuning file to watch (default $AUTOGLM_TUNING_FILE); sections per $NODE_NAME
  --shutdown-timeout <s>        how long SIGTERM waits for running requests (default 30)`;

function apiKeys(file: string | undefined): string[] {
  const fromEnv = (process.env['AUTOGLM_API_KEYS'] ?? '').split(',');
  let fromFile: string[] = [];
  if (file !== undefined) {
    try {
      fromFile = readFileSync(file, 'utf8').split('\n');
    } catch (err) {
      throw new AutoGLMError(
        'invalid_argument',
        `cannot read --api-key-file ${file}: ${(err as Error).message}`,
      );
    }
  }
  return [...fromEnv, ...fromFile].map((k) => k.trim()).filter((k) => k !== '' && !k.startsWith('#'));
}

function compression(v: string | undefined): ServingParams['compression'] {
  if (v === undefined) return SERVING_PARAMS_DEFAULTS.compression;
  const [algorithm, level] = v.split(':');
  if (algorithm === 'none') return { algorithm: 'none' };
  if ((algorithm === 'gzip' || algorithm === 'br') && level !== undefined)
    return { algorithm, level: Number(level) };
  throw new AutoGLMError(
    'invalid_argument',
    `--compression must be none, gzip:LEVEL or br:LEVEL, not "${v}"`,
  );
}

type Values = Record<string, string | boolean | undefined>;
const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? v[k] : undefined);

function liveParams(v: Values): ServingParams {
  const d = SERVING_PARAMS_DEFAULTS;
  const params: ServingParams = {
    maxBatchSize: intArg(str(v, 'max-batch-size'), 'max-batch-size', d.maxBatchSize, 1),
    maxBatchedTokens: intArg(str(v, 'max-batched-tokens'), 'max-batched-tokens', d.maxBatchedTokens, 1),
    maxQueueDelayMs: numArg(str(v, 'max-queue-delay-ms'), 'max-queue-delay-ms', d.maxQueueDelayMs),
    compression: compression(str(v, 'compression')),
    compressionProbe: d.compressionProbe,
    streamChunkTokens: intArg(str(v, 'stream-chunk-tokens'), 'stream-chunk-tokens', d.streamChunkTokens, 1),
    kvWindowTokens: intArg(str(v, 'kv-window-tokens'), 'kv-window-tokens', d.kvWindowTokens, 0),
    kvSinkTokens: intArg(str(v, 'kv-sink-tokens'), 'kv-sink-tokens', d.kvSinkTokens, 0),
    headEntropyThreshold: numArg(
      str(v, 'head-entropy-threshold'),
      'head-entropy-threshold',
      d.headEntropyThreshold,
    ),
    headUpdateInterval: intArg(
      str(v, 'head-update-interval'),
      'head-update-interval',
      d.headUpdateInterval,
      1,
    ),
  };
  const errors = servingParamsErrors(params);
  if (errors.length > 0)
    throw new AutoGLMError('invalid_argument', `invalid serving parameters: ${errors.join('; ')}`);
  return params;
}

export function serveOptions(v: Values): ServeOptions {
  return {
    model: str(v, 'model'),
    servedModelName: str(v, 'served-model-name'),
    host: str(v, 'host') ?? process.env['HOST'] ?? DEFAULT_SERVE.host,
    port: intArg(str(v, 'port') ?? process.env['PORT'], 'port', DEFAULT_SERVE.port),
    device: oneOf(str(v, 'device'), DEVICES, 'device', 'auto'),
    threads: intArg(str(v, 'threads'), 'threads', 0),
    binding: oneOf(
      str(v, 'binding') ?? process.env['AUTOGLM_BINDING'],
      BINDINGS,
      'binding',
      DEFAULT_SERVE.binding,
    ),
    maxModelLen: intArg(str(v, 'max-model-len'), 'max-model-len', DEFAULT_SERVE.maxModelLen, 16),
    kvCacheTokens: intArg(str(v, 'kv-cache-tokens'), 'kv-cache-tokens', DEFAULT_SERVE.kvCacheTokens, 16),
    maxWaiting: intArg(str(v, 'max-waiting'), 'max-waiting', DEFAULT_SERVE.maxWaiting, 1),
    apiKeys: apiKeys(str(v, 'api-key-file')),
    tuningFile: str(v, 'tuning-file') ?? process.env['AUTOGLM_TUNING_FILE'],
    build: {
      precision: oneOf(str(v, 'precision'), PRECISIONS, 'precision', DEFAULT_BUILD.precision),
      profile: oneOf(str(v, 'profile'), PROFILES, 'profile', DEFAULT_BUILD.profile),
      ...(v['head-gating'] === true ? { headGating: true } : {}),
    },
    params: liveParams(v),
    version: pkg.version,
  };
}

const FLAGS = {
  ...Object.fromEntries(
    [
      'model',
      'served-model-name',
      'host',
      'port',
      'device',
      'precision',
      'profile',
      'threads',
      'binding',
      'max-model-len',
      'kv-cache-tokens',
      'max-batch-size',
      'max-batched-tokens',
      'max-queue-delay-ms',
      'compression',
      'stream-chunk-tokens',
      'kv-window-tokens',
      'kv-sink-tokens',
      'head-entropy-threshold',
      'head-update-interval',
      'max-waiting',
      'api-key-file',
      'tuning-file',
      'shutdown-timeout',
    ].map((k) => [k, { type: 'string' as const, ...(k === 'model' ? { short: 'm' } : {}) }]),
  ),
  'head-gating': { type: 'boolean' as const },
};

export async function serveCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, FLAGS, SERVE_USAGE);
  if (values.help === true) {
    console.log(SERVE_USAGE);
    return;
  }
  const deadline = numArg(str(values, 'shutdown-timeout'), 'shutdown-timeout', 30) * 1000;
  const server = await startServer(serveOptions(values));
  console.log(
    `AutoGLM is listening on ${server.url} (OpenAI base URL: ${server.url}/v1); loading the model…`,
  );
  let signals = 0;
  const stop = (signal: string) => {
    signals++;
    if (signals > 1) {
      console.error(`${signal} again: exiting now`);
      process.exit(1);
    }
    void server.close(deadline).then(() => {
      process.exitCode = 0;
    });
  };
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });
  try {
    await server.ready;
  } catch (err) {
    await server.close(0);
    throw err;
  }
  console.log(`ready: ${server.context.servedName} at ${server.url}/v1`);
}
