import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { SERVING_PARAMS_DEFAULTS, type ServingParams } from '../../../crds/tuning.ts';
import { AutoGLMError } from '../errors.ts';
import { LiveParams, type ParamsChange } from './live.ts';
import {
  watchTuningFile,
  type TuningApplied,
  type TuningProblem,
  type WatchTuningOptions,
} from './watcher.ts';

const BASE: ServingParams = { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 8 };
const FAST = { debounceMs: 20, intervalMs: 0 } as const; // events only, unless a test says otherwise

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'autoglm-tuning-'));
  roots.push(dir);
  return dir;
}

function tuning(generation: number, body: string): string {
  return `apiVersion: serving.autoglm.io/v1alpha1\nkind: ServingTuning\ngeneration: ${generation}\n${body}`;
}

/** Writes as a careful writer does: a temporary file renamed over the old one. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

/** Records what a watcher reports, and lets a test await the report it expects. */
class Recorder {
  readonly applied: TuningApplied[] = [];
  readonly problems: TuningProblem[] = [];
  #wake: (() => void)[] = [];

  readonly onApplied = (applied: TuningApplied): void => {
    this.applied.push(applied);
    this.#notify();
  };

  readonly onError = (problem: TuningProblem): void => {
    this.problems.push(problem);
    this.#notify();
  };

