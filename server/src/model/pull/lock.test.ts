import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { withFileLock } from './lock.ts';

describe('file locks', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoglm-lock-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs one holder at a time and removes the lock afterwards', async () => {
    const target = join(dir, 'a');
    const order: string[] = [];
    const hold = (name: string): Promise<void> =>
      withFileLock(target, async () => {
        order.push(`${name} in`);
        await delay(50);
        order.push(`${name} out`);
      });
    await Promise.all([hold('x'), hold('y')]);
    assert.deepEqual(order, ['x in', 'x out', 'y in', 'y out']);
    await assert.rejects(stat(`${target}.lock`), { code: 'ENOENT' });
  });

  it('breaks a lock left by a process that is gone', async () => {
    const target = join(dir, 'b');
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    await writeFile(`${target}.lock`, JSON.stringify({ pid: Number(gone.stdout.trim()), host: hostname() }));
    assert.equal(await withFileLock(target, () => Promise.resolve('ran')), 'ran');
  });

  it('waits for a live holder, and can be cancelled', async () => {
    const target = join(dir, 'c');
    await writeFile(`${target}.lock`, JSON.stringify({ pid: process.pid, host: hostname() }));
    let told = 0;
    const controller = new AbortController();
    const waiting = withFileLock(target, () => Promise.resolve('never'), {
      signal: controller.signal,
      onWait: () => (told += 1),
    });
    await delay(300);
    controller.abort();
    await assert.rejects(waiting, { name: 'AbortError' });
    assert.equal(told, 1);
    assert.equal(
      (JSON.parse(await readFile(`${target}.lock`, 'utf8')) as { pid: number }).pid,
      process.pid,
      "another holder's lock stays",
    );
  });
});
