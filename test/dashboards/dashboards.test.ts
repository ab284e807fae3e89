/**
 * The Grafana dashboards in charts/autoglm/dashboards: they match their TypeScript source, and
 * every query in them (panels, template variables, annotations) parses and returns series in a
 * real Prometheus that scrapes a real AutoGLM server and a real operator.
 *
 * Set-up: a server on loopback over a seeded random model, with NODE_NAME set and gzip on, takes
 * real traffic (plain and streamed completions, a bad request) and two tuning files (a good one
 * and a broken one). The operator runs against the test control plane (test/cluster) in a fresh
 * namespace and reconciles two AutoGLMDeployments, one of them waiting for a missing Secret.
 * Prometheus scrapes both every second with the target labels a Kubernetes scrape would add
 * (namespace, deployment, pod; node for the operator), set here: see serverLabels. The object
 * `smollm2` is then put in Recommend mode against this Prometheus, so the tuning loop makes a
 * decision and the decisions annotation has series too.
 *
 * Each query runs twice: with every variable at "All" (`.*`), and with the values the test
 * knows (the test's namespace, deployment=smollm2, node=gpu-node-a for the server's dashboards).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { SERVING_PARAMS_DEFAULTS, TUNING_API_VERSION, TUNING_KIND } from '../../crds/tuning.ts';
import { DASHBOARDS, REPO_ROOT, staleDashboards } from '../../dashboards/render.ts';
import type { RunningServer } from '../../server/src/http/server.ts';
import {
  agdManifest,
  clusterWithCrd,
  eventually,
  freshNamespace,
  startOperator,
  type Cluster,
  type RunningOperator,
} from '../support/operator.ts';
import { metricValue, randomModel, serve } from '../support/server.ts';
import {
  setupPrometheus,
  startPrometheus,
  type QueryResponse,
  type RunningPrometheus,
} from '../support/prometheus.ts';

const NODE = 'gpu-node-a';
const MODEL = 'smollm2-135m-instruct';
/** What a PodMonitor (with the `deployment` relabeling) adds to a server pod's series. */
const SERVER_POD = { deployment: 'smollm2', pod: 'smollm2-7c9d6f5b8-x4k2q' };
/** The server's target labels; its namespace is the test's, where the tuned object lives. */
const serverLabels = () => ({ namespace: namespace ?? 'unset', ...SERVER_POD });
/** The same for the operator's pod; its series have no `node`, so the scrape adds one. */
const OPERATOR_LABELS = {
  namespace: 'autoglm-system',
  deployment: 'autoglm-operator',
  pod: 'autoglm-operator-6b8f9d7c5-m2n4p',
  node: 'gpu-node-b',
};
/** Grafana's built-in interval variables, at values that fit 1 s scrapes. */
const BUILTINS = { __rate_interval: '1m', __interval: '1m', __range: '5m' } as const;

// ---- the queries in the committed JSON --------------------------------------------------------

interface Panel {
  readonly title?: string;
  readonly panels?: readonly Panel[];
  readonly targets?: readonly { readonly refId?: string; readonly expr?: string }[];
}
interface Variable {
  readonly type: string;
  readonly name: string;
  readonly query?: string | { readonly query?: string };
  readonly current?: { readonly value?: string | readonly string[] };
}
interface DashboardJson {
  readonly title: string;
  readonly panels?: readonly Panel[];
  readonly templating?: { readonly list?: readonly Variable[] };
  readonly annotations?: { readonly list?: readonly { readonly name?: string; readonly expr?: string }[] };
}

interface Expr {
  readonly where: string;
  readonly expr: string;
}

function readDashboard(file: string): DashboardJson | undefined {
  try {
    return JSON.parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as DashboardJson;
  } catch {
    return undefined; // the drift test reports it
  }
}

function panelExprs(panels: readonly Panel[] = []): Expr[] {
  return panels.flatMap((p) => [
    ...(p.targets ?? []).flatMap((t) =>
      t.expr === undefined ? [] : [{ where: `${p.title ?? '?'} [${t.refId ?? '?'}]`, expr: t.expr }],
    ),
    ...panelExprs(p.panels),
  ]);
}

