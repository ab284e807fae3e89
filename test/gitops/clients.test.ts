/**
 * The example clients (examples/clients/) against a real server on loopback over a seeded
 * random model: each streams a chat completion through the official OpenAI SDK, with the base
 * URL from AUTOGLM_BASE_URL and the model from /v1/models. The Python SDK comes from
 * scripts/setup-python-openai.sh.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ROOT } from '../support/policy-tools.ts';
import { run } from '../support/process.ts';
import { useServedModel } from '../support/server.ts';

const TOKENS = 6;

/** Runs a client to its end against `baseUrl`. */
const runClient = (cmd: string, args: string[], baseUrl: string) =>
  run(cmd, args, {
    env: { ...process.env, AUTOGLM_BASE_URL: baseUrl, AUTOGLM_MAX_TOKENS: String(TOKENS) },
    timeoutMs: 120_000,
  });

describe('example clients (examples/clients/)', { timeout: 10 * 60_000 }, () => {
  const served = useServedModel();
  const python = join(
    process.env['AUTOGLM_HOME'] ?? join(homedir(), '.cache/autoglm'),
    'openai-venv/bin/python',
  );

  before(() => {
    const setup = spawnSync('bash', [join(ROOT, 'scripts/setup-python-openai.sh')], { stdio: 'inherit' });
    assert.equal(setup.status, 0, 'scripts/setup-python-openai.sh failed');
  });

  const cases = [
    {
      name: 'openai-client.ts (openai for Node)',
      cmd: () => process.execPath,
      args: ['examples/clients/openai-client.ts'],
    },
    {
      name: 'openai_client.py (openai for Python)',
      cmd: () => python,
      args: ['examples/clients/openai_client.py'],
    },
  ];
  for (const c of cases)
    it(`${c.name} streams a completion`, async () => {
      const res = await runClient(c.cmd(), [...c.args, 'Hello there'], `${served.server.url}/v1`);
      assert.equal(res.code, 0, res.stderr);
      // The usage chunk closes the stream: the whole completion arrived, streamed.
      assert.match(res.stderr, new RegExp(`\\[${String(TOKENS)} tokens\\]`), res.stderr);
      assert.ok(res.stdout.endsWith('\n'));
    });

  it('the clients reach the server the environment names, not a default', async () => {
    const res = await runClient(
      process.execPath,
      ['examples/clients/openai-client.ts'],
      'http://127.0.0.1:9/v1',
    );
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /Connection error|ECONNREFUSED/);
  });
});
