/**
 * The children of an AutoGLMDeployment as pure functions of its spec (and of the operator's
 * own decisions in status): no timestamps, no randomness, so applying them twice changes
 * nothing. Each is applied with server-side apply, so fields we leave out stay whoever's they are.
 */
import type { AutoGLMDeployment, AutoGLMDeploymentSpec } from '../../../crds/deployment.ts';
import {
  TUNING_API_VERSION,
  TUNING_FILE_KEY,
  TUNING_KIND,
  type ServingParamsPatch,
  type TuningFile,
} from '../../../crds/tuning.ts';
import { stringify } from 'yaml';
import type { KubeObject } from '../kube/rest.ts';
import {
  childLabels,
  METRICS_PORT,
  ownerReference,
  selectorLabels,
  SERVER_PORT,
  TUNING_MOUNT,
  tuningConfigMapName,
} from './labels.ts';
import { mergeJson } from './pod-merge.ts';
import { armsWithin } from '../aiops/policies/compression.ts';

/** The share of a core each server may spend measuring compression settings it does not serve. */
const PROBE_CPU_SHARE = 0.02;

export interface DesiredOptions {
  /** The server image when the spec names none. */
  readonly serverImage: string;
  /** Replicas the Deployment runs (spec.replicas, or the autoscaler's choice). */
  readonly replicas: number;
  /** Whether the Prometheus Operator's PodMonitor kind exists in the cluster. */
  readonly podMonitor: boolean;
}

type Json = Record<string, unknown>;

const MODELS_DIR = '/models';
const CACHE_DIR = '/var/cache/autoglm';
const RUN_AS = 65532;

function meta(agd: AutoGLMDeployment, name: string): KubeObject['metadata'] {
  return {
    name,
    namespace: agd.metadata.namespace ?? 'default',
    labels: childLabels(agd),
    ownerReferences: [ownerReference(agd)],
  };
}

/** What the server's `--model` gets, and the volumes and init containers the source needs. */
export function modelPlacement(spec: AutoGLMDeploymentSpec): {
  model: string;
  volumes: Json[];
  mounts: Json[];
  initContainers: Json[];
} {
  const src = spec.model.source;
  if (src.startsWith('pvc:')) {
    const [claim = '', ...rest] = src.slice('pvc:'.length).split('/');
    const mountPath = `${MODELS_DIR}/${claim}`;
    return {
      model: [mountPath, ...rest].join('/'),
      volumes: [{ name: 'model', persistentVolumeClaim: { claimName: claim, readOnly: true } }],
      mounts: [{ name: 'model', mountPath, readOnly: true }],
      initContainers: [],
    };
  }
  if (src.startsWith('image:')) {
    const mountPath = `${MODELS_DIR}/image`;
    return {
      model: mountPath,
      volumes: [{ name: 'model', emptyDir: {} }],
      mounts: [{ name: 'model', mountPath, readOnly: true }],
      initContainers: [
        {
          name: 'model',
          image: src.slice('image:'.length),
          command: ['sh', '-c', `cp -a /model/. ${mountPath}/`],
          volumeMounts: [{ name: 'model', mountPath }],
          securityContext: containerSecurity(),
        },
      ],
    };
  }
  return { model: src, volumes: [], mounts: [], initContainers: [] };
}

export function serverArgs(agd: AutoGLMDeployment, model: string): string[] {
  const s = agd.spec;
  const args = [
    'serve',
    `--model=${model}`,
    `--served-model-name=${s.model.servedName ?? agd.metadata.name}`,
    '--host=0.0.0.0',
    `--port=${String(SERVER_PORT)}`,
    `--device=${s.runtime.device}`,
    `--threads=${String(s.runtime.threads)}`,
    `--max-model-len=${String(s.runtime.maxModelLen)}`,
    `--kv-cache-tokens=${String(s.kvCache.capacityTokens)}`,
    `--tuning-file=${TUNING_MOUNT}/${TUNING_FILE_KEY}`,
  ];
  // The tuning loop may roll out another precision; status says which (never the spec).
  const precision = agd.status?.tuning?.precision ?? s.model.precision;
  if (s.model.format !== 'onnx') args.push(`--precision=${precision}`);
  if (s.model.format !== 'onnx' && s.model.headGating) args.push('--head-gating');
  return args;
}

