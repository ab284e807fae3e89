/**
 * A small typed client over the Kubernetes REST API. @kubernetes/client-node supplies the
 * kubeconfig handling (files, in-cluster service-account tokens that rotate, exec plugins);
 * requests go through node:https so every verb, subresource and content type (server-side
 * apply on `/status` included) is one code path.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from '../errors.ts';

export const FIELD_MANAGER = 'autoglm-operator';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeList<T> {
  metadata: { resourceVersion?: string };
  items: T[];
}

/** Loads the kubeconfig: an explicit file, else $KUBECONFIG / ~/.kube/config, else in-cluster. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file === undefined) kc.loadFromDefault();
  else kc.loadFromFile(file);
  return kc;
}

const CORE_GROUPS = new Set(['v1']);

/** The REST path of a collection or object: `/api/v1/namespaces/ns/pods/name/status`. */
export function resourcePath(r: {
  apiVersion: string;
  plural: string;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
}): string {
  const root = CORE_GROUPS.has(r.apiVersion) ? `/api/${r.apiVersion}` : `/apis/${r.apiVersion}`;
  const ns = r.namespace === undefined ? '' : `/namespaces/${encodeURIComponent(r.namespace)}`;
  const name = r.name === undefined ? '' : `/${encodeURIComponent(r.name)}`;
  const sub = r.subresource === undefined ? '' : `/${r.subresource}`;
  return `${root}${ns}/${r.plural}${name}${sub}`;
}

export interface RequestInit {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

export class KubeClient {
  readonly config: KubeConfig;
  readonly server: URL;

  constructor(config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    this.config = config;
    this.server = new URL(cluster.server);
  }

  async request<T>(method: string, path: string, init: RequestInit = {}): Promise<T> {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(init.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = init.body === undefined ? undefined : JSON.stringify(init.body);
    const opts: RequestOptions = {
      method,
      headers: {
        accept: 'application/json',
        ...(payload === undefined
          ? {}
          : {
              'content-type': init.contentType ?? 'application/json',
              'content-length': Buffer.byteLength(payload),
            }),
      },
      timeout: init.timeoutMs ?? 30_000,
    };
    await this.config.applyToHTTPSOptions(opts);
    const text = await send(url, opts, payload);
    if (text.status >= 400) throw apiError(text.status, text.body, method, url.pathname);
    return (text.body === '' ? {} : JSON.parse(text.body)) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  list<T>(path: string, query?: RequestInit['query']): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', path, query === undefined ? {} : { query });
  }

  /** Server-side apply: the object is our whole intent for the fields we manage. */
  apply<T>(path: string, obj: unknown): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path, { body: { propagationPolicy: 'Background' } });
  }
}

function send(
  url: URL,
  opts: RequestOptions,
  payload: string | undefined,
): Promise<{ status: number; body: string }> {
  const doRequest = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const req = doRequest(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(new KubeApiError(0, 'Timeout', `${opts.method ?? 'GET'} ${url.pathname}: timed out`)),
    );
    req.on('error', (err) => {
      reject(
        err instanceof KubeApiError
          ? err
          : new KubeApiError(0, 'Unreachable', `${opts.method ?? 'GET'} ${url.pathname}: ${err.message}`),
      );
    });
    req.end(payload);
  });
}

function apiError(status: number, body: string, method: string, path: string): KubeApiError {
  let reason = 'Unknown';
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    reason = parsed.reason ?? reason;
    message = parsed.message ?? message;
  } catch {
    // not a Status object: keep the raw text
  }
  return new KubeApiError(status, reason, `${method} ${path}: ${String(status)} ${message}`);
}
