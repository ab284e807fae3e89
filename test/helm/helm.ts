/**
 * Helm for the chart tests: the pinned CLI that scripts/setup-helm.sh builds (run here when it
 * is missing, so a fresh machine needs nothing else), run with its own config and cache dirs.
 */
import { cp, mkdtemp } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { run, type RunResult } from '../support/process.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHART = join(ROOT, 'charts/autoglm');
const SETUP = join(ROOT, 'scripts/setup-helm.sh');

let helmBin: Promise<string> | undefined;
/** Helm's own config, cache and data dirs: beside the binary, not under ~/.config and ~/.cache/helm. */
const HELM_HOME = join(
  process.env['AUTOGLM_HOME'] ?? join(homedir(), '.cache', 'autoglm'),
  'tools',
  'helm-home',
);

/**
 * The helm binary: scripts/setup-helm.sh prints its path, building it first when it is missing
 * or not the pinned version (minutes, once per machine).
 */
export function ensureHelm(): Promise<string> {
  helmBin ??= run('bash', [SETUP], {
    env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/local/go/bin` },
  }).then((r) => {
    const path = r.stdout.trim().split('\n').at(-1);
    if (r.code !== 0 || path === undefined || path === '')
      throw new Error(`scripts/setup-helm.sh failed (exit ${String(r.code)}):\n${r.stderr.slice(-2000)}`);
    return path;
  });
  return helmBin;
}

/** Runs helm with config, cache and data dirs of its own. */
export async function helm(args: readonly string[], kubeconfig?: string): Promise<RunResult> {
  const bin = await ensureHelm();
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(HELM_HOME, 'cache'),
    HELM_CONFIG_HOME: join(HELM_HOME, 'config'),
    HELM_DATA_HOME: join(HELM_HOME, 'data'),
  };
  return run(bin, kubeconfig === undefined ? args : [...args, `--kubeconfig=${kubeconfig}`], { env });
}

/** Like helm(), but rejects on failure with helm's message, and resolves to stdout. */
export async function helmOk(args: readonly string[], kubeconfig?: string): Promise<string> {
  const r = await helm(args, kubeconfig);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${String(r.code)}:\n${r.stderr.trim()}`);
  return r.stdout;
}

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly [field: string]: unknown;
}

/** The objects of a multi-document YAML stream, without empty documents. */
export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export interface RenderOptions {
  readonly release?: string;
  readonly namespace?: string;
  readonly set?: readonly string[];
  /** A values file (-f). */
  readonly values?: string;
  readonly chart?: string;
}

export function templateArgs(o: RenderOptions): string[] {
  return [
    'template',
    o.release ?? 'autoglm',
    o.chart ?? CHART,
    `--namespace=${o.namespace ?? 'autoglm-system'}`,
    ...(o.values === undefined ? [] : ['-f', o.values]),
    ...(o.set ?? []).flatMap((s) => ['--set', s]),
  ];
}

/** `helm template` of the chart, parsed. */
export async function render(o: RenderOptions = {}): Promise<K8sObject[]> {
  return parseManifests(await helmOk(templateArgs(o)));
}

/** A copy of the chart in a temp dir, for tests that change its files. */
export async function chartCopy(): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'autoglm-chart-')), 'autoglm');
  await cp(CHART, dir, { recursive: true });
  return dir;
}

/** "Kind/name" (and "namespace/" first when namespaced), sorted: an object set to compare. */
export function ids(objs: readonly K8sObject[]): string[] {
  return objs
    .map(
      (o) =>
        `${o.metadata.namespace === undefined ? '' : `${o.metadata.namespace}/`}${o.kind}/${o.metadata.name}`,
    )
    .sort();
}

export function byKind(objs: readonly K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}

export function one(objs: readonly K8sObject[], kind: string): K8sObject {
  const found = byKind(objs, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${String(found.length)}`);
  return found[0] as K8sObject;
}
