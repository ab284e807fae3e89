/**
 * The live serving parameters and the tuning file that carries them: the one source of truth
 * shared by the operator (which writes the file into a ConfigMap) and the server (which mounts
 * it and applies it on the next engine step). TypeScript types are derived from the schemas;
 * the JSON Schema in `tuning.schema.json` is generated from them (`node scripts/gen-crds.ts`).
 *
 * File format (YAML or JSON), one ConfigMap key, `tuning.yaml`:
 *
 *   apiVersion: serving.autoglm.io/v1alpha1
 *   kind: ServingTuning
 *   generation: 7              # optional: the operator's decision that wrote this file
 *   defaults: { maxBatchSize: 16 }
 *   nodes:
 *     gpu-node-1: { maxBatchSize: 64, compression: { algorithm: gzip, level: 6 } }
 *
 * A pod's effective parameters are its base (built-in or command line) ← `defaults` ←
 * `nodes[<its node name>]`, key by key; `compression` and `compressionProbe` are replaced as a
 * whole, never merged.
 */
import Type, { type Static } from 'typebox';
import { Value } from 'typebox/value';
import { parseDocument } from 'yaml';
import { schemaErrors } from './schema-errors.ts';

export const TUNING_API_VERSION = 'serving.autoglm.io/v1alpha1';
export const TUNING_KIND = 'ServingTuning';
/** The ConfigMap key (and so the file name in the mounted directory) the operator writes. */
export const TUNING_FILE_KEY = 'tuning.yaml';

const closed = { additionalProperties: false } as const;

const GzipSchema = Type.Object(
  {
    algorithm: Type.Literal('gzip'),
    level: Type.Integer({ minimum: 1, maximum: 9, description: 'gzip level, 1 (fast) to 9 (small).' }),
  },
  closed,
);

const BrotliSchema = Type.Object(
  {
    algorithm: Type.Literal('br'),
    level: Type.Integer({
      minimum: 0,
      maximum: 11,
      description: 'Brotli quality, 0 (fast) to 11 (small).',
    }),
  },
  closed,
);

export const CompressionSchema = Type.Union(
  [
    Type.Object(
      {
        algorithm: Type.Literal('none'),
        level: Type.Optional(Type.Integer({ description: 'Ignored when the algorithm is none.' })),
      },
      closed,
    ),
    GzipSchema,
    BrotliSchema,
  ],
  {
    description:
      "Response compression, applied only where the client's Accept-Encoding allows the algorithm; " +
      'otherwise responses are sent uncompressed.',
  },
);

export const CompressionProbeSchema = Type.Object(
  {
    settings: Type.Array(Type.Union([GzipSchema, BrotliSchema]), {
      maxItems: 32,
      description:
        'Compression settings to measure on a sample of whole JSON response bodies without sending ' +
        'the result: bytes out per byte in, and compression time, per setting. Empty measures none.',
    }),
    cpuShare: Type.Number({
      minimum: 0,
      maximum: 0.5,
      description: "Most of one core's time the measurements may take, averaged over time.",
    }),
  },
  {
    ...closed,
    description:
      'Measuring compression settings other than the one in force, so that the tuning loop can pick ' +
      'a level from its cost on this node without serving every level first.',
  },
);

export const ServingParamsSchema = Type.Object(
  {
    maxBatchSize: Type.Integer({
      minimum: 1,
      maximum: 1024,
      description: 'Most sequences one engine step runs together.',
    }),
    maxBatchedTokens: Type.Integer({
      minimum: 16,
      maximum: 1048576,
      description: 'Most tokens (prompt and generated) one engine step processes.',
    }),
    maxQueueDelayMs: Type.Number({
      minimum: 0,
      maximum: 10000,
      description: 'How long, in milliseconds, a step may wait for more requests to fill its batch.',
    }),
    compression: CompressionSchema,
    compressionProbe: CompressionProbeSchema,
    streamChunkTokens: Type.Integer({
      minimum: 1,
      maximum: 64,
      description: 'Tokens per server-sent event when streaming.',
    }),
    kvWindowTokens: Type.Integer({
      minimum: 0,
      maximum: 1048576,
      description:
        'KV-cache sparsity (StreamingLLM): most recent tokens a sequence keeps in the cache besides its ' +
        'sink tokens; older ones are evicted. 0 keeps every token. Models with a shared-slot cache only.',
    }),
    kvSinkTokens: Type.Integer({
      minimum: 0,
      maximum: 1024,
      description: 'First tokens of a sequence that are never evicted (attention sinks).',
    }),
    headEntropyThreshold: Type.Number({
      minimum: 0,
      maximum: 1,
      description:
        'Attention-head gating: a head whose attention entropy, normalized to 0..1, is below this is ' +
        'skipped until the next measurement (the most focused heads go first). 0 skips none. ' +
        'Models built with head gating only.',
    }),
    headUpdateInterval: Type.Integer({
      minimum: 1,
      maximum: 65536,
      description: 'Tokens between two measurements of head entropy, each run with every head.',
    }),
  },
  closed,
);

