/**
 * The running controller: informers feed keys into the work queue (children map back to their
 * owner), workers reconcile keys, failures come back with backoff, and every object is
 * resynced periodically so nothing depends on having seen one particular event.
 */
import { API_VERSION, PLURAL, KIND, type AutoGLMDeployment } from '../../../crds/deployment.ts';
import { EventRecorder } from '../kube/events.ts';
import { startInformer, type Informer } from '../kube/informer.ts';
import { WorkQueue } from '../kube/queue.ts';
import { resourcePath, type KubeClient, type KubeObject } from '../kube/rest.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { MANAGED_SELECTOR, OWNER_LABEL } from './labels.ts';
import { Reconciler } from './reconciler.ts';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly metrics: OperatorMetrics;
  readonly serverImage: string;
  /** Watch one namespace; all when undefined. */
  readonly namespace?: string | undefined;
  readonly workers?: number;
  readonly resyncMs?: number;
  readonly log: (level: 'info' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

type AGD = AutoGLMDeployment & KubeObject;

const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? 'default'}/${name}`;

/** The owning AutoGLMDeployment's key: by controller ownerReference, or for pods by label. */
function ownerKey(obj: KubeObject): string | undefined {
  const ref = obj.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === KIND);
  if (ref !== undefined) return keyOf(obj.metadata.namespace, ref.name);
  const label = obj.metadata.labels?.[OWNER_LABEL];
  return label === undefined ? undefined : keyOf(obj.metadata.namespace, label);
}

export class Controller {
  readonly queue = new WorkQueue();
  readonly #o: ControllerOptions;
  readonly #informers: Informer<KubeObject>[] = [];
  #deployments: Informer<AGD> | undefined;
  #resync: NodeJS.Timeout | undefined;
  #workers: Promise<void>[] = [];
  #podMonitor: { value: boolean; at: number } | undefined;

  constructor(o: ControllerOptions) {
    this.#o = o;
  }

  /** Starts informers and workers; resolves once every cache has synced. */
  async start(): Promise<void> {
    const { client, namespace } = this.#o;
    const onError = (what: string) => (err: unknown) => {
      this.#o.log('error', `watch ${what} failed; restarting`, { error: String(err) });
    };
    const agds = startInformer<AGD>(client, {
      path: resourcePath({ apiVersion: API_VERSION, plural: PLURAL, namespace }),
      onChange: (o) => {
        this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
      },
      onError: onError(PLURAL),
    });
    this.#deployments = agds;
    const child = (apiVersion: string, plural: string, labelSelector: string) =>
      startInformer<KubeObject>(client, {
        path: resourcePath({ apiVersion, plural, namespace }),
        labelSelector,
        onChange: (o) => {
          const key = ownerKey(o);
          if (key !== undefined) this.queue.add(key);
        },
        onError: onError(plural),
      });
    const pods = child('v1', 'pods', OWNER_LABEL);
    this.#informers.push(
      agds,
      child('apps/v1', 'deployments', MANAGED_SELECTOR),
      child('v1', 'services', MANAGED_SELECTOR),
      child('v1', 'configmaps', MANAGED_SELECTOR),
      child('policy/v1', 'poddisruptionbudgets', MANAGED_SELECTOR),
      pods,
    );
    await Promise.all(this.#informers.map((i) => i.synced));
    const reconciler = new Reconciler({
      client,
      events: new EventRecorder(client),
      metrics: this.#o.metrics,
      agds,
      pods,
      serverImage: this.#o.serverImage,
      podMonitorAvailable: () => this.#podMonitorAvailable(),
      podMonitorGone: () => {
        this.#podMonitor = undefined;
      },
    });
    for (let i = 0; i < (this.#o.workers ?? 4); i++) this.#workers.push(this.#work(reconciler));
    this.#resync = setInterval(() => {
      for (const o of agds.list()) this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
    }, this.#o.resyncMs ?? 300_000);
    this.#resync.unref();
  }

  async stop(): Promise<void> {
    if (this.#resync !== undefined) clearInterval(this.#resync);
    this.queue.shutDown();
    await Promise.all(this.#informers.map((i) => i.stop()));
    await Promise.all(this.#workers);
  }

  /** The cached AutoGLMDeployments (for the tuning loop). */
  get deployments(): Informer<AGD> | undefined {
    return this.#deployments;
  }

  async #podMonitorAvailable(): Promise<boolean> {
    const now = Date.now();
    if (this.#podMonitor !== undefined && now - this.#podMonitor.at < 60_000) return this.#podMonitor.value;
    let value: boolean;
    try {
      const res = await this.#o.client.get<{ resources?: { kind: string }[] }>(
        '/apis/monitoring.coreos.com/v1',
      );
      value = res.resources?.some((r) => r.kind === 'PodMonitor') ?? false;
    } catch {
      value = false;
    }
    this.#podMonitor = { value, at: now };
    return value;
  }

  async #work(reconciler: Reconciler): Promise<void> {
    const { metrics } = this.#o;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.queueDepth.set(this.queue.depth);
      const [namespace = 'default', name = ''] = key.split('/');
      const end = metrics.reconcileTime.startTimer();
      let result: 'success' | 'requeue' | 'error' = 'success';
      try {
        const r = await reconciler.reconcile(namespace, name);
        if (r.retry) {
          result = 'requeue';
          this.queue.addRateLimited(key);
        } else this.queue.forget(key);
      } catch (err) {
        result = 'error';
        const delay = this.queue.addRateLimited(key);
        this.#o.log('error', 'reconcile failed', {
          key,
          error: err instanceof Error ? err.message : String(err),
          retryInMs: delay,
        });
      } finally {
        end({ result });
        metrics.reconcileTotal.inc({ result });
        this.queue.done(key);
      }
    }
  }
}