function annotationExprs(d: DashboardJson): Expr[] {
  return (d.annotations?.list ?? []).flatMap((a) =>
    a.expr === undefined ? [] : [{ where: `annotation ${a.name ?? '?'}`, expr: a.expr }],
  );
}

const variableQuery = (v: Variable): string =>
  typeof v.query === 'string' ? v.query : (v.query?.query ?? '');

// ---- variables ----------------------------------------------------------------------------------

/** The test's known values of the scope variables, per dashboard. */
function expectedScope(file: string): Record<string, string> {
  if (file.includes('operator')) {
    const { namespace, deployment, node } = OPERATOR_LABELS;
    return { namespace, deployment, node };
  }
  return { namespace: serverLabels().namespace, deployment: SERVER_POD.deployment, node: NODE };
}

/** Variable → value: query variables at `scope` (or `.*`), the others at their default. */
function variableValues(d: DashboardJson, scope: Record<string, string> | 'all'): Map<string, string> {
  const values = new Map<string, string>(Object.entries(BUILTINS));
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'query') values.set(v.name, scope === 'all' ? '.*' : (scope[v.name] ?? '.*'));
    else if (v.type !== 'datasource') values.set(v.name, String(v.current?.value ?? ''));
  }
  return values;
}

/** Grafana's interpolation of `$name`, `${name}` and `[[name]]`; an unknown variable is an error. */
function interpolate(expr: string, values: ReadonlyMap<string, string>): string {
  return expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g,
    (whole, a?: string, b?: string, c?: string) => {
      const name = a ?? b ?? c ?? '';
      const value = values.get(name);
      if (value === undefined) throw new Error(`unknown variable ${whole} in ${expr}`);
      return value;
    },
  );
}

/** Grafana's `label_values(selector, label)` as the PromQL that returns the same label values. */
function labelValuesQuery(query: string): { promql: string; label: string } {
  const m = /^label_values\((.*),\s*(\w+)\)$/s.exec(query.trim());
  if (m === null) throw new Error(`not a label_values() query: ${query}`);
  const [, selector = '', label = ''] = m;
  return { promql: `group by (${label}) (${selector})`, label };
}

// ---- the world they query -----------------------------------------------------------------------

let prometheus: RunningPrometheus | undefined;
let server: RunningServer | undefined;
let model: Awaited<ReturnType<typeof randomModel>> | undefined;
let cluster: Cluster | undefined;
let namespace: string | undefined;
let operator: RunningOperator | undefined;
let tuningDir: string | undefined;

const hostPort = (url: string) => new URL(url).host;

async function startServer(): Promise<RunningServer> {
  model = await randomModel('fast');
  tuningDir = await mkdtemp(join(tmpdir(), 'autoglm-dashboards-'));
  process.env['NODE_NAME'] = NODE;
  process.env['LOG_LEVEL'] ??= 'silent'; // a rejected tuning file is logged as an error, on purpose
  return serve(model.dir, {
    servedModelName: MODEL,
    tuningFile: join(tuningDir, 'tuning.yaml'),
    params: { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 16, compression: { algorithm: 'gzip', level: 6 } },
  });
}

const agdYaml = (ns: string, name: string, modelSpec: string) =>
  agdManifest(ns, name, `  model:\n    source: hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF\n${modelSpec}`);

/** The operator in a fresh namespace, once it has reconciled one deployment and requeued another. */
async function startOperatorWithWork(): Promise<RunningOperator> {
  cluster = await clusterWithCrd();
  const ns = (namespace = await freshNamespace(cluster, 'dashboards'));
  const op = await startOperator(cluster.info, { leaseNamespace: ns, namespace: ns });
  await cluster.apply(agdYaml(ns, 'smollm2', ''));
  await cluster.apply(agdYaml(ns, 'gated', '    credentialsSecret:\n      name: missing-token\n'));
  await eventually('a successful and a requeued reconcile', async () => {
    const text = await op.metrics();
    const ok = metricValue(text, 'autoglm_operator_reconcile_total', { result: 'success' }) ?? 0;
    const requeued = metricValue(text, 'autoglm_operator_reconcile_total', { result: 'requeue' }) ?? 0;
    return ok > 0 && requeued > 0 ? text : undefined;
  });
  return op;
}