function containerSecurity(): Json {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
  };
}

function env(spec: AutoGLMDeploymentSpec): Json[] {
  const out: Json[] = [
    { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // The `namespace` label of the metrics the server pushes over OTLP (docs/metrics.md).
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'AUTOGLM_HOME', value: CACHE_DIR },
  ];
  const cred = spec.model.credentialsSecret;
  if (cred !== undefined)
    out.push({ name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: cred.name, key: cred.key } } });
  const keys = spec.runtime.apiKeySecret;
  if (keys !== undefined)
    out.push({ name: 'AUTOGLM_API_KEYS', valueFrom: { secretKeyRef: { name: keys.name, key: keys.key } } });
  return out;
}

function resources(spec: AutoGLMDeploymentSpec): Json {
  const requests: Json = {};
  const limits: Json = {};
  if (spec.resources.cpu !== undefined) requests['cpu'] = String(spec.resources.cpu);
  if (spec.resources.memory !== undefined) {
    requests['memory'] = String(spec.resources.memory);
    limits['memory'] = String(spec.resources.memory);
  }
  const gpu = spec.resources.gpu;
  if (gpu.count > 0) {
    requests[gpu.resourceName] = String(gpu.count);
    limits[gpu.resourceName] = String(gpu.count);
  }
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

function probe(failureThreshold: number, periodSeconds: number): Json {
  return { httpGet: { path: '/health', port: 'http' }, periodSeconds, failureThreshold, timeoutSeconds: 5 };
}

function scheduling(spec: AutoGLMDeploymentSpec): Json {
  const gpu = spec.resources.gpu;
  const nodeSelector = {
    ...spec.nodeSelector,
    ...(gpu.product === undefined ? {} : { 'nvidia.com/gpu.product': gpu.product }),
  };
  const tolerations = [
    ...(spec.tolerations ?? []),
    ...(gpu.count > 0 ? [{ key: gpu.resourceName, operator: 'Exists', effect: 'NoSchedule' }] : []),
  ];
  return {
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(tolerations.length > 0 ? { tolerations } : {}),
    ...(spec.affinity === undefined ? {} : { affinity: spec.affinity }),
  };
}

export function podSpec(agd: AutoGLMDeployment, serverImage: string): Json {
  const s = agd.spec;
  const placement = modelPlacement(s);
  const generated: Json = {
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      fsGroup: RUN_AS,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // The server drains running generations for up to 30 s on SIGTERM.
    terminationGracePeriodSeconds: 45,
    ...(placement.initContainers.length > 0 ? { initContainers: placement.initContainers } : {}),
    containers: [
      {
        name: 'server',
        image: s.runtime.image ?? serverImage,
        args: serverArgs(agd, placement.model),
        ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' }],
        env: env(s),
        resources: resources(s),
        // Pulling and building a model can take minutes: the startup probe allows 30.
        startupProbe: probe(180, 10),
        readinessProbe: probe(3, 5),
        livenessProbe: probe(6, 10),
        securityContext: containerSecurity(),
        volumeMounts: [
          { name: 'tuning', mountPath: TUNING_MOUNT, readOnly: true },
          { name: 'cache', mountPath: CACHE_DIR },
          { name: 'tmp', mountPath: '/tmp' },
          ...placement.mounts,
        ],
      },
    ],
    volumes: [
      { name: 'tuning', configMap: { name: tuningConfigMapName(agd) } },
      { name: 'cache', emptyDir: {} },
      { name: 'tmp', emptyDir: {} },
      ...placement.volumes,
    ],
    ...scheduling(s),
  };
  const override = s.podTemplate?.spec;
  return override === undefined ? generated : mergeJson(generated, override);
}

export function desiredDeployment(agd: AutoGLMDeployment, o: DesiredOptions): KubeObject {
  const tpl = agd.spec.podTemplate?.metadata;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(agd, agd.metadata.name),
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: selectorLabels(agd) },
      // Model loading is slow: never drop below the running capacity while rolling.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: { ...tpl?.labels, ...childLabels(agd) },
          ...(tpl?.annotations === undefined ? {} : { annotations: tpl.annotations }),
        },
        spec: podSpec(agd, o.serverImage),
      },
    },
  };
}

