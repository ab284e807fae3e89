import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseTuningFile, TUNING_FILE_KEY } from '../../../crds/tuning.ts';
import { desiredChildren, desiredConfigMap, desiredDeployment, modelPlacement, podSpec } from './desired.ts';
import { desiredReplicas, endpointOf } from './reconciler.ts';
import { sampleAgd } from './sample.test-support.ts';

const OPTS = { serverImage: 'example.test/autoglm-server:1', replicas: 2, podMonitor: false };

type Container = {
  name: string;
  args: string[];
  env: { name: string }[];
  resources: Record<string, Record<string, string>>;
};
const server = (spec: Record<string, unknown>) => (spec['containers'] as Container[])[0];

describe('desired children', () => {
  it('are a pure function of the object: two renders are identical', () => {
    const agd = sampleAgd();
    assert.deepEqual(desiredChildren(agd, OPTS), desiredChildren(agd, OPTS));
    assert.deepEqual(
      desiredChildren(agd, OPTS).map((c) => c.kind),
      ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget'],
    );
    assert.ok(desiredChildren(agd, { ...OPTS, podMonitor: true }).some((c) => c.kind === 'PodMonitor'));
  });

  it('every child is owned by the object and labelled as managed', () => {
    for (const c of desiredChildren(sampleAgd(), OPTS)) {
      assert.equal(c.metadata.namespace, 'team-a');
      const [ref] = c.metadata.ownerReferences ?? [];
      assert.equal(ref?.uid, '1111-2222');
      assert.equal(ref.controller, true);
      assert.equal(c.metadata.labels?.['app.kubernetes.io/managed-by'], 'autoglm-operator');
    }
  });

  it("builds the precision the tuning loop rolled out (status), else the spec's", () => {
    const args = (agd: ReturnType<typeof sampleAgd>) => {
      const dep = desiredDeployment(agd, OPTS) as unknown as {
        spec: { template: { spec: Record<string, unknown> } };
      };
      return server(dep.spec.template.spec)?.args ?? [];
    };
    const agd = sampleAgd({ model: { source: 'hf:org/repo', precision: 'fp16' } });
    assert.ok(args(agd).includes('--precision=fp16'));
    assert.equal(args(agd).includes('--head-gating'), false);
    agd.status = { tuning: { generation: 2, defaults: {}, precision: 'int8' } };
    assert.ok(args(agd).includes('--precision=int8'));
    assert.equal(agd.spec.model.precision, 'fp16');
    const gated = sampleAgd({ model: { source: 'hf:org/repo', headGating: true } });
    assert.ok(args(gated).includes('--head-gating'));
  });

  it('runs the server with the model, runtime flags, NODE_NAME and the tuning file, as non-root', () => {
    const agd = sampleAgd({ runtime: { device: 'cpu', threads: 4 }, kvCache: { capacityTokens: 4096 } });
    const dep = desiredDeployment(agd, OPTS) as unknown as {
      spec: { replicas: number; template: { spec: Record<string, unknown> } };
    };
    assert.equal(dep.spec.replicas, 2);
    const c = server(dep.spec.template.spec);
    assert.ok(c !== undefined);
    assert.ok(c.args.includes('--device=cpu'));
    assert.ok(c.args.includes('--threads=4'));
    assert.ok(c.args.includes('--kv-cache-tokens=4096'));
    assert.ok(c.args.includes('--served-model-name=chat'));
    assert.ok(c.args.includes('--tuning-file=/etc/autoglm/tuning/tuning.yaml'));
    assert.ok(c.env.some((e) => e.name === 'NODE_NAME'));
    const sc = (c as unknown as { securityContext: Record<string, unknown> }).securityContext;
    assert.equal(sc['readOnlyRootFilesystem'], true);
    assert.equal(sc['allowPrivilegeEscalation'], false);
    assert.equal(
      (dep.spec.template.spec['securityContext'] as Record<string, unknown>)['runAsNonRoot'],
      true,
    );
  });

  it('requests and limits GPUs, selects the product and tolerates the GPU taint', () => {
    const spec = podSpec(
      sampleAgd({
        runtime: { device: 'cuda' },
        resources: { gpu: { count: 2, product: 'NVIDIA-H100-80GB-HBM3' } },
      }),
      'img',
    );
    const c = server(spec);
    assert.equal(c?.resources['limits']?.['nvidia.com/gpu'], '2');
    assert.deepEqual(spec['nodeSelector'], { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' });
    assert.deepEqual(spec['tolerations'], [
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });

  it('mounts a pvc: source read-only and passes its path', () => {
    const p = modelPlacement(sampleAgd({ model: { source: 'pvc:models/smollm2/model.gguf' } }).spec);
    assert.equal(p.model, '/models/models/smollm2/model.gguf');
    assert.deepEqual(p.volumes, [
      { name: 'model', persistentVolumeClaim: { claimName: 'models', readOnly: true } },
    ]);
  });

  it('applies the pod template override over the generated pod', () => {
    const spec = podSpec(
      sampleAgd({
        podTemplate: {
          spec: { priorityClassName: 'inference', containers: [{ name: 'server', image: 'mine:2' }] },
        },
      }),
      'img',
    );
    assert.equal(spec['priorityClassName'], 'inference');
    assert.equal((spec['containers'] as { image: string }[])[0]?.image, 'mine:2');
  });

  it('writes a tuning file the servers accept: spec defaults, overlaid with the loop per node', () => {
    const agd = sampleAgd({
      batching: { maxBatchSize: 8 },
      transport: { compression: { algorithm: 'gzip', level: 4 } },
    });
    agd.status = {
      tuning: {
        generation: 5,
        defaults: {},
        nodes: { 'gpu-node-b': { compression: { algorithm: 'br', level: 5 } } },
      },
    };
    const cm = desiredConfigMap(agd) as unknown as { data: Record<string, string> };
    const text = cm.data[TUNING_FILE_KEY] ?? '';
    const parsed = parseTuningFile(text);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    assert.equal(parsed.value.generation, 5);
    assert.equal(parsed.value.defaults?.maxBatchSize, 8);
    assert.deepEqual(parsed.value.defaults.compression, { algorithm: 'gzip', level: 4 });
    assert.deepEqual((parse(text) as { nodes: unknown }).nodes, {
      'gpu-node-b': { compression: { algorithm: 'br', level: 5 } },
    });
  });

  it('asks the servers to measure the compression settings the loop may choose, only while it tunes', () => {
    const tuning = (mode: string) => ({
      mode,
      prometheusURL: 'http://prometheus:9090',
      bounds: { compression: { algorithms: ['none', 'gzip', 'br'], minLevel: 2, maxLevel: 3 } },
    });
    const probeOf = (mode: string) => {
      const cm = desiredConfigMap(sampleAgd({ tuning: tuning(mode) })) as unknown as {
        data: Record<string, string>;
      };
      const parsed = parseTuningFile(cm.data[TUNING_FILE_KEY] ?? '');
      assert.ok(parsed.ok, JSON.stringify(parsed));
      return parsed.value.defaults?.compressionProbe;
    };
    assert.deepEqual(probeOf('Auto')?.settings, [
      { algorithm: 'gzip', level: 2 },
      { algorithm: 'gzip', level: 3 },
      { algorithm: 'br', level: 2 },
      { algorithm: 'br', level: 3 },
    ]);
    assert.ok((probeOf('Recommend')?.cpuShare ?? 0) > 0);
    assert.equal(probeOf('Off'), undefined);
  });

  it('runs spec.replicas, or the autoscaler within min and max', () => {
    assert.equal(desiredReplicas(sampleAgd({ replicas: 3 })), 3);
    const auto = sampleAgd({ replicas: 3, autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 5 } });
    assert.equal(desiredReplicas(auto), 2);
    auto.status = { tuning: { generation: 1, defaults: {}, replicas: 9 } };
    assert.equal(desiredReplicas(auto), 5);
  });

  it('names the in-cluster endpoint', () => {
    assert.equal(endpointOf(sampleAgd()), 'http://chat.team-a.svc/v1');
    assert.equal(endpointOf(sampleAgd({ service: { port: 8080 } })), 'http://chat.team-a.svc:8080/v1');
  });
});