/** Some of the parameters: a `defaults` or per-node section of the tuning file. */
export const ServingParamsPatchSchema = Type.Partial(ServingParamsSchema, closed);

/** Kubernetes node names are DNS subdomains (RFC 1123): a section under any other name could never apply. */
export const NODE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const TuningFileSchema = Type.Object(
  {
    apiVersion: Type.Literal(TUNING_API_VERSION),
    kind: Type.Literal(TUNING_KIND),
    generation: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'The operator decision that wrote this file; servers echo it when they apply it.',
      }),
    ),
    defaults: Type.Optional(ServingParamsPatchSchema),
    nodes: Type.Optional(
      Type.Record(Type.String(), ServingParamsPatchSchema, {
        propertyNames: {
          pattern: NODE_NAME_PATTERN,
          maxLength: 253,
          description: "a Kubernetes node name (lowercase letters, digits, '-' and '.', at most 253)",
        },
        description: 'Per-node overrides, keyed by Kubernetes node name; they win over defaults.',
      }),
    ),
  },
  { ...closed, title: 'ServingTuning', description: 'Live serving parameters for AutoGLM servers.' },
);

export type Compression = Static<typeof CompressionSchema>;
export type CompressionProbe = Static<typeof CompressionProbeSchema>;
export type ServingParams = Static<typeof ServingParamsSchema>;
export type ServingParamsPatch = Static<typeof ServingParamsPatchSchema>;
export type TuningFile = Static<typeof TuningFileSchema>;

export type TuningParseResult = { ok: true; value: TuningFile } | { ok: false; errors: string[] };

/** Sensible for a CPU: small batches, a token per event, no compression, no sparsity. */
export const SERVING_PARAMS_DEFAULTS: ServingParams = deepFreeze({
  maxBatchSize: 32,
  maxBatchedTokens: 2048,
  maxQueueDelayMs: 2,
  compression: { algorithm: 'none' },
  compressionProbe: { settings: [], cpuShare: 0.02 },
  streamChunkTokens: 1,
  kvWindowTokens: 0,
  kvSinkTokens: 4,
  headEntropyThreshold: 0,
  headUpdateInterval: 32,
});

/** Every problem with a set of parameters (empty when valid), each led by its path. */
export function servingParamsErrors(value: unknown): string[] {
  return schemaErrors(ServingParamsSchema, value);
}

/**
 * Parses a tuning file, YAML or JSON, strictly: unknown keys, wrong types and out-of-range
 * values are all errors, reported together, each with its path. The value is frozen.
 */
export function parseTuningFile(text: string): TuningParseResult {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const yamlErrors = [...doc.errors, ...doc.warnings].map((e) => firstLine(e.message));
  if (yamlErrors.length > 0) return { ok: false, errors: yamlErrors };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, errors: [err instanceof Error ? err.message : String(err)] };
  }
  if (data === null || data === undefined) {
    return { ok: false, errors: [`file: is empty; expected a ${TUNING_KIND} object`] };
  }
  if (!Value.Check(TuningFileSchema, data))
    return { ok: false, errors: schemaErrors(TuningFileSchema, data) };
  return { ok: true, value: deepFreeze(data) };
}

/**
 * The parameters for one node: `base` ← `file.defaults` ← `file.nodes[nodeName]`. No file or
 * no node name (not running on Kubernetes) means only what applies to every node.
 */
export function effectiveParams(
  file: TuningFile | undefined,
  nodeName: string | undefined,
  base: ServingParams,
): ServingParams {
  const node = nodeName === undefined ? undefined : file?.nodes?.[nodeName];
  return deepFreeze({ ...base, ...file?.defaults, ...node });
}

/** The tuning file's JSON Schema (2020-12), a plain object the caller may change or embed. */
export function tuningJsonSchema(): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(TuningFileSchema)) as Record<string, unknown>;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://autoglm.io/schemas/serving-tuning-v1alpha1.json',
    ...schema,
  };
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/:$/, '');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