export function desiredService(agd: AutoGLMDeployment): KubeObject {
  const svc = agd.spec.service;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...meta(agd, agd.metadata.name),
      ...(svc.annotations === undefined ? {} : { annotations: svc.annotations }),
    },
    spec: {
      type: svc.type,
      selector: selectorLabels(agd),
      ports: [
        { name: 'http', port: svc.port, targetPort: 'http', protocol: 'TCP' },
        { name: 'metrics', port: METRICS_PORT, targetPort: 'http', protocol: 'TCP' },
      ],
    },
  };
}

/** The starting parameters every node gets, from the spec. */
export function specDefaults(spec: AutoGLMDeploymentSpec): ServingParamsPatch {
  const c = spec.transport.compression;
  return {
    maxBatchSize: spec.batching.maxBatchSize,
    maxBatchedTokens: spec.batching.maxBatchedTokens,
    maxQueueDelayMs: spec.batching.maxQueueDelayMs,
    streamChunkTokens: spec.transport.streamChunkTokens,
    compression: c.algorithm === 'none' ? { algorithm: 'none' } : { algorithm: c.algorithm, level: c.level },
  };
}

/**
 * While the loop tunes compression, the servers measure every compressed setting its bounds allow
 * on a sample of responses (within a small CPU share), so a slowed path can be answered with the
 * right level at once instead of one served level after another.
 */
function compressionProbe(agd: AutoGLMDeployment): ServingParamsPatch {
  const { mode, bounds } = agd.spec.tuning;
  const c = bounds.compression;
  if (mode === 'Off' || c === undefined) return {};
  const settings = armsWithin(c.algorithms, c.minLevel, c.maxLevel).flatMap((a) =>
    a.algorithm === 'none' ? [] : [{ algorithm: a.algorithm, level: a.level }],
  );
  return settings.length === 0 ? {} : { compressionProbe: { settings, cpuShare: PROBE_CPU_SHARE } };
}

/** The tuning file: spec defaults, overlaid with what the loop has decided (status.tuning). */
export function tuningFile(agd: AutoGLMDeployment): TuningFile {
  const t = agd.status?.tuning;
  const defaults = {
    ...specDefaults(agd.spec),
    ...compressionProbe(agd),
    ...(t?.defaults as ServingParamsPatch | undefined),
  };
  const nodes = t?.nodes as Record<string, ServingParamsPatch> | undefined;
  return {
    apiVersion: TUNING_API_VERSION,
    kind: TUNING_KIND,
    generation: t?.generation ?? 0,
    defaults,
    ...(nodes === undefined || Object.keys(nodes).length === 0 ? {} : { nodes }),
  };
}

export function desiredConfigMap(agd: AutoGLMDeployment): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(agd, tuningConfigMapName(agd)),
    data: { [TUNING_FILE_KEY]: stringify(tuningFile(agd)) },
  };
}

export function desiredPdb(agd: AutoGLMDeployment): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(agd, agd.metadata.name),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(agd) } },
  };
}

export function desiredPodMonitor(agd: AutoGLMDeployment): KubeObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: meta(agd, agd.metadata.name),
    spec: {
      selector: { matchLabels: selectorLabels(agd) },
      podMetricsEndpoints: [
        {
          port: 'http',
          path: '/metrics',
          interval: '15s',
          // The dashboards and the tuning loop select by deployment and node.
          relabelings: [
            {
              sourceLabels: ['__meta_kubernetes_pod_label_serving_autoglm_io_deployment'],
              targetLabel: 'deployment',
            },
          ],
        },
      ],
    },
  };
}

/** Every child, in the order they are applied (the ConfigMap first: pods mount it). */
export function desiredChildren(agd: AutoGLMDeployment, o: DesiredOptions): KubeObject[] {
  return [
    desiredConfigMap(agd),
    desiredDeployment(agd, o),
    desiredService(agd),
    desiredPdb(agd),
    ...(o.podMonitor ? [desiredPodMonitor(agd)] : []),
  ];
}
