/**
 * Reconcile one AutoGLMDeployment by key, level-triggered: read the object from the cache,
 * check what it references, apply every child, then report. There are no create, update or
 * delete branches: server-side apply makes each child match, and garbage collection removes
 * children of a deleted object.
 */
import { isDeepStrictEqual } from 'node:util';
import type { AutoGLMDeployment, AutoGLMDeploymentSpec } from '../../../crds/deployment.ts';
import { KubeApiError, PROBLEM_REASONS, isNotFound } from '../errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informer } from '../kube/informer.ts';
import { resourcePath, type KubeClient, type KubeObject } from '../kube/rest.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { desiredChildren } from './desired.ts';
import { OWNER_LABEL } from './labels.ts';
import {
  computeStatus,
  ownedPart,
  statusApply,
  transitions,
  type DeploymentView,
  type PodView,
  type Problem,
} from './status.ts';

export interface ReconcilerDeps {
  readonly client: KubeClient;
  readonly events: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly agds: Informer<AutoGLMDeployment & KubeObject>;
  readonly pods: Informer<KubeObject>;
  readonly serverImage: string;
  /** Whether PodMonitor exists in the cluster (checked by discovery, cached by the caller). */
  readonly podMonitorAvailable: () => Promise<boolean>;
  /** Forgets the cached answer after the API server said the kind does not exist. */
  readonly podMonitorGone: () => void;
  readonly now?: () => Date;
}

export interface ReconcileResult {
  /** Retry with backoff: something the object needs is missing or was refused. */
  readonly retry: boolean;
}

const PLURALS: Record<string, string> = {
  ConfigMap: 'configmaps',
  Deployment: 'deployments',
  Service: 'services',
  PodDisruptionBudget: 'poddisruptionbudgets',
  PodMonitor: 'podmonitors',
};

export function childPath(obj: KubeObject): string {
  const plural = PLURALS[obj.kind];
  if (plural === undefined) throw new Error(`no REST path for kind ${obj.kind}`);
  return resourcePath({
    apiVersion: obj.apiVersion,
    plural,
    namespace: obj.metadata.namespace,
    name: obj.metadata.name,
  });
}

/** Replicas the Deployment should run: the spec's, or the autoscaler's within its bounds. */
export function desiredReplicas(agd: AutoGLMDeployment): number {
  const a = agd.spec.autoscaling;
  if (!a.enabled) return agd.spec.replicas;
  const chosen = agd.status?.tuning?.replicas ?? a.minReplicas;
  return Math.min(a.maxReplicas, Math.max(a.minReplicas, chosen));
}

export function endpointOf(agd: AutoGLMDeployment): string {
  const ns = agd.metadata.namespace ?? 'default';
  const port = agd.spec.service.port;
  return `http://${agd.metadata.name}.${ns}.svc${port === 80 ? '' : `:${String(port)}`}/v1`;
}

async function exists(client: KubeClient, path: string): Promise<boolean> {
  try {
    await client.get(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Secrets and volumes the spec names that are not there. */
export async function referenceProblems(client: KubeClient, agd: AutoGLMDeployment): Promise<Problem[]> {
  const ns = agd.metadata.namespace ?? 'default';
  const spec: AutoGLMDeploymentSpec = agd.spec;
  const problems: Problem[] = [];
  const secrets = [spec.model.credentialsSecret, spec.runtime.apiKeySecret].filter((s) => s !== undefined);
  for (const s of secrets) {
    if (
      !(await exists(
        client,
        resourcePath({ apiVersion: 'v1', plural: 'secrets', namespace: ns, name: s.name }),
      ))
    )
      problems.push({ reason: 'SecretNotFound', message: `Secret ${ns}/${s.name} does not exist` });
  }
  if (spec.model.source.startsWith('pvc:')) {
    const claim = spec.model.source.slice(4).split('/')[0] ?? '';
    const path = resourcePath({
      apiVersion: 'v1',
      plural: 'persistentvolumeclaims',
      namespace: ns,
      name: claim,
    });
    if (!(await exists(client, path)))
      problems.push({
        reason: 'PVCNotFound',
        message: `PersistentVolumeClaim ${ns}/${claim} does not exist`,
      });
  }
  return problems;
}

export class Reconciler {
  readonly #d: ReconcilerDeps;

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const agd = this.#d.agds.get(namespace, name);
    // Gone or going: its children are garbage-collected; writing anything could only resurrect them.
    if (agd === undefined || agd.metadata.deletionTimestamp !== undefined) return { retry: false };
    const problems = await referenceProblems(this.#d.client, agd);
    const replicas = desiredReplicas(agd);
    const children = desiredChildren(agd, {
      serverImage: this.#d.serverImage,
      replicas,
      podMonitor: await this.#d.podMonitorAvailable(),
    });
    let deployment: DeploymentView | undefined;
    for (const child of children) {
      try {
        const applied = await this.#d.client.apply<KubeObject>(childPath(child), child);
        this.#d.metrics.applyTotal.inc({ kind: child.kind });
        if (child.kind === 'Deployment') deployment = applied;
      } catch (err) {
        if (isNotFound(err)) {
          // A kind that went away (the Prometheus Operator uninstalled): look again, retry.
          if (child.kind === 'PodMonitor') this.#d.podMonitorGone();
          return { retry: true };
        }
        if (!(err instanceof KubeApiError) || err.status < 400 || err.status >= 500 || err.status === 409)
          throw err;
        problems.push({
          reason: 'ApplyRejected',
          message: `${child.kind} ${child.metadata.name}: ${err.message}`,
        });
      }
    }
    const pods = this.#d.pods
      .list(namespace)
      .filter((p) => p.metadata.labels?.[OWNER_LABEL] === name) as unknown as PodView[];
    await this.#writeStatus(agd, { deployment, pods, problems, replicas });
    return { retry: problems.some((p) => PROBLEM_REASONS[p.reason].retry) };
  }

  async #writeStatus(
    agd: AutoGLMDeployment & KubeObject,
    o: { deployment: DeploymentView | undefined; pods: PodView[]; problems: Problem[]; replicas: number },
  ): Promise<void> {
    const next = computeStatus({
      agd,
      deployment: o.deployment,
      pods: o.pods,
      problems: o.problems,
      desiredReplicas: o.replicas,
      endpoint: endpointOf(agd),
      now: (this.#d.now ?? (() => new Date()))(),
    });
    if (isDeepStrictEqual(ownedPart(agd.status), next)) return;
    const { path, body } = statusApply(agd, next);
    try {
      await this.#d.client.apply(path, body);
    } catch (err) {
      if (isNotFound(err) || (err instanceof KubeApiError && err.status === 409)) return; // deleted or replaced meanwhile
      throw err;
    }
    for (const c of transitions(agd.status?.conditions, next.conditions ?? [])) {
      await this.#d.events.record(agd, {
        type: c.type === 'Degraded' && c.status === 'True' ? 'Warning' : 'Normal',
        reason: c.reason,
        message: `${c.type}=${c.status}: ${c.message}`,
      });
    }
  }
}
