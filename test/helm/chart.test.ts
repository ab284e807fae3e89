/**
 * The chart without a cluster: `helm lint --strict`, what `helm template` renders for given
 * values, and the values schema refusing bad values. test/helm/helm.test.ts installs it.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  byKind,
  CHART,
  chartCopy,
  ensureHelm,
  helm,
  helmOk,
  ids,
  one,
  render,
  ROOT,
  templateArgs,
  type K8sObject,
} from './helm.ts';

const NS = 'autoglm-system';

/** The operator's permissions, exactly: what it reads, applies (create + patch) and records. */
const OPERATOR_RULES = [
  { apiGroups: ['serving.autoglm.io'], resources: ['autoglmdeployments'], verbs: ['get', 'list', 'watch'] },
  {
    apiGroups: ['serving.autoglm.io'],
    resources: ['autoglmdeployments/status'],
    verbs: ['get', 'patch', 'update'],
  },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  {
    apiGroups: [''],
    resources: ['services', 'configmaps'],
    verbs: ['get', 'list', 'watch', 'create', 'patch'],
  },
  {
    apiGroups: ['policy'],
    resources: ['poddisruptionbudgets'],
    verbs: ['get', 'list', 'watch', 'create', 'patch'],
  },
  {
    apiGroups: ['monitoring.coreos.com'],
    resources: ['podmonitors'],
    verbs: ['get', 'list', 'watch', 'create', 'patch'],
  },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['secrets', 'persistentvolumeclaims'], verbs: ['get'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch', 'get'] },
];

interface Container {
  name: string;
  image: string;
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
}
interface Deployment {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface Binding {
  metadata: { name: string; namespace?: string };
  roleRef: { kind: string; name: string };
  subjects: { kind: string; name: string; namespace: string }[];
}

const deployment = (objs: K8sObject[]) => one(objs, 'Deployment') as unknown as Deployment;
const binding = (o: K8sObject) => o as unknown as Binding;
const container = (objs: K8sObject[]): Container => {
  const c = deployment(objs).spec.template.spec.containers[0];
  assert.ok(c, 'the Deployment has a container');
  return c;
};

async function dashboardFiles(chart = CHART): Promise<string[]> {
  const files = await readdir(join(chart, 'dashboards')).catch(() => []);
  return files.filter((f) => f.endsWith('.json')).sort();
}

describe('the autoglm chart (helm template)', () => {
  before(async () => {
    await ensureHelm();
  });

  it('passes helm lint --strict, with defaults and with every option on', async () => {
    await helmOk(['lint', '--strict', CHART]);
    const all = [
      'serviceMonitor.enabled=true',
      'watchNamespace=team-a',
      'dashboards.namespace=monitoring',
      'dashboards.annotations.grafana_folder=AutoGLM',
      'nodeSelector.kubernetes\\.io/os=linux',
      'tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule',
      'imagePullSecrets[0].name=regcred',
      'serviceAccount.annotations.owner=platform',
      'podAnnotations.a=b',
      'priorityClassName=system-cluster-critical',
    ];
    await helmOk(['lint', '--strict', CHART, ...all.flatMap((s) => ['--set', s])]);
  });

  it('renders the operator, its RBAC, Service and one ConfigMap per dashboard by default', async () => {
    const objs = await render();
    const dashboards = (await dashboardFiles()).map(
      (f) => `${NS}/ConfigMap/autoglm-dashboard-${f.replace(/\.json$/, '').replace(/^autoglm-/, '')}`,
    );
    assert.deepEqual(
      ids(objs),
      [
        'ClusterRole/autoglm-autoglm-system',
        'ClusterRoleBinding/autoglm-autoglm-system',
        `${NS}/Deployment/autoglm`,
        `${NS}/Role/autoglm-leader-election`,
        `${NS}/RoleBinding/autoglm-leader-election`,
        `${NS}/Service/autoglm-metrics`,
        `${NS}/ServiceAccount/autoglm`,
        ...dashboards,
      ].sort(),
    );
    for (const o of objs) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], 'autoglm', `${o.kind} is labelled`);
      assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
    }
  });

  it('runs the operator as the spec says: image, args, downward API, probes, 2 replicas', async () => {
    const objs = await render();
    const d = deployment(objs);
    assert.equal(d.spec.replicas, 2);
    const c = container(objs);
    assert.equal(c.image, 'ghcr.io/autoglm/autoglm-operator:0.1.0');
    assert.deepEqual(c.args, [
      'operator',
      '--leader-elect=true',
      '--leader-election-id=autoglm-operator',
      '--health-addr=0.0.0.0:8081',
      '--server-image=ghcr.io/autoglm/autoglm-server:0.1.0',
      '--workers=4',
    ]);
    assert.deepEqual(c.env, [
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ]);
    assert.deepEqual(
      c.ports.map((p) => [p.name, p.containerPort]),
      [['http-metrics', 8081]],
    );
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'http-metrics' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'http-metrics' });
    assert.deepEqual(c.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } });
    assert.equal(d.spec.template.spec.serviceAccountName, 'autoglm');
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels))
      assert.equal(d.spec.template.metadata.labels[k], v, `pod label ${k}`);
  });

  it('runs it non-root, read-only, without privileges or capabilities', async () => {
    const objs = await render();
    const pod = deployment(objs).spec.template.spec;
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const sc = container(objs).securityContext;
    assert.equal(sc['runAsNonRoot'], true);
    assert.equal(sc['runAsUser'], 65532);
    assert.equal(sc['readOnlyRootFilesystem'], true);
    assert.equal(sc['allowPrivilegeEscalation'], false);
    assert.equal(sc['privileged'], false);
    assert.deepEqual(sc['capabilities'], { drop: ['ALL'] });
    assert.deepEqual(sc['seccompProfile'], { type: 'RuntimeDefault' });
  });

  it('takes images, replicas, resources and placement from values', async () => {
    const objs = await render({
      set: [
        'image.repository=registry.example/ops/operator,image.tag=1.2.3',
        'serverImage.repository=registry.example/ops/server,serverImage.tag=4.5.6',
        'replicaCount=3,workers=8',
        'resources.limits.cpu=2,resources.limits.memory=1Gi',
        'nodeSelector.pool=system',
        'tolerations[0].key=dedicated,tolerations[0].operator=Exists',
      ],
    });
    const d = deployment(objs);
    const c = container(objs);
    assert.equal(c.image, 'registry.example/ops/operator:1.2.3');
    assert.ok(c.args.includes('--server-image=registry.example/ops/server:4.5.6'), c.args.join(' '));
    assert.ok(c.args.includes('--workers=8'));
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(c.resources.limits, { cpu: 2, memory: '1Gi' });
    assert.deepEqual(d.spec.template.spec.nodeSelector, { pool: 'system' });
    assert.deepEqual(d.spec.template.spec.tolerations, [{ key: 'dedicated', operator: 'Exists' }]);
  });

  it('grants exactly what the operator uses, cluster-wide, and leases in its own namespace', async () => {
    const objs = await render();
    assert.deepEqual(one(objs, 'ClusterRole')['rules'], OPERATOR_RULES);
    const role = one(objs, 'Role');
    assert.equal(role.metadata.namespace, NS);
    assert.deepEqual(role['rules'], [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]);
    const crb = binding(one(objs, 'ClusterRoleBinding'));
    assert.deepEqual(crb.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'autoglm-autoglm-system',
    });
    const sa = { kind: 'ServiceAccount', name: 'autoglm', namespace: NS };
    assert.deepEqual(crb.subjects, [sa]);
    assert.deepEqual(binding(one(objs, 'RoleBinding')).subjects, [sa]);
    assert.ok(!container(objs).args.some((a) => a.startsWith('--namespace')));
  });

  it('with watchNamespace, watches and is granted that namespace only', async () => {
    const objs = await render({ set: ['watchNamespace=team-a'] });
    assert.deepEqual(byKind(objs, 'ClusterRoleBinding'), []);
    const bindings = byKind(objs, 'RoleBinding').map((o) => binding(o));
    const watch = bindings.find((b) => b.roleRef.kind === 'ClusterRole');
    assert.equal(watch?.metadata.namespace, 'team-a');
    assert.ok(container(objs).args.includes('--namespace=team-a'));
  });

  it('exposes /metrics through a Service, and a ServiceMonitor when asked', async () => {
    const objs = await render();
    const svc = one(objs, 'Service')['spec'] as { selector: Record<string, string>; ports: unknown[] };
    assert.deepEqual(svc.selector, deployment(objs).spec.selector.matchLabels);
    assert.deepEqual(svc.ports, [
      { name: 'http-metrics', port: 8081, targetPort: 'http-metrics', protocol: 'TCP' },
    ]);
    assert.deepEqual(byKind(objs, 'ServiceMonitor'), []);

    const withSm = await render({
      set: ['serviceMonitor.enabled=true', 'serviceMonitor.labels.release=prom'],
    });
    const sm = one(withSm, 'ServiceMonitor');
    assert.equal(sm.metadata.labels?.['release'], 'prom');
    const spec = sm['spec'] as {
      selector: { matchLabels: unknown };
      endpoints: { port: string; path: string }[];
    };
    assert.deepEqual(spec.selector.matchLabels, svc.selector);
    assert.deepEqual(
      spec.endpoints.map((e) => [e.port, e.path]),
      [['http-metrics', '/metrics']],
    );
  });

  it('makes one labelled ConfigMap per dashboard file, and none without files', async () => {
    const chart = await chartCopy();
    try {
      await rm(join(chart, 'dashboards'), { recursive: true, force: true });
      assert.deepEqual(byKind(await render({ chart }), 'ConfigMap'), []);

      await mkdir(join(chart, 'dashboards'));
      const board = `${JSON.stringify({ title: 'Test board', panels: [{ id: 1, type: 'timeseries' }] }, null, 2)}\n`;
      await writeFile(join(chart, 'dashboards', 'Test_Board.json'), board);
      await writeFile(join(chart, 'dashboards', 'autoglm-second.json'), '{"title":"Second"}\n');
      const objs = await render({ chart });
      assert.deepEqual(ids(byKind(objs, 'ConfigMap')), [
        `${NS}/ConfigMap/autoglm-dashboard-second`,
        `${NS}/ConfigMap/autoglm-dashboard-test-board`,
      ]);
      const cm = byKind(objs, 'ConfigMap').find((o) => o.metadata.name.endsWith('test-board'));
      assert.ok(cm);
      assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
      assert.deepEqual(cm['data'], { 'Test_Board.json': board.trimEnd() });

      const custom = await render({
        chart,
        set: [
          'dashboards.label=grafana.com/dashboard,dashboards.labelValue=autoglm,dashboards.namespace=monitoring',
        ],
      });
      for (const o of byKind(custom, 'ConfigMap')) {
        assert.equal(o.metadata.labels?.['grafana.com/dashboard'], 'autoglm');
        assert.equal(o.metadata.namespace, 'monitoring');
      }
      assert.deepEqual(byKind(await render({ chart, set: ['dashboards.enabled=false'] }), 'ConfigMap'), []);
    } finally {
      await rm(join(chart, '..'), { recursive: true, force: true });
    }
  });

  it('ships the generated CRD unchanged', async () => {
    assert.equal(
      await readFile(join(CHART, 'crds/autoglmdeployment.yaml'), 'utf8'),
      await readFile(join(ROOT, 'crds/autoglmdeployment.yaml'), 'utf8'),
    );
  });
});