async function post(path: string, body: unknown): Promise<number> {
  assert.ok(server !== undefined);
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer(); // all of it, streamed or not
  return res.status;
}

async function serverMetric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  assert.ok(server !== undefined);
  return metricValue(await (await fetch(`${server.url}/metrics`)).text(), name, labels);
}

async function writeTuning(content: string, until: () => Promise<boolean>): Promise<void> {
  assert.ok(tuningDir !== undefined);
  await writeFile(join(tuningDir, 'tuning.yaml'), content);
  await eventually(
    'the server to read the tuning file',
    async () => ((await until()) ? true : undefined),
    15_000,
  );
}

/** Completions plain and streamed, chat and text, concurrently; a bad request; a good and a bad tuning file. */
async function driveTraffic(): Promise<void> {
  const chat = { model: MODEL, messages: [{ role: 'user', content: 'Hello there!' }], max_tokens: 8 };
  const text = { model: MODEL, prompt: 'Once upon a time', max_tokens: 8 };
  const statuses = await Promise.all([
    post('/v1/chat/completions', chat),
    post('/v1/chat/completions', { ...chat, stream: true }),
    post('/v1/completions', text),
    post('/v1/completions', { ...text, stream: true }),
    post('/v1/chat/completions', { ...chat, max_tokens: 16 }),
  ]);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  assert.equal(await post('/v1/chat/completions', { model: MODEL, messages: 'not a list' }), 400);
  const file = { apiVersion: TUNING_API_VERSION, kind: TUNING_KIND, nodes: { [NODE]: { maxBatchSize: 8 } } };
  await writeTuning(
    stringify(file),
    async () => (await serverMetric('autoglm_tuning_value', { param: 'maxBatchSize' })) === 8,
  );
  await post('/v1/chat/completions', chat);
  await writeTuning(
    stringify({ ...file, nodes: { [NODE]: { maxBatchSize: 0 } } }),
    async () => ((await serverMetric('autoglm_tuning_errors_total')) ?? 0) > 0,
  );
}

/**
 * Recommend mode on `smollm2`, reading this Prometheus: the server compresses with gzip 6 (as the
 * spec says), and the bounds allow only gzip 4 and 5, so the loop's first decision is to bring
 * the node back within them. Waits until the operator counts that decision.
 */
async function tuningDecision(prometheusUrl: string): Promise<void> {
  assert.ok(cluster !== undefined && namespace !== undefined && operator !== undefined);
  const op = operator;
  const spec =
    `    servedName: ${MODEL}\n  transport:\n    compression: { algorithm: gzip, level: 6 }\n` +
    `  tuning:\n    mode: Recommend\n    prometheusURL: ${prometheusUrl}\n` +
    `    cooldownSeconds: { transport: 0 }\n` +
    `    bounds:\n      compression: { algorithms: [gzip], minLevel: 4, maxLevel: 5 }\n`;
  await cluster.apply(agdYaml(namespace, 'smollm2', spec));
  const text = { model: MODEL, prompt: 'Once upon a time', max_tokens: 8 };
  await eventually(
    'a tuning decision',
    async () => {
      await Promise.all(Array.from({ length: 3 }, () => post('/v1/completions', text)));
      const n = metricValue(await op.metrics(), 'autoglm_operator_tuning_decisions_total', { node: NODE });
      return (n ?? 0) > 0 ? true : undefined;
    },
    90_000,
  );
}

