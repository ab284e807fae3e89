/**
 * The chart against the real control plane (test/cluster): its rendered objects pass the API
 * server's validation; install, upgrade and uninstall leave exactly the expected objects; the
 * operator Deployment becomes Available on kwok nodes; and `autoglm operator`, running with the
 * chart's ServiceAccount token and nothing else, reconciles examples/autoglm.yaml.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  clusterWithCrd,
  eventually,
  freshNamespace,
  sleep,
  startOperator,
  type Cluster,
} from '../support/operator.ts';
import {
  CHART,
  ensureHelm,
  helm,
  helmOk,
  ids,
  parseManifests,
  render,
  ROOT,
  templateArgs,
  type K8sObject,
} from './helm.ts';

const RELEASE = 'autoglm';
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
const CRD = 'autoglmdeployments.serving.autoglm.io';
const EXAMPLE = join(ROOT, 'examples/autoglm.yaml');
const NAMESPACED = [
  'serviceaccounts',
  'services',
  'deployments.apps',
  'configmaps',
  'roles.rbac.authorization.k8s.io',
  'rolebindings.rbac.authorization.k8s.io',
].join(',');
const CLUSTER_SCOPED = 'clusterroles.rbac.authorization.k8s.io,clusterrolebindings.rbac.authorization.k8s.io';

let c: Cluster;
/** Values files and the ServiceAccount's kubeconfig. */
let scratch: string;
const namespaces: string[] = [];

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'autoglm-helm-test-'));
  [c] = await Promise.all([clusterWithCrd(), ensureHelm()]);
});

after(async () => {
  for (const ns of namespaces) {
    // Cluster-scoped objects outlive the namespace: uninstall whatever a failed test left.
    await helm(['uninstall', RELEASE, '-n', ns, '--ignore-not-found'], c.info.kubeconfig);
    await c.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
  }
  await rm(scratch, { recursive: true, force: true });
});

async function fresh(prefix: string): Promise<string> {
  const ns = await freshNamespace(c, prefix);
  namespaces.push(ns);
  return ns;
}

// Other suites restart the API server to inject faults; ride over that, nothing else.
const TRANSIENT =
  /connection refused|cluster unreachable|connection reset|TLS handshake timeout|unable to handle/i;
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 30 || !(err instanceof Error) || !TRANSIENT.test(err.message)) throw err;
      await sleep(2000);
    }
  }
}

const helmIn = (args: readonly string[]) => retrying(() => helmOk(args, c.info.kubeconfig));
const getJson = <T>(args: readonly string[]) => retrying(() => c.getJson<T>(args));

/** Everything of the release: by its instance label, cluster-scoped ones by Helm's annotation. */
async function releaseObjects(ns: string): Promise<K8sObject[]> {
  const inNs = await getJson<{ items: K8sObject[] }>(['-n', ns, 'get', NAMESPACED, '-l', SELECTOR]);
  const cluster = await getJson<{ items: K8sObject[] }>(['get', CLUSTER_SCOPED, '-l', SELECTOR]);
  const ours = cluster.items.filter((o) => o.metadata.annotations?.['meta.helm.sh/release-namespace'] === ns);
  return [...inNs.items, ...ours];
}

async function podsOf(ns: string): Promise<K8sObject[]> {
  return (await getJson<{ items: K8sObject[] }>(['-n', ns, 'get', 'pods', '-l', SELECTOR])).items;
}

interface DeploymentState {
  spec: {
    replicas: number;
    template: { spec: { containers: { resources: { limits?: Record<string, string> } }[] } };
  };
  status?: { replicas?: number; readyReplicas?: number; conditions?: { type: string; status: string }[] };
}

async function availableOperator(ns: string, replicas: number): Promise<DeploymentState> {
  return eventually(
    `the operator Deployment Available with ${String(replicas)} ready replicas`,
    async () => {
      const d = await c.getJson<DeploymentState>(['-n', ns, 'get', 'deployment', RELEASE]);
      const available = d.status?.conditions?.some((x) => x.type === 'Available' && x.status === 'True');
      const settled = d.status?.replicas === replicas && d.status.readyReplicas === replicas;
      return available === true && settled ? d : undefined;
    },
    120_000,
  );
}

interface Access {
  readonly verb: string;
  readonly resource: string;
  readonly group?: string;
  readonly subresource?: string;
  /** Absent: all namespaces (or a cluster-scoped resource). */
  readonly namespace?: string;
}

/**
 * Whether the chart's ServiceAccount may do something: a SubjectAccessReview, which asks the
 * API server's authorizer directly (kubectl auth can-i would need the resource in discovery,
 * and PodMonitors are not installed here).
 */
