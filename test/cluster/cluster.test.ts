/**
 * The local control plane behaves like a real cluster: fake GPU nodes, Deployments that become
 * Ready and are garbage-collected, RBAC on service-account tokens, and an idempotent clusterUp().
 * The cluster is left running for the other suites; `node test/cluster/down.ts` stops it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  clusterUp,
  FAKE_NODES,
  GPU_PRODUCT,
  GPUS_PER_NODE,
  kubectl,
  kubectlPath,
  type ClusterInfo,
} from './cluster.ts';

interface Node {
  metadata: { name: string; labels: Record<string, string> };
  status: {
    capacity: Record<string, string>;
    allocatable: Record<string, string>;
    conditions: { type: string; status: string }[];
  };
}
interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase: string; conditions?: { type: string; status: string }[] };
}

const NS = `cluster-test-${String(process.pid)}`;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

describe('local control plane (test/cluster)', () => {
  let info: ClusterInfo;
  const k = (args: string[], input?: string): Promise<string> => kubectl(info.kubeconfig, args, input);
  const json = async <T>(args: string[]): Promise<T> => JSON.parse(await k([...args, '-o', 'json'])) as T;

  before(
    async () => {
      info = await clusterUp();
      await k(['create', 'namespace', NS]);
    },
    { timeout: 60 * 60_000 },
  );
  after(async () => {
    await k(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
  });

  it('uses the kubectl it built', () => {
    assert.ok(existsSync(kubectlPath()), kubectlPath());
  });

  it('has three Ready fake GPU nodes, one per zone', async () => {
    const { items } = await json<{ items: Node[] }>(['get', 'nodes', '-l', 'type=kwok']);
    const names = items.map((n) => n.metadata.name).sort();
    assert.deepEqual(
      names,
      FAKE_NODES.map((n) => n.name),
    );
    for (const node of items) {
      const want = FAKE_NODES.find((n) => n.name === node.metadata.name);
      assert.equal(node.status.capacity['nvidia.com/gpu'], String(GPUS_PER_NODE));
      assert.equal(node.status.allocatable['nvidia.com/gpu'], String(GPUS_PER_NODE));
      assert.equal(node.status.allocatable['cpu'], '64');
      assert.equal(node.metadata.labels['nvidia.com/gpu.product'], GPU_PRODUCT);
      assert.equal(node.metadata.labels['topology.kubernetes.io/zone'], want?.zone);
      const ready = node.status.conditions.find((c) => c.type === 'Ready');
      assert.equal(ready?.status, 'True', `${node.metadata.name} Ready`);
    }
  });

  it('runs a Deployment to Ready, then garbage-collects its ReplicaSet and Pods', async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: NS },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            containers: [
              {
                name: 'main',
                image: 'registry.invalid/x:1',
                resources: { limits: { 'nvidia.com/gpu': '1' } },
              },
            ],
          },
        },
      },
    };
    await k(['apply', '-f', '-'], JSON.stringify(deployment));
    await until('2 ready replicas', async () => {
      const d = await json<{ status: { readyReplicas?: number } }>(['get', 'deployment', 'web', '-n', NS]);
      return d.status.readyReplicas === 2 ? true : undefined;
    });
    const pods = await json<{ items: Pod[] }>(['get', 'pods', '-n', NS, '-l', 'app=web']);
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) {
      assert.equal(pod.status.phase, 'Running');
      assert.ok(
        FAKE_NODES.some((n) => n.name === pod.spec.nodeName),
        `${pod.metadata.name} on a fake node`,
      );
      assert.equal(pod.status.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    }

    await k(['delete', 'deployment', 'web', '-n', NS, '--wait=true']);
    await until('the ReplicaSet and Pods to be garbage-collected', async () => {
      const left = await k(['get', 'replicasets,pods', '-n', NS, '-l', 'app=web', '-o', 'name']);
      return left.trim() === '' ? true : undefined;
    });
  });

  it('enforces RBAC: a service-account token with no bindings may not list pods', async () => {
    await k(['create', 'serviceaccount', 'nobody', '-n', NS]);
    const token = (await k(['create', 'token', 'nobody', '-n', NS, '--duration=10m'])).trim();
    assert.match(token, /^ey/);
    const tmp = await mkdtemp(join(tmpdir(), 'autoglm-cluster-'));
    try {
      // A kubeconfig with the token alone: the admin's client certificate would authenticate first.
      const kubeconfig = join(tmp, 'kubeconfig');
      await writeFile(kubeconfig, '');
      const asNobody = [
        `--server=${info.server}`,
        `--certificate-authority=${join(info.dir, 'pki', 'ca.crt')}`,
        `--token=${token}`,
      ];
      await assert.rejects(
        kubectl(kubeconfig, [...asNobody, 'get', 'pods', '-n', NS]),
        /forbidden.*system:serviceaccount:cluster-test-\d+:nobody.*cannot list resource "pods"/is,
      );
      const whoami = await kubectl(kubeconfig, [
        ...asNobody,
        'auth',
        'whoami',
        '-o',
        'jsonpath={.status.userInfo.username}',
      ]);
      assert.equal(whoami, `system:serviceaccount:${NS}:nobody`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('clusterUp() on a running cluster returns it as it is', async () => {
    const again = await clusterUp();
    assert.deepEqual(again, info);
    // The namespace made before is still there: etcd was not wiped, nothing was restarted.
    const ns = await json<{ metadata: { name: string } }>(['get', 'namespace', NS]);
    assert.equal(ns.metadata.name, NS);
  });
});