/** Bounded: a step that hangs is left behind after `ms`, so the suite always ends. */
async function within(what: string, ms: number, step: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      console.error(`cleanup: ${what} took over ${String(ms)} ms; moving on`);
      resolve();
    }, ms);
  });
  try {
    await Promise.race([step(), timeout]);
  } catch (err) {
    console.error(`cleanup: ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Prometheus scraping the server and the operator, after the traffic; see the file's header. */
async function setUp(): Promise<void> {
  await setupPrometheus();
  const [s, op] = await Promise.all([startServer(), startOperatorWithWork()]);
  server = s;
  operator = op;
  prometheus = await startPrometheus([
    { job: 'autoglm-server', target: hostPort(s.url), labels: serverLabels() },
    { job: 'autoglm-operator', target: hostPort(op.healthUrl), labels: OPERATOR_LABELS, honorLabels: true },
  ]);
  await prometheus.scrapedSince(Date.now(), 1);
  await driveTraffic();
  await tuningDecision(prometheus.url);
  // Two scrapes after the last change, so that rate() sees every new series move.
  await prometheus.scrapedSince(Date.now(), 2);
}

async function tearDown(): Promise<void> {
  await within('prometheus', 15_000, async () => prometheus?.stop());
  await within('server', 10_000, async () => server?.close(1000));
  await within('operator', 15_000, async () => operator?.stop());
  if (cluster !== undefined && namespace !== undefined) {
    const c = cluster;
    const ns = namespace;
    await within('namespace', 15_000, () => c.kubectl(['delete', 'namespace', ns, '--wait=false']));
  }
  await within('model', 10_000, async () => model?.cleanup());
  if (tuningDir !== undefined) await rm(tuningDir, { recursive: true, force: true });
  delete process.env['NODE_NAME'];
}

// ---- the tests ------------------------------------------------------------------------------------

function assertSeries(r: QueryResponse, expr: string): void {
  assert.equal(r.status, 'success', `${expr}\n→ ${r.error ?? 'no error text'}`);
  assert.ok((r.data?.result.length ?? 0) > 0, `no series for\n${expr}`);
}

function query(expr: string): Promise<QueryResponse> {
  assert.ok(prometheus !== undefined, 'Prometheus did not start');
  return prometheus.query(expr);
}

test('the committed dashboards match dashboards/*.ts (node dashboards/render.ts)', async () => {
  assert.deepEqual(await staleDashboards(), []);
});

describe('every query against a real Prometheus', () => {
  before(setUp, { timeout: 600_000 });
  after(tearDown);
  for (const { file } of DASHBOARDS) describeDashboard(file);
});

function describeDashboard(file: string): void {
  const d = readDashboard(file);
  describe(file, () => {
    test('has a Prometheus data source variable and namespace, deployment and node variables', () => {
      assert.ok(d !== undefined, `${file} is missing or not JSON`);
      const vars = new Map((d.templating?.list ?? []).map((v) => [v.name, v.type]));
      assert.equal(vars.get('datasource'), 'datasource');
      for (const name of ['namespace', 'deployment', 'node']) assert.equal(vars.get(name), 'query', name);
    });
    if (d === undefined) return;
    // Known only once the set-up has made the namespace.
    const expected = () => expectedScope(file);

    test('template variables: each offers the known value', async () => {
      const values = variableValues(d, expected());
      for (const v of d.templating?.list ?? []) {
        if (v.type !== 'query') continue;
        const { promql, label } = labelValuesQuery(interpolate(variableQuery(v), values));
        const r = await query(promql);
        assertSeries(r, promql);
        const offered = (r.data?.result ?? []).map((s) => s.metric[label]);
        assert.ok(
          offered.includes(expected()[v.name]),
          `$${v.name}: ${JSON.stringify(offered)} from ${promql}`,
        );
      }
    });

    const exprs = [...panelExprs(d.panels), ...annotationExprs(d)];
    test('has queries', () => {
      assert.ok(exprs.length > 0);
    });
    for (const e of exprs) {
      test(e.where, async () => {
        for (const scope of ['all', expected()] as const) {
          const promql = interpolate(e.expr, variableValues(d, scope));
          const r = await query(promql);
          assert.equal(r.status, 'success', `${promql}\n→ ${r.error ?? 'no error text'}`);
          assertSeries(r, promql);
        }
      });
    }
  });
}
