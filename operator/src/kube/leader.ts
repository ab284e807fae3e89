/**
 * Leader election on a coordination.k8s.io Lease, after client-go's: the holder renews every
 * `retryMs`; a candidate takes the lease once it has gone unrenewed for `leaseDurationS`.
 * Writes are guarded by resourceVersion, so two candidates cannot both win one round. A leader
 * that cannot renew within `renewDeadlineMs` steps down (the caller exits, as controller-runtime
 * does), so two leaders never act at once for longer than the lease allows.
 */
import { KubeApiError, isNotFound } from '../errors.ts';
import { resourcePath, type KubeClient } from './rest.ts';

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationS?: number;
  readonly renewDeadlineMs?: number;
  readonly retryMs?: number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
}

/** Microsecond timestamps, as the Lease API's MicroTime expects. */
const microTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  readonly #client: KubeClient;
  readonly #opts: Required<LeaderOptions>;
  #leading = false;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #observed: { record: string; at: number } = { record: '', at: 0 };

  constructor(client: KubeClient, opts: LeaderOptions) {
    this.#client = client;
    this.#opts = { leaseDurationS: 15, renewDeadlineMs: 10_000, retryMs: 2_000, ...opts };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    void this.#tick();
  }

  /** Stops renewing and, when leading, releases the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#client.get<Lease>(this.#path());
      if (lease.spec.holderIdentity === this.#opts.identity) {
        const released: Lease = {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 },
        };
        await this.#client.request('PUT', this.#path(), { body: released });
      }
    } catch {
      // best effort: the lease expires on its own
    }
  }

  #collection(): string {
    return resourcePath({
      apiVersion: 'coordination.k8s.io/v1',
      plural: 'leases',
      namespace: this.#opts.namespace,
    });
  }

  #path(): string {
    return `${this.#collection()}/${encodeURIComponent(this.#opts.name)}`;
  }

  #halted(): boolean {
    return this.#stopped;
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    let ok: boolean;
    try {
      ok = await this.#tryAcquireOrRenew();
    } catch {
      ok = false;
    }
    const now = Date.now();
    if (ok) {
      this.#lastRenew = now;
      if (!this.#leading) {
        this.#leading = true;
        this.#opts.onStartedLeading();
      }
    } else if (this.#leading && now - this.#lastRenew > this.#opts.renewDeadlineMs) {
      this.#leading = false;
      this.#opts.onStoppedLeading();
      return;
    }
    // stop() may have run while the request was in flight.
    if (this.#halted()) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#opts.retryMs);
    this.#timer.unref();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    let lease: Lease;
    try {
      lease = await this.#client.get<Lease>(this.#path());
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return this.#create();
    }
    const spec = lease.spec;
    const holder = spec.holderIdentity ?? '';
    // Expiry is judged on our own clock, from when we saw the record last change, as client-go
    // does: another host's renewTime says nothing reliable about our time.
    const record = `${holder}|${spec.renewTime ?? ''}`;
    const now = Date.now();
    if (record !== this.#observed.record) this.#observed = { record, at: now };
    const expired = now - this.#observed.at > (spec.leaseDurationSeconds ?? this.#opts.leaseDurationS) * 1000;
    if (holder !== this.#opts.identity && holder !== '' && !expired) return false;
    return this.#put(lease, holder === this.#opts.identity);
  }

  async #create(): Promise<boolean> {
    const now = microTime(new Date());
    const { identity, leaseDurationS, namespace, name } = this.#opts;
    const fresh: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: leaseDurationS,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    };
    await this.#client.request('POST', this.#collection(), { body: fresh });
    return true;
  }

  /** Renews our lease or takes over an expired one; the resourceVersion guards the write. */
  async #put(lease: Lease, renewing: boolean): Promise<boolean> {
    const now = microTime(new Date());
    const spec = lease.spec;
    const next: Lease = {
      ...lease,
      spec: {
        holderIdentity: this.#opts.identity,
        leaseDurationSeconds: this.#opts.leaseDurationS,
        acquireTime: renewing ? (spec.acquireTime ?? now) : now,
        renewTime: now,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (renewing ? 0 : 1),
      },
    };
    try {
      await this.#client.request('PUT', this.#path(), { body: next });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }
}