  async until<T>(what: string, find: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  generation(n: number): Promise<TuningApplied> {
    return this.until(`generation ${n}`, () => this.applied.find((a) => a.generation === n));
  }

  problem(reason: TuningProblem['reason'], nth = 1): Promise<TuningProblem> {
    return this.until(
      `problem ${reason} #${nth}`,
      () => this.problems.filter((p) => p.reason === reason)[nth - 1],
    );
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}

async function start(
  path: string,
  extra: Partial<WatchTuningOptions> = {},
): Promise<{ live: LiveParams; rec: Recorder; close: () => Promise<void> }> {
  const live = new LiveParams();
  const rec = new Recorder();
  const watcher = await watchTuningFile(path, {
    nodeName: 'node-a',
    base: BASE,
    live,
    onApplied: rec.onApplied,
    onError: rec.onError,
    ...FAST,
    ...extra,
  });
  return { live, rec, close: () => watcher.close() };
}

test('no file at startup: the base parameters, and no error; the file appearing later applies', async () => {
  const dir = await tempDir();
  const w = await start(join(dir, 'tuning.yaml'));
  try {
    assert.equal(w.rec.applied[0]?.source, 'base');
    assert.deepEqual(w.live.get(), BASE);
    assert.deepEqual(w.rec.problems, []);
    await writeAtomically(join(dir, 'tuning.yaml'), tuning(1, 'defaults: { maxBatchSize: 12 }\n'));
    await w.rec.generation(1);
    assert.equal(w.live.get().maxBatchSize, 12);
  } finally {
    await w.close();
  }
});

test('a change to the file takes effect on the live parameters', async () => {
  const path = join(await tempDir(), 'tuning.yaml');
  await writeAtomically(path, tuning(1, 'defaults: { maxBatchSize: 16 }\n'));
  const w = await start(path);
  try {
    assert.equal(w.rec.applied[0]?.generation, 1);
    assert.equal(w.live.get().maxBatchSize, 16);
    const changes: ParamsChange[] = [];
    w.live.subscribe((c) => changes.push(c));
    await writeAtomically(path, tuning(2, 'defaults: { maxBatchSize: 64, streamChunkTokens: 4 }\n'));
    const applied = await w.rec.generation(2);
    assert.equal(applied.changed, true);
    assert.deepEqual(w.live.get(), { ...BASE, maxBatchSize: 64, streamChunkTokens: 4 });
    assert.deepEqual(
      changes.map((c) => [c.previous.maxBatchSize, c.next.maxBatchSize]),
      [[16, 64]],
    );
  } finally {
    await w.close();
  }
});

test('each node takes its own section, and the others the defaults', async () => {
  const path = join(await tempDir(), 'tuning.yaml');
  await writeAtomically(
    path,
    tuning(
      1,
      'defaults: { maxBatchSize: 16 }\nnodes:\n  node-a: { maxBatchSize: 128, maxQueueDelayMs: 5 }\n',
    ),
  );
  const a = await start(path, { nodeName: 'node-a' });
  const b = await start(path, { nodeName: 'node-b' });
  const none = await start(path, { nodeName: undefined });
  try {
    assert.deepEqual(a.live.get(), { ...BASE, maxBatchSize: 128, maxQueueDelayMs: 5 });
    assert.deepEqual(b.live.get(), { ...BASE, maxBatchSize: 16 });
    assert.deepEqual(none.live.get(), { ...BASE, maxBatchSize: 16 });
    // A change to another node's section is applied, and changes nothing here.
    await writeAtomically(
      path,
      tuning(2, 'defaults: { maxBatchSize: 16 }\nnodes:\n  node-a: { maxBatchSize: 256 }\n'),
    );
    assert.equal((await b.rec.generation(2)).changed, false);
    assert.equal((await a.rec.generation(2)).params.maxBatchSize, 256);
  } finally {
    await Promise.all([a.close(), b.close(), none.close()]);
  }
});

test('a broken file keeps the last good parameters and reports every problem', async () => {
  const path = join(await tempDir(), 'tuning.yaml');
  await writeAtomically(path, tuning(1, 'defaults: { maxBatchSize: 16 }\n'));
  const w = await start(path);
  try {
    const good = w.live.get();
    await writeAtomically(
      path,
      tuning(2, 'defaults:\n  maxBatchSize: 0\n  speed: 11\n  compression: { algorithm: gzip, level: 12 }\n'),
    );
    const invalid = await w.rec.problem('invalid');
    assert.equal(invalid.path, path);
    assert.deepEqual(invalid.errors, [
      'defaults.compression.level: must be <= 9',
      'defaults.maxBatchSize: must be >= 1',
      'defaults.speed: unknown key',
    ]);
    assert.equal(w.live.get(), good);

    await writeAtomically(path, 'defaults: { maxBatchSize: [16\n');
    const yaml = await w.rec.problem('invalid', 2);
    assert.match(yaml.errors[0] ?? '', /line \d+, column \d+/);
    assert.equal(w.live.get(), good);

    await writeAtomically(path, tuning(3, 'defaults: { maxBatchSize: 24 }\n'));
    await w.rec.generation(3);
    assert.equal(w.live.get().maxBatchSize, 24);
    assert.equal(w.rec.applied.length, 2);
  } finally {
    await w.close();
  }
});

test('an invalid file at startup is reported and the base parameters apply', async () => {
  const path = join(await tempDir(), 'tuning.yaml');
  await writeAtomically(path, 'kind: Nonsense\n');
  const w = await start(path);
  try {
    assert.equal(w.rec.problems[0]?.reason, 'invalid');
    assert.equal(w.rec.applied[0]?.source, 'base');
    assert.deepEqual(w.live.get(), BASE);
  } finally {
    await w.close();
  }
});

test('an unreadable path is reported, and a failing subscriber does not stop the update', async () => {
  const dir = await tempDir();
  const path = join(dir, 'tuning.yaml');
  await mkdir(path); // a directory where the file should be: EISDIR
  const w = await start(path);
  try {
    assert.match(w.rec.problems[0]?.errors[0] ?? '', /EISDIR/);
    assert.equal(w.rec.problems[0]?.reason, 'unreadable');
    assert.equal(w.rec.applied[0]?.source, 'base');
    w.live.subscribe(() => {
      throw new Error('subscriber bug');
    });
    await rm(path, { recursive: true });
    await writeAtomically(path, tuning(1, 'defaults: { maxBatchSize: 20 }\n'));
    await w.rec.generation(1);
    assert.equal(w.live.get().maxBatchSize, 20);
    const internal = await w.rec.problem('internal');
    assert.match(internal.errors[0] ?? '', /subscriber bug/);
  } finally {
    await w.close();
  }
});

/** Lays out a directory as the kubelet does for a ConfigMap volume, and updates it the same way. */
class ConfigMapVolume {
  readonly dir: string;
  #version = 0;
  #current: string | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  async publish(files: Record<string, string>): Promise<void> {
    const stamped = `..2025_06_01_12_00_00.${String(++this.#version).padStart(9, '0')}`;
    await mkdir(join(this.dir, stamped));
    for (const [key, text] of Object.entries(files)) await writeFile(join(this.dir, stamped, key), text);
    await symlink(stamped, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const key of Object.keys(files)) {
      await symlink(join('..data', key), join(this.dir, key)).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      });
    }
    if (this.#current !== undefined) await rm(join(this.dir, this.#current), { recursive: true });
    this.#current = stamped;
  }
}

