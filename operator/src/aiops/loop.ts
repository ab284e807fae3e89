/**
 * The AIOps loop: every interval, for each AutoGLMDeployment whose tuning is on (or whose
 * autoscaling is enabled), read fresh signals from Prometheus, plan changes within the spec's
 * bounds, and record them in status. In Auto mode they go to `status.tuning`, which the
 * reconciler turns into the tuning ConfigMap and the Deployment's replicas; in Recommend mode
 * only into `status.tuning.recommendations`. Missing or stale metrics freeze the loop for that
 * object with `MetricsAvailable=False`. Nothing here ever writes spec.
 */
import type { AutoGLMDeployment, Condition, Decision } from '../../../crds/deployment.ts';
import { withCondition } from '../controller/conditions.ts';
import { statusApply } from '../controller/status.ts';
import { isNotFound } from '../errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informer } from '../kube/informer.ts';
import type { KubeClient, KubeObject } from '../kube/rest.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { applyChanges, plan, parseCompression, type Change } from './plan.ts';
import { MetricsUnavailable, PrometheusClient } from './prometheus.ts';
import { readSignals, type DeploymentSignals } from './signals.ts';

type AGD = AutoGLMDeployment & KubeObject;
type Tuning = NonNullable<AutoGLMDeployment['status']>['tuning'];

export const TUNING_FIELD_MANAGER = 'autoglm-tuning';
const KEEP_DECISIONS = 20;
export const LOOP_CONDITIONS = new Set(['MetricsAvailable', 'Tuned']);