describe('the values schema', () => {
  const refused: [string, string[]][] = [
    ['replicaCount=-1', ["'/replicaCount'", 'minimum: got -1, want 0']],
    ['replicaCount=two', ["'/replicaCount'", 'want integer']],
    ['replicas=3', ["additional properties 'replicas' not allowed"]],
    ['image.tagg=1.0', ["'/image'", "additional properties 'tagg' not allowed"]],
    ['image.pullPolicy=Sometimes', ["'/image/pullPolicy'"]],
    ['workers=0', ["'/workers'", 'minimum']],
    ['watchNamespace=Team_A', ["'/watchNamespace'"]],
    ['resources.limits.memory=lots', ["'/resources/limits/memory'"]],
    ['resources.limit.memory=1Gi', ["'/resources'", "'limit' not allowed"]],
    ['serviceMonitor.interval=soon', ["'/serviceMonitor/interval'"]],
    ['dashboards.labell=x', ["'/dashboards'", "'labell' not allowed"]],
    ['tolerations[0].efect=NoSchedule', ["'/tolerations/0'", "'efect' not allowed"]],
  ];
  for (const [set, messages] of refused) {
    it(`refuses --set ${set}, naming the value`, async () => {
      const r = await helm(templateArgs({ set: [set] }));
      assert.notEqual(r.code, 0, `helm template --set ${set} should fail`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      for (const m of messages) assert.ok(r.stderr.includes(m), `"${m}" in:\n${r.stderr}`);
    });
  }
});
