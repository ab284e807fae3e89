/**
 * examples/ against the real API: every AutoGLMDeployment there (and every object the policy
 * suites use, policies/*\/samples) passes a server-side dry run on the local control plane, with the CRD
 * from crds/ applied; full.yaml sets every spec field the CRD has; the TypeScript client
 * type-checks and lints; the GitOps manifests point at paths that exist.
 * The control plane is shared (test/cluster): this file starts it if needed, works in a fresh
 * namespace, and leaves the cluster running.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, globSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { API_VERSION, KIND } from '../../crds/deployment.ts';
import { clusterWithCrd, freshNamespace, type Cluster } from '../support/operator.ts';
import { ROOT } from '../support/policy-tools.ts';

type Json = Record<string, unknown>;
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

const CLIENT = 'examples/clients/openai-client.ts';

/** The Kubernetes objects in the files (only AutoGLMDeployments, unless `anyKind`), with their file. */
function objectsIn(patterns: string[], anyKind = false): { file: string; object: Json }[] {
  return patterns
    .flatMap((p) => globSync(p, { cwd: ROOT }))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(ROOT, file), 'utf8'))
        .map((d) => d.toJS() as Json | null)
        .filter((o): o is Json => o !== null && (anyKind || o['kind'] === KIND))
        .map((object) => ({ file, object })),
    );
}

/** The paths of every field under the CRD's spec, down to fields it does not model further. */
function specFields(schema: Schema, prefix: string): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([name, child]) => {
    const path = `${prefix}.${name}`;
    const leaf = child.properties === undefined || child['x-kubernetes-preserve-unknown-fields'] === true;
    return leaf ? [path] : [path, ...specFields(child, path)];
  });
}

function has(obj: unknown, path: string): boolean {
  let cur: unknown = obj;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !(key in cur)) return false;
    cur = (cur as Json)[key];
  }
  return true;
}

function crdSpecSchema(): Schema {
  const crd = parse(readFileSync(join(ROOT, 'crds/autoglmdeployment.yaml'), 'utf8')) as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  };
  const version = crd.spec.versions.find((v) => API_VERSION.endsWith(`/${v.name}`));
  const spec = version?.schema.openAPIV3Schema.properties?.['spec'];
  assert.ok(spec !== undefined, 'the CRD has a spec schema');
  return spec;
}

describe('examples/', () => {
  it('full.yaml sets every spec field of the CRD', () => {
    const [full] = objectsIn(['examples/full.yaml']);
    assert.ok(full !== undefined);
    const missing = specFields(crdSpecSchema(), 'spec').filter((p) => !has(full.object, p));
    assert.deepEqual(missing, [], 'fields of crds/autoglmdeployment.yaml that examples/full.yaml leaves out');
  });

  it('the TypeScript client is in the tsconfig project, type-checks and lints', async () => {
    const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);
    const shown = spawnSync(bin('tsc'), ['--showConfig', '-p', 'tsconfig.json'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(shown.status, 0, shown.stderr);
    assert.ok(
      (JSON.parse(shown.stdout) as { files: string[] }).files.some((f) => f.endsWith(CLIENT)),
      `tsconfig.json's include covers ${CLIENT}`,
    );
    // The project's compiler options, on the client alone.
    const dir = await mkdtemp(join(tmpdir(), 'autoglm-client-tsc-'));
    try {
      const config = {
        extends: join(ROOT, 'tsconfig.json'),
        compilerOptions: { typeRoots: [join(ROOT, 'node_modules/@types')] },
        include: [],
        files: [join(ROOT, CLIENT)],
      };
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(config));
      const tsc = spawnSync(bin('tsc'), ['--noEmit', '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
      assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const lint = spawnSync(bin('eslint'), ['--max-warnings', '0', CLIENT], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  });

  it('the Python client compiles', () => {
    const res = spawnSync('python3', ['-m', 'py_compile', 'examples/clients/openai_client.py'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, PYTHONPYCACHEPREFIX: tmpdir() },
    });
    assert.equal(res.status, 0, res.stderr);
  });

  it('the GitOps manifests deploy examples/ through its kustomization.yaml', () => {
    const flux = parse(readFileSync(join(ROOT, 'gitops/flux/kustomization.yaml'), 'utf8')) as {
      spec: { path: string; wait: boolean; healthCheckExprs: { apiVersion: string; kind: string }[] };
    };
    assert.equal(flux.spec.wait, true);
    assert.ok(flux.spec.healthCheckExprs.some((e) => e.apiVersion === API_VERSION && e.kind === KIND));
    const argo = parse(readFileSync(join(ROOT, 'examples/argocd-application.yaml'), 'utf8')) as {
      spec: { source: { path: string } };
    };
    for (const path of [flux.spec.path, argo.spec.source.path]) {
      const kustomization = parse(readFileSync(join(ROOT, path, 'kustomization.yaml'), 'utf8')) as {
        resources: string[];
      };
      for (const r of kustomization.resources) assert.ok(existsSync(join(ROOT, path, r)), `${path}/${r}`);
    }
  });
});

describe('examples/ on the API server (server-side dry run)', { timeout: 20 * 60_000 }, () => {
  let cluster: Cluster;
  let ns = '';
  // Every AutoGLMDeployment of examples/, and every object the policy suites use.
  const deployments = [
    ...objectsIn(['examples/**/*.yaml']),
    ...objectsIn(['policies/*/samples/*.yaml'], true),
  ];

  before(async () => {
    cluster = await clusterWithCrd();
    ns = await freshNamespace(cluster, 'gitops-examples');
  });
  after(async () => {
    if (ns !== '') await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => '');
  });

  const dryRun = (object: Json) =>
    cluster.kubectl(
      ['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-o', 'json', '-f', '-'],
      JSON.stringify({ ...object, metadata: { ...(object['metadata'] as Json), namespace: ns } }),
    );

  it('finds the examples', () => {
    const files = new Set(deployments.map((d) => d.file));
    for (const f of ['examples/autoglm.yaml', 'examples/full.yaml']) assert.ok(files.has(f), f);
  });

  for (const { file, object } of deployments)
    it(`${file} (${String(object['kind'])} ${String((object['metadata'] as Json)['name'])}) is accepted`, async () => {
      const stored = JSON.parse(await dryRun(object)) as {
        kind: string;
        spec: { runtime?: { device?: string } };
      };
      if (stored.kind === KIND)
        assert.ok(stored.spec.runtime?.device !== undefined, 'the API server defaulted it');
    });

  it('refuses what the CRD does not allow (the dry run validates)', async () => {
    const [full] = deployments.filter((d) => d.file === 'examples/full.yaml');
    assert.ok(full !== undefined);
    const spec = full.object['spec'] as Json;
    await assert.rejects(dryRun({ ...full.object, spec: { ...spec, replicaz: 2 } }), /unknown field/);
    const cpuOnly = { ...spec, resources: { ...(spec['resources'] as Json), gpu: { count: 0 } } };
    await assert.rejects(
      dryRun({ ...full.object, spec: cpuOnly }),
      /runtime.device cuda needs resources.gpu.count/,
    );
  });
});