export interface LoopOptions {
  readonly client: KubeClient;
  readonly agds: Informer<AGD>;
  readonly metrics: OperatorMetrics;
  readonly events: EventRecorder;
  /** The operator-wide Prometheus; spec.tuning.prometheusURL overrides it. */
  readonly prometheusURL: string | undefined;
  readonly intervalMs: number;
  readonly log: (level: 'info' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  readonly now?: () => Date;
}

export function isTuned(agd: AutoGLMDeployment): boolean {
  return agd.spec.tuning.mode !== 'Off' || agd.spec.autoscaling.enabled;
}

/** Replica changes apply whenever autoscaling is enabled: that is the user's explicit ask. */
function applies(agd: AutoGLMDeployment, c: Change): boolean {
  return agd.spec.tuning.mode === 'Auto' || (c.knob === 'replicas' && agd.spec.autoscaling.enabled);
}

type Recommendations = NonNullable<NonNullable<Tuning>['recommendations']>;

function recommendations(changes: readonly Change[]): Recommendations {
  const out: Recommendations = {};
  for (const c of changes) {
    const section = (out[c.node ?? '*'] ??= {});
    if (c.knob === 'compression') section.compression = parseCompression(c.to);
    else if (c.knob !== 'replicas' && c.knob !== 'precision') section[c.knob] = Number(c.to);
  }
  return out;
}

function loopConditions(agd: AutoGLMDeployment): Condition[] {
  return (agd.status?.conditions ?? []).filter((c) => LOOP_CONDITIONS.has(c.type));
}

function tunedCondition(agd: AutoGLMDeployment, tuning: Tuning) {
  const mode = agd.spec.tuning.mode;
  return mode === 'Auto'
    ? {
        type: 'Tuned',
        status: 'True' as const,
        reason: 'Auto',
        message: `tuning generation ${String(tuning?.generation ?? 0)} in force`,
      }
    : {
        type: 'Tuned',
        status: 'False' as const,
        reason: mode === 'Recommend' ? 'RecommendOnly' : 'AutoscalingOnly',
        message: 'only replica changes are applied',
      };
}

/**
 * A recommendation already made and still not applied is not made again every round: status,
 * Events and the decisions metric record changes of mind, not the loop's heartbeat.
 */
export function withoutRepeats(agd: AutoGLMDeployment, changes: readonly Change[]): Change[] {
  const past = agd.status?.decisions ?? [];
  return changes.filter((c) => {
    if (applies(agd, c)) return true;
    const last = past.findLast((d) => d.knob === c.knob && d.node === c.node);
    return !(last !== undefined && !last.applied && last.from === c.from && last.to === c.to);
  });
}

/** The loop's part of the status after this round: pure, for tests. */
export function nextStatus(agd: AutoGLMDeployment, changes: readonly Change[], now: Date, url: string) {
  const applied = changes.filter((c) => applies(agd, c));
  const recommended = changes.filter((c) => !applies(agd, c));
  const tuning = applyChanges(agd.status?.tuning, applied);
  if (tuning !== undefined) {
    if (recommended.length > 0) tuning.recommendations = recommendations(recommended);
    else delete tuning.recommendations;
  }
  const time = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const decisions: Decision[] = changes.map((c) => ({
    time,
    knob: c.knob,
    ...(c.node === undefined ? {} : { node: c.node }),
    from: c.from,
    to: c.to,
    applied: applies(agd, c),
    reason: c.reason,
    evidence: c.evidence,
  }));
  const fresh = {
    type: 'MetricsAvailable',
    status: 'True' as const,
    reason: 'Fresh',
    message: `read from ${url}`,
  };
  let conditions = withCondition(loopConditions(agd), fresh, now, agd.metadata.generation);
  conditions = withCondition(conditions, tunedCondition(agd, tuning), now, agd.metadata.generation);
  return { tuning, decisions, conditions };
}

export class TuningLoop {
  readonly #o: LoopOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(o: LoopOptions) {
    this.#o = o;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.round().finally(() => {
        this.#running = undefined;
      });
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }

  async round(): Promise<void> {
    for (const agd of this.#o.agds.list()) {
      if (!isTuned(agd) || agd.metadata.deletionTimestamp !== undefined) continue;
      try {
        await this.evaluate(agd);
      } catch (err) {
        this.#o.log('error', 'tuning round failed', {
          key: `${agd.metadata.namespace ?? ''}/${agd.metadata.name}`,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  async evaluate(agd: AGD): Promise<void> {
    const now = (this.#o.now ?? (() => new Date()))();
    const url = agd.spec.tuning.prometheusURL ?? this.#o.prometheusURL;
    const signals = await this.#signals(agd, url, now);
    if (signals === undefined || url === undefined) return;
    const next = nextStatus(agd, withoutRepeats(agd, plan(agd, signals, now)), now, url);
    const before = agd.status ?? {};
    const unchanged =
      next.decisions.length === 0 &&
      JSON.stringify(next.conditions) === JSON.stringify(loopConditions(agd)) &&
      JSON.stringify(next.tuning) === JSON.stringify(before.tuning ?? next.tuning);
    if (unchanged) return;
    await this.#write(agd, {
      conditions: next.conditions,
      ...(next.tuning === undefined ? {} : { tuning: next.tuning }),
      decisions: [...(before.decisions ?? []), ...next.decisions].slice(-KEEP_DECISIONS),
    });
    await this.#record(agd, next.decisions);
  }

  /** Fresh signals, or undefined after freezing the object with the reason. */
  async #signals(agd: AGD, url: string | undefined, now: Date): Promise<DeploymentSignals | undefined> {
    const labels = { namespace: agd.metadata.namespace ?? 'default', deployment: agd.metadata.name };
    if (url === undefined) {
      await this.#freeze(
        agd,
        now,
        'NoPrometheus',
        'no Prometheus address: set spec.tuning.prometheusURL or --prometheus-url',
      );
      return undefined;
    }
    try {
      const target = { namespace: labels.namespace, model: agd.spec.model.servedName ?? agd.metadata.name };
      const s = await readSignals(
        new PrometheusClient(url),
        target,
        agd.spec.autoscaling.scaleDownStabilizationSeconds,
      );
      this.#o.metrics.metricsAvailable.set(labels, 1);
      return s;
    } catch (err) {
      if (!(err instanceof MetricsUnavailable)) throw err;
      this.#o.metrics.metricsAvailable.set(labels, 0);
      await this.#freeze(agd, now, err.reason, err.message);
      return undefined;
    }
  }

  async #record(agd: AGD, decisions: readonly Decision[]): Promise<void> {
    const labels = { namespace: agd.metadata.namespace ?? 'default', deployment: agd.metadata.name };
    for (const d of decisions) {
      this.#o.metrics.decisions.inc({
        ...labels,
        knob: d.knob,
        node: d.node ?? '',
        applied: String(d.applied),
      });
      await this.#o.events.record(agd, {
        type: 'Normal',
        reason: d.applied ? 'Tuned' : 'Recommended',
        message: `${d.knob}${d.node === undefined ? '' : ` on ${d.node}`}: ${d.from} → ${d.to} (${d.reason})`,
      });
    }
  }

  async #freeze(agd: AGD, now: Date, reason: string, message: string): Promise<void> {
    const before = loopConditions(agd);
    const conds = withCondition(
      before,
      { type: 'MetricsAvailable', status: 'False', reason, message },
      now,
      agd.metadata.generation,
    );
    if (JSON.stringify(conds) === JSON.stringify(before)) return;
    await this.#write(agd, { conditions: conds });
    if (before.find((c) => c.type === 'MetricsAvailable')?.status !== 'False')
      await this.#o.events.record(agd, { type: 'Warning', reason, message: `tuning frozen: ${message}` });
  }

  /** Server-side apply of the loop's own status fields, under its own field manager. */
  async #write(agd: AGD, status: Record<string, unknown>): Promise<void> {
    const { path, body } = statusApply(agd, status);
    try {
      await this.#o.client.request('PATCH', path, {
        body,
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager: TUNING_FIELD_MANAGER, force: true },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
