/**
 * Informers over @kubernetes/client-node's ListWatch (list, then watch from the list's
 * resourceVersion, relisting on 410 Gone). ListWatch stops on any other error; this wraps it
 * once so an error restarts it with backoff, resuming from the last resourceVersion it saw, so
 * an API server restart loses no change.
 */
import { ListWatch, Watch, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient, KubeObject } from './rest.ts';

export interface Informer<T extends KubeObject> {
  /** Resolves after the first list has been delivered. */
  readonly synced: Promise<void>;
  get(namespace: string | undefined, name: string): T | undefined;
  list(namespace?: string): T[];
  stop(): Promise<void>;
}

export interface InformerOptions<T> {
  readonly path: string;
  readonly labelSelector?: string;
  readonly onChange: (obj: T) => void;
  readonly onError?: (err: unknown) => void;
}

export function startInformer<T extends KubeObject>(
  client: KubeClient,
  opts: InformerOptions<T>,
): Informer<T> {
  const listFn = () =>
    client.list<T>(
      opts.path,
      opts.labelSelector === undefined ? {} : { labelSelector: opts.labelSelector },
    ) as Promise<{
      metadata: { resourceVersion?: string };
      items: (T & KubernetesObject)[];
    }>;
  const lw = new ListWatch<T & KubernetesObject>(
    opts.path,
    new Watch(client.config),
    listFn,
    false,
    opts.labelSelector,
  );
  let stopped = false;
  let retryMs = 250;
  let timer: NodeJS.Timeout | undefined;
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => {
    markSynced = resolve;
  });
  const changed = (obj: T) => {
    opts.onChange(obj);
  };
  lw.on('add', changed);
  lw.on('update', changed);
  lw.on('delete', changed);
  lw.on('connect', () => {
    retryMs = 250;
  });
  let errors = 0;
  // start() resolves after the list either way; only a start that saw no error has synced.
  const start = () => {
    const before = errors;
    void lw.start().then(
      () => {
        if (errors === before) markSynced();
      },
      () => undefined,
    );
  };
  lw.on('error', (err: unknown) => {
    // stop() aborts the watch, which reports as an error: not one to log or restart on.
    if (stopped) return;
    errors++;
    opts.onError?.(err);
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (!stopped) start();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 10_000);
  });
  start();
  return {
    synced,
    get: (namespace, name) => lw.get(name, namespace),
    list: (namespace) => [...lw.list(namespace)],
    stop: async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await lw.stop();
    },
  };
}
