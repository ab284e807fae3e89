/**
 * What the reconciler reports: a pure function of the object, its Deployment, its pods and the
 * problems found this round. Conditions follow what Argo CD, Flux and kstatus read:
 * Available, Progressing and Degraded, plus ModelReady.
 */
import {
  API_VERSION,
  PLURAL,
  type AutoGLMDeployment,
  type AutoGLMDeploymentStatus,
  type Condition,
} from '../../../crds/deployment.ts';
import type { ProblemReason } from '../errors.ts';
import { resourcePath, type KubeObject } from '../kube/rest.ts';
import { withCondition, type ConditionInput } from './conditions.ts';
import { OWNER_LABEL } from './labels.ts';

export interface Problem {
  readonly reason: ProblemReason;
  readonly message: string;
}

export interface DeploymentView {
  metadata: { generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

interface ContainerStatus {
  name: string;
  restartCount?: number;
  state?: { waiting?: { reason?: string; message?: string } };
  lastState?: { terminated?: { exitCode?: number; reason?: string; message?: string } };
}
export interface PodView {
  metadata: { name: string };
  status?: { containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
}

/** The fields the reconciler owns; the tuning loop owns `tuning` and `decisions`. */
export type ReconcilerStatus = Omit<AutoGLMDeploymentStatus, 'tuning' | 'decisions'>;

const WAITING_FAILURES = new Set([
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
]);

/** Pods whose server cannot start: crash loops, bad config, unpullable images. */
export function podProblems(pods: readonly PodView[]): Problem[] {
  return pods.flatMap((pod) =>
    [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].flatMap((cs) => {
      const problem = containerProblem(cs);
      return problem === undefined
        ? []
        : [
            {
              reason: 'ServerCrashLoop' as const,
              message: `pod ${pod.metadata.name} container ${cs.name}: ${problem}`,
            },
          ];
    }),
  );
}

function containerProblem(cs: ContainerStatus): string | undefined {
  const waiting = cs.state?.waiting;
  if (waiting?.reason === undefined || !WAITING_FAILURES.has(waiting.reason)) return undefined;
  const last = cs.lastState?.terminated;
  const detail = last?.message ?? waiting.message ?? last?.reason ?? '';
  return detail === '' ? waiting.reason : `${waiting.reason}: ${detail}`;
}

function deploymentCondition(d: DeploymentView | undefined, type: string) {
  return d?.status?.conditions?.find((c) => c.type === type);
}

function rolloutState(agd: AutoGLMDeployment, d: DeploymentView | undefined, desired: number) {
  const st = { readyReplicas: 0, updatedReplicas: 0, replicas: 0, observedGeneration: 0, ...d?.status };
  const ready = st.readyReplicas;
  const updated = st.updatedReplicas;
  const total = st.replicas;
  const synced = d !== undefined && st.observedGeneration >= (d.metadata.generation ?? 0);
  const rolling = !synced || updated < desired || ready < desired || total > updated;
  const stuck = deploymentCondition(d, 'Progressing')?.reason === 'ProgressDeadlineExceeded';
  return { ready, updated, total, rolling, stuck, name: agd.metadata.name };
}

export interface StatusInput {
  readonly agd: AutoGLMDeployment;
  readonly deployment: DeploymentView | undefined;
  readonly pods: readonly PodView[];
  readonly problems: readonly Problem[];
  readonly desiredReplicas: number;
  readonly endpoint: string;
  readonly now: Date;
}

function conditionInputs(i: StatusInput, r: ReturnType<typeof rolloutState>): ConditionInput[] {
  const problems = [...i.problems, ...podProblems(i.pods)];
  if (r.stuck)
    problems.push({
      reason: 'ProgressDeadlineExceeded',
      message: `Deployment ${r.name} exceeded its progress deadline`,
    });
  const sourceProblem = problems.find((p) => p.reason === 'SecretNotFound' || p.reason === 'PVCNotFound');
  const scaledToZero = i.desiredReplicas === 0;
  const modelReady: ConditionInput =
    sourceProblem !== undefined
      ? { type: 'ModelReady', status: 'False', ...sourceProblem }
      : r.ready > 0
        ? {
            type: 'ModelReady',
            status: 'True',
            reason: 'ModelLoaded',
            message: 'a server has loaded the model',
          }
        : scaledToZero
          ? { type: 'ModelReady', status: 'Unknown', reason: 'ScaledToZero', message: 'no replicas run' }
          : {
              type: 'ModelReady',
              status: 'False',
              reason: 'Loading',
              message: 'waiting for a server to load the model',
            };
  const available: ConditionInput = scaledToZero
    ? { type: 'Available', status: 'True', reason: 'ScaledToZero', message: 'scaled to zero replicas' }
    : r.ready > 0
      ? {
          type: 'Available',
          status: 'True',
          reason: 'MinimumReplicasAvailable',
          message: `${String(r.ready)} of ${String(i.desiredReplicas)} replicas ready`,
        }
      : { type: 'Available', status: 'False', reason: 'NoReadyReplicas', message: 'no replica is ready yet' };
  const progressing: ConditionInput = r.stuck
    ? {
        type: 'Progressing',
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: 'the rollout is stuck',
      }
    : r.rolling
      ? {
          type: 'Progressing',
          status: 'True',
          reason: 'RollingOut',
          message: `${String(r.updated)} updated, ${String(r.ready)} ready of ${String(i.desiredReplicas)}`,
        }
      : {
          type: 'Progressing',
          status: 'False',
          reason: 'Complete',
          message: 'all replicas are updated and ready',
        };
  const first = problems[0];
  const degraded: ConditionInput =
    first === undefined
      ? { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problems found' }
      : {
          type: 'Degraded',
          status: 'True',
          reason: first.reason,
          message: problems
            .map((p) => p.message)
            .join('; ')
            .slice(0, 4000),
        };
  return [available, degraded, modelReady, progressing];
}

/** The status the reconciler would write now. */
export function computeStatus(i: StatusInput): ReconcilerStatus {
  const r = rolloutState(i.agd, i.deployment, i.desiredReplicas);
  let conditions: Condition[] = (i.agd.status?.conditions ?? []).filter((c) => OWNED_CONDITIONS.has(c.type));
  for (const c of conditionInputs(i, r))
    conditions = withCondition(conditions, c, i.now, i.agd.metadata.generation);
  return {
    ...(i.agd.metadata.generation === undefined ? {} : { observedGeneration: i.agd.metadata.generation }),
    conditions,
    replicas: r.total,
    readyReplicas: r.ready,
    updatedReplicas: r.updated,
    desiredReplicas: i.desiredReplicas,
    ready: `${String(r.ready)}/${String(i.desiredReplicas)}`,
    selector: `${OWNER_LABEL}=${i.agd.metadata.name}`,
    endpoint: i.endpoint,
    device: i.agd.spec.runtime.device,
  };
}

export const OWNED_CONDITIONS = new Set(['Available', 'Degraded', 'ModelReady', 'Progressing']);

/** The reconciler's part of a status, to compare what is there with what would be written. */
export function ownedPart(status: AutoGLMDeploymentStatus | undefined): ReconcilerStatus {
  if (status === undefined) return {};
  const rest: AutoGLMDeploymentStatus = { ...status };
  delete rest.tuning;
  delete rest.decisions;
  const owned = status.conditions?.filter((c) => OWNED_CONDITIONS.has(c.type));
  if (owned !== undefined) rest.conditions = owned;
  return rest;
}

/** Conditions whose status flipped, for Events. */
export function transitions(
  before: readonly Condition[] | undefined,
  after: readonly Condition[],
): Condition[] {
  return after.filter((c) => before?.find((b) => b.type === c.type)?.status !== c.status);
}

export type { KubeObject };

/**
 * A server-side apply of some status fields of one object: its status subresource and the
 * smallest body that names the object. The reconciler and the tuning loop each apply their own
 * fields this way, under their own field managers.
 */
export function statusApply(
  agd: AutoGLMDeployment & KubeObject,
  status: object,
): { readonly path: string; readonly body: Record<string, unknown> } {
  const { name, namespace, uid } = agd.metadata;
  return {
    path: resourcePath({ apiVersion: API_VERSION, plural: PLURAL, namespace, name, subresource: 'status' }),
    body: { apiVersion: API_VERSION, kind: agd.kind, metadata: { name, namespace, uid }, status },
  };
}
