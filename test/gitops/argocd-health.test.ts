/**
 * The Argo CD health check (gitops/argocd/health.lua) on recorded AutoGLMDeployment samples
 * (gitops/argocd/testdata/*.yaml, each `{expected: {status, message}, object}`): each sample's
 * object becomes the global `obj`, as Argo CD provides it, and the script's `hs` is compared with
 * what the sample expects. It runs under lua5.1 (the dialect of gopher-lua, which Argo CD embeds)
 * and lua5.4, installed by scripts/setup-lua.sh. Also: argocd-cm-patch.yaml embeds health.lua.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ARGOCD_CM, HEALTH_KEY } from '../../gitops/argocd/render.ts';
import { embeddedText, staleEmbeddings } from '../../scripts/embed-yaml.ts';
import { ROOT } from '../support/policy-tools.ts';

const TESTDATA = join(ROOT, 'gitops/argocd/testdata');
const SCRIPT = join(ROOT, 'gitops/argocd/health.lua');
const INTERPRETERS = ['lua5.1', 'lua5.4'] as const;
const STATUSES = new Set(['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown']);

interface Sample {
  expected: { status: string; message: string };
  object: unknown;
}

/** A Lua string literal: printable ASCII as is, every other byte as a decimal escape (valid in 5.1 and 5.4). */
function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return out + '"';
}

/** JSON as Argo CD hands it to Lua: objects and arrays become tables (arrays from 1), null is nil. */
function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a JSON number: ${String(value)}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  if (typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `[${luaString(k)}] = ${luaLiteral(v)}`)
      .join(', ')}}`;
  throw new Error(`cannot express ${typeof value} in Lua`);
}

/** Runs health.lua with `obj` set, as Argo CD does, and returns its hs. */
function health(lua: string, object: unknown): { status: string; message: string } {
  const harness = [
    `obj = ${luaLiteral(object)}`,
    `local hs = dofile(${luaString(SCRIPT)})`,
    'assert(type(hs) == "table", "the script must return a table")',
    'io.write(tostring(hs.status), "\\n", tostring(hs.message))',
  ].join('\n');
  const res = spawnSync(lua, ['-'], { input: harness, encoding: 'utf8' });
  if (res.error !== undefined) throw res.error;
  assert.equal(res.status, 0, res.stderr);
  const [status = '', ...message] = res.stdout.split('\n');
  return { status, message: message.join('\n') };
}

const samples = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({
    name: f.replace(/\.yaml$/, ''),
    ...(parse(readFileSync(join(TESTDATA, f), 'utf8')) as Sample),
  }));

describe('Argo CD health check (gitops/argocd/health.lua)', () => {
  before(() => {
    const setup = spawnSync('bash', [join(ROOT, 'scripts/setup-lua.sh')], { stdio: 'inherit' });
    assert.equal(setup.status, 0, 'scripts/setup-lua.sh failed');
  });

  it('has the samples the contract names', () => {
    const names = samples.map((s) => s.name);
    for (const name of [
      'healthy',
      'rolling-out',
      'stale-generation',
      'degraded-secret-missing',
      'crash-loop',
      'scaled-to-zero',
      'no-status',
    ])
      assert.ok(names.includes(name), `gitops/argocd/testdata/${name}.yaml`);
  });

  for (const lua of INTERPRETERS)
    describe(lua, () => {
      for (const sample of samples)
        it(`${sample.name} → ${sample.expected.status}`, () => {
          const hs = health(lua, sample.object);
          assert.ok(STATUSES.has(hs.status), `not an Argo CD health status: ${hs.status}`);
          assert.deepEqual(hs, sample.expected);
        });
    });

  it('argocd-cm-patch.yaml embeds health.lua (node gitops/argocd/render.ts)', async () => {
    assert.deepEqual(await staleEmbeddings(ROOT, ARGOCD_CM), [], 'run node gitops/argocd/render.ts');
    const [cm] = ARGOCD_CM;
    assert.ok(cm !== undefined);
    assert.deepEqual(cm.path, ['data', HEALTH_KEY]);
    assert.equal(await embeddedText(ROOT, cm), readFileSync(SCRIPT, 'utf8'));
  });
});
