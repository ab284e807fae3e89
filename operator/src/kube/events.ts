/**
 * Kubernetes Events for notable transitions, as `kubectl describe` shows them. The same event
 * repeated bumps a count on one object instead of flooding the namespace.
 */
import { resourcePath, type KubeClient, type KubeObject } from './rest.ts';

export interface EventInput {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

interface CoreEvent {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  count?: number;
  lastTimestamp?: string;
}

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #component: string;
  readonly #recent = new Map<string, string>();

  constructor(client: KubeClient, component = 'autoglm-operator') {
    this.#client = client;
    this.#component = component;
  }

  /** Records the event; never throws (an event lost is better than a reconcile failed). */
  async record(obj: KubeObject, ev: EventInput): Promise<void> {
    const namespace = obj.metadata.namespace ?? 'default';
    const key = `${namespace}/${obj.metadata.name}/${obj.metadata.uid ?? ''}/${ev.reason}/${ev.message}`;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const path = resourcePath({ apiVersion: 'v1', plural: 'events', namespace });
    try {
      const existing = this.#recent.get(key);
      if (existing !== undefined) {
        const current = await this.#client.get<CoreEvent>(`${path}/${existing}`);
        await this.#client.request('PATCH', `${path}/${existing}`, {
          body: { count: (current.count ?? 1) + 1, lastTimestamp: now },
          contentType: 'application/merge-patch+json',
        });
        return;
      }
      const created = await this.#client.request<CoreEvent>('POST', path, {
        body: {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { generateName: `${obj.metadata.name}.`, namespace },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata.name,
            namespace,
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
          type: ev.type,
          reason: ev.reason,
          message: ev.message.slice(0, 1024),
          source: { component: this.#component },
          reportingComponent: this.#component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.#recent.set(key, created.metadata.name);
      if (this.#recent.size > 1000) this.#recent.delete(this.#recent.keys().next().value ?? '');
    } catch {
      this.#recent.delete(key);
    }
  }
}