test('a ConfigMap update (the ..data symlink swap) is picked up', async () => {
  const volume = new ConfigMapVolume(await tempDir());
  await volume.publish({ 'tuning.yaml': tuning(1, 'nodes:\n  node-a: { maxBatchSize: 32 }\n') });
  const w = await start(join(volume.dir, 'tuning.yaml'));
  try {
    assert.equal(w.rec.applied[0]?.generation, 1);
    for (const generation of [2, 3]) {
      const size = 32 * generation;
      await volume.publish({
        'tuning.yaml': tuning(generation, `nodes:\n  node-a: { maxBatchSize: ${size} }\n`),
      });
      await w.rec.generation(generation);
      assert.equal(w.live.get().maxBatchSize, size);
    }
    assert.deepEqual(w.rec.problems, []);
  } finally {
    await w.close();
  }
});

test('a deleted file keeps the last good parameters and is reported once', async () => {
  const path = join(await tempDir(), 'tuning.yaml');
  await writeAtomically(path, tuning(1, 'defaults: { maxBatchSize: 16 }\n'));
  const w = await start(path, { intervalMs: 30 });
  try {
    await rm(path);
    const missing = await w.rec.problem('missing');
    assert.match(missing.errors[0] ?? '', /gone/);
    await new Promise((resolve) => setTimeout(resolve, 150)); // several periodic re-reads
    assert.equal(w.rec.problems.length, 1);
    assert.equal(w.live.get().maxBatchSize, 16);
  } finally {
    await w.close();
  }
});

test('the periodic re-read finds a directory that appears after startup', async () => {
  const dir = join(await tempDir(), 'not-mounted-yet');
  const w = await start(join(dir, 'tuning.yaml'), { intervalMs: 30 });
  try {
    assert.equal(w.rec.applied[0]?.source, 'base');
    await mkdir(dir);
    await writeAtomically(join(dir, 'tuning.yaml'), tuning(1, 'defaults: { maxBatchSize: 48 }\n'));
    await w.rec.generation(1);
    assert.equal(w.live.get().maxBatchSize, 48);
  } finally {
    await w.close();
  }
});

test('an invalid base or option is a programming error', async () => {
  const live = new LiveParams();
  const path = join(await tempDir(), 'tuning.yaml');
  const bad = { ...BASE, maxBatchedTokens: 1 };
  await assert.rejects(watchTuningFile(path, { nodeName: 'n', base: bad, live }), AutoGLMError);
  await assert.rejects(
    watchTuningFile(path, { nodeName: 'n', base: BASE, live, intervalMs: -1 }),
    AutoGLMError,
  );
});

test('close() leaves nothing running: a process that used a watcher exits on its own', async () => {
  const url = (p: string): string => new URL(p, import.meta.url).href;
  const script = `
    import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const { watchTuningFile } = await import(${JSON.stringify(url('./watcher.ts'))});
    const { LiveParams } = await import(${JSON.stringify(url('./live.ts'))});
    const { SERVING_PARAMS_DEFAULTS } = await import(${JSON.stringify(url('../../../crds/tuning.ts'))});
    const dir = await mkdtemp(join(tmpdir(), 'autoglm-tuning-exit-'));
    const file = join(dir, 'tuning.yaml');
    let applied;
    const seen = new Promise((resolve) => { applied = resolve; });
    const watcher = await watchTuningFile(file, {
      nodeName: 'n', base: SERVING_PARAMS_DEFAULTS, live: new LiveParams(), intervalMs: 20, debounceMs: 5,
      onApplied: (a) => { if (a.source === 'file') applied(a); },
    });
    await writeFile(file + '.tmp', 'apiVersion: serving.autoglm.io/v1alpha1\\nkind: ServingTuning\\ndefaults: { maxBatchSize: 3 }\\n');
    await rename(file + '.tmp', file);
    const a = await seen;
    await watcher.close();
    await rm(dir, { recursive: true });
    console.log('applied ' + a.params.maxBatchSize);
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    timeout: 15_000,
  });
  assert.equal(stdout.trim(), 'applied 3');
});
