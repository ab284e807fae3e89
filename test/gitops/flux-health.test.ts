/**
 * The Flux health check expressions (gitops/flux/kustomization.yaml, healthCheckExprs) on the
 * same recorded samples as the Argo CD health check (gitops/argocd/testdata): Flux must reach the
 * same verdict, Healthy being Current, Degraded Failed and Progressing InProgress. The one
 * difference is an object with no status yet: the expressions cannot evaluate `status`, which
 * Flux reports as Unknown and keeps polling. The expressions run in cel-go configured as Flux
 * configures it (test/gitops/fluxcel, built with Go).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { API_VERSION, KIND } from '../../crds/deployment.ts';
import { ROOT, toolsBin } from '../support/policy-tools.ts';

interface Sample {
  expected: { status: string };
  object: Record<string, unknown>;
}
interface HealthCheckExprs {
  apiVersion: string;
  kind: string;
  inProgress?: string;
  failed?: string;
  current: string;
}

const FLUX_VERDICT: Record<string, string> = {
  Healthy: 'Current',
  Degraded: 'Failed',
  Progressing: 'InProgress',
};
const GO = process.env['GO'] ?? '/usr/local/go/bin/go';
const fluxcel = join(toolsBin(), 'fluxcel');

describe('Flux health check expressions (gitops/flux/kustomization.yaml)', { timeout: 15 * 60_000 }, () => {
  before(() => {
    const build = spawnSync(GO, ['build', '-o', fluxcel, '.'], {
      cwd: join(ROOT, 'test/gitops/fluxcel'),
      stdio: 'inherit',
      env: { ...process.env, GOFLAGS: '-mod=readonly' },
    });
    assert.equal(build.status, 0, 'go build test/gitops/fluxcel');
  });

  it('agree with the Argo CD health check on every sample', () => {
    const kustomization = parse(readFileSync(join(ROOT, 'gitops/flux/kustomization.yaml'), 'utf8')) as {
      spec: { healthCheckExprs: HealthCheckExprs[] };
    };
    const exprs = kustomization.spec.healthCheckExprs.find(
      (e) => e.apiVersion === API_VERSION && e.kind === KIND,
    );
    assert.ok(exprs !== undefined, `healthCheckExprs for ${API_VERSION} ${KIND}`);

    const dir = join(ROOT, 'gitops/argocd/testdata');
    const samples = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => ({ name: f, ...(parse(readFileSync(join(dir, f), 'utf8')) as Sample) }));
    const res = spawnSync(fluxcel, [], {
      input: JSON.stringify({ exprs, objects: samples.map((s) => s.object) }),
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stderr);
    const verdicts = JSON.parse(res.stdout) as string[];

    const got = Object.fromEntries(samples.map((s, i) => [s.name, verdicts[i]]));
    const want = Object.fromEntries(
      samples.map((s) => [
        s.name,
        s.object['status'] === undefined ? 'Unknown' : (FLUX_VERDICT[s.expected.status] ?? s.expected.status),
      ]),
    );
    assert.deepEqual(got, want);
  });
});