async function allowed(ns: string, a: Access): Promise<boolean> {
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: `system:serviceaccount:${ns}:${RELEASE}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      resourceAttributes: { group: '', ...a },
    },
  };
  const out = await retrying(() => c.kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(review)));
  return (JSON.parse(out) as { status: { allowed: boolean } }).status.allowed;
}

/** A kubeconfig that authenticates with a token of the chart's ServiceAccount, nothing more. */
async function serviceAccountKubeconfig(ns: string): Promise<string> {
  const token = (
    await retrying(() => c.kubectl(['-n', ns, 'create', 'token', RELEASE, '--duration=1h']))
  ).trim();
  const ca = await retrying(() =>
    c.kubectl([
      'config',
      'view',
      '--raw',
      '--minify',
      '-o',
      'jsonpath={.clusters[0].cluster.certificate-authority-data}',
    ]),
  );
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: c.info.server, 'certificate-authority-data': ca } }],
    users: [{ name: 'operator', user: { token } }],
    contexts: [{ name: 'operator', context: { cluster: 'test', user: 'operator' } }],
    'current-context': 'operator',
  };
  const file = join(scratch, `${ns}.kubeconfig`);
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}

describe('helm template against the API server', () => {
  it('is accepted by a server-side dry run, with defaults and with options', async () => {
    const ns = await fresh('helm-dry');
    const values = join(scratch, 'values.yaml');
    await writeFile(
      values,
      stringify({
        watchNamespace: ns,
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'system', effect: 'NoSchedule' }],
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 100,
                podAffinityTerm: {
                  topologyKey: 'kubernetes.io/hostname',
                  labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'autoglm' } },
                },
              },
            ],
          },
        },
        podAnnotations: { 'example.com/team': 'ml' },
        imagePullSecrets: [{ name: 'regcred' }],
      }),
    );
    for (const opts of [{ namespace: ns }, { namespace: ns, values }]) {
      const manifest = await helmOk(templateArgs(opts));
      const objs = parseManifests(manifest);
      const out = await retrying(() => c.kubectl(['apply', '--dry-run=server', '-f', '-'], manifest));
      const lines = out.trim().split('\n');
      assert.equal(lines.length, objs.length, out);
      for (const line of lines) assert.match(line, / created \(server dry run\)$/);
    }
    assert.deepEqual(await releaseObjects(ns), [], 'a dry run creates nothing');
  });
});

describe('helm install, upgrade and uninstall', () => {
  let ns: string;
  let agdNs: string;

  before(async () => {
    ns = await fresh('helm-release');
    agdNs = await fresh('helm-agd');
  });

  it('install creates exactly the rendered objects, and the operator becomes Available', async () => {
    const notes = await helmIn(['install', RELEASE, CHART, '-n', ns, '--wait', '--timeout=180s']);
    assert.match(notes, /STATUS: deployed/);
    assert.match(notes, /kubectl apply -f examples\/autoglm\.yaml/);
    assert.match(notes, new RegExp(`kubectl -n ${ns} rollout status deployment/${RELEASE}`));
    assert.deepEqual(ids(await releaseObjects(ns)), ids(await render({ namespace: ns, release: RELEASE })));
    await availableOperator(ns, 2);
    assert.equal((await podsOf(ns)).length, 2);
  });

  it('grants the ServiceAccount what the operator needs, and nothing else', async () => {
    const agd = { group: 'serving.autoglm.io', resource: 'autoglmdeployments' };
    const apps = { group: 'apps', resource: 'deployments' };
    const leases = { group: 'coordination.k8s.io', resource: 'leases' };
    const granted: Access[] = [
      { verb: 'list', ...agd },
      { verb: 'watch', ...agd },
      { verb: 'patch', ...agd, subresource: 'status', namespace: agdNs },
      { verb: 'update', ...agd, subresource: 'status', namespace: agdNs },
      { verb: 'create', ...apps, namespace: agdNs },
      { verb: 'patch', ...apps, namespace: agdNs },
      { verb: 'patch', resource: 'services', namespace: agdNs },
      { verb: 'create', resource: 'configmaps', namespace: agdNs },
      { verb: 'patch', group: 'policy', resource: 'poddisruptionbudgets', namespace: agdNs },
      { verb: 'create', group: 'monitoring.coreos.com', resource: 'podmonitors', namespace: agdNs },
      { verb: 'watch', resource: 'pods' },
      { verb: 'get', resource: 'secrets', namespace: agdNs },
      { verb: 'get', resource: 'persistentvolumeclaims', namespace: agdNs },
      { verb: 'create', resource: 'events', namespace: agdNs },
      { verb: 'create', ...leases, namespace: ns },
      { verb: 'update', ...leases, namespace: ns },
    ];
    const denied: Access[] = [
      { verb: 'patch', ...agd, namespace: agdNs },
      { verb: 'update', ...agd, namespace: agdNs },
      { verb: 'delete', ...agd, namespace: agdNs },
      { verb: 'delete', ...apps, namespace: agdNs },
      { verb: 'update', ...apps, namespace: agdNs },
      { verb: 'list', resource: 'secrets', namespace: agdNs },
      { verb: 'create', resource: 'pods', namespace: agdNs },
      { verb: 'delete', resource: 'pods', namespace: agdNs },
      { verb: 'create', ...leases, namespace: agdNs },
      { verb: 'delete', ...leases, namespace: ns },
      { verb: 'get', resource: 'nodes' },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
    ];
    const show = (a: Access) =>
      `${a.verb} ${a.resource}${a.subresource === undefined ? '' : `/${a.subresource}`}`;
    for (const a of granted) assert.equal(await allowed(ns, a), true, `may ${show(a)}`);
    for (const a of denied) assert.equal(await allowed(ns, a), false, `may not ${show(a)}`);
  });

  it('is enough for `autoglm operator` with the ServiceAccount token to reconcile the example', async () => {
    const kubeconfig = await serviceAccountKubeconfig(ns);
    const op = await startOperator({ ...c.info, kubeconfig }, { leaseNamespace: ns, namespace: agdNs });
    try {
      await retrying(() => c.kubectl(['-n', agdNs, 'apply', '-f', EXAMPLE]));
      await eventually(
        'smollm2 reconciled and Available',
        async () => {
          const a = await c.getJson<{
            metadata: { generation: number };
            status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
          }>(['-n', agdNs, 'get', 'agd', 'smollm2']);
          const available = a.status?.conditions?.some((x) => x.type === 'Available' && x.status === 'True');
          return a.status?.observedGeneration === a.metadata.generation && available === true ? a : undefined;
        },
        120_000,
      );
      await getJson(['-n', agdNs, 'get', 'deployment', 'smollm2']);
      const lease = await getJson<{ spec: { holderIdentity?: string } }>([
        '-n',
        ns,
        'get',
        'lease',
        'autoglm-operator',
      ]);
      assert.ok(lease.spec.holderIdentity, 'the operator holds the Lease in the release namespace');
      assert.match(await op.metrics(), /^autoglm_operator_reconcile_total\{result="success"\} [1-9]/m);
    } finally {
      await op.stop();
    }
    const log = await readFile(op.log, 'utf8');
    assert.doesNotMatch(log, /forbidden|\b403\b/i, log);
  });

  it('upgrade applies changed values and removes what they turn off', async () => {
    const set = ['replicaCount=1', 'resources.limits.memory=256Mi', 'dashboards.enabled=false'];
    const out = await helmIn([
      'upgrade',
      RELEASE,
      CHART,
      '-n',
      ns,
      '--reuse-values',
      ...set.flatMap((s) => ['--set', s]),
      '--wait',
      '--timeout=180s',
    ]);
    assert.match(out, /REVISION: 2/);
    const d = await availableOperator(ns, 1);
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.template.spec.containers[0]?.resources.limits?.['memory'], '256Mi');
    const expected = await render({ namespace: ns, release: RELEASE, set });
    assert.equal(
      expected.filter((o) => o.kind === 'ConfigMap').length,
      0,
      'no dashboards with dashboards.enabled=false',
    );
    assert.deepEqual(ids(await releaseObjects(ns)), ids(expected));
    await eventually('one operator pod', async () => ((await podsOf(ns)).length === 1 ? true : undefined));
  });

  it('uninstall removes every object of the release but keeps the CRD', async () => {
    await helmIn(['uninstall', RELEASE, '-n', ns, '--wait', '--timeout=120s']);
    await eventually('no objects or pods of the release', async () => {
      const left = [...(await releaseObjects(ns)), ...(await podsOf(ns))];
      return left.length === 0 ? true : undefined;
    });
    const secrets = await getJson<{ items: unknown[] }>([
      '-n',
      ns,
      'get',
      'secrets',
      '-l',
      `owner=helm,name=${RELEASE}`,
    ]);
    assert.deepEqual(secrets.items, [], 'no release history left');
    const crd = await getJson<{ metadata: { name: string } }>(['get', 'crd', CRD]);
    assert.equal(crd.metadata.name, CRD, 'Helm keeps the CRDs it installed from crds/');
    const status = await helm(['status', RELEASE, '-n', ns], c.info.kubeconfig);
    assert.notEqual(status.code, 0);
    assert.match(status.stderr, /release: not found/);
  });
});

describe('helm install with bad values', () => {
  it('is refused by the schema, naming the value, and creates nothing', async () => {
    const ns = await fresh('helm-bad');
    for (const [set, message] of [
      ['replicaCount=-1', "at '/replicaCount': minimum: got -1, want 0"],
      ['replicas=3', "additional properties 'replicas' not allowed"],
    ] as const) {
      const r = await helm(['install', RELEASE, CHART, '-n', ns, '--set', set], c.info.kubeconfig);
      assert.notEqual(r.code, 0, `helm install --set ${set} should fail`);
      assert.ok(r.stderr.includes(message), `"${message}" in:\n${r.stderr}`);
    }
    assert.deepEqual(await releaseObjects(ns), []);
    const list = await helmIn(['list', '-n', ns, '--all', '-q']);
    assert.equal(list.trim(), '', 'no release recorded');
  });
});
