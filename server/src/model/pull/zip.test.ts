import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { extractZipEntry, readZipEntries } from './zip.ts';
import { buildZip } from './zip-fixture.ts';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('zip reader', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoglm-zip-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes the archive, extracts `name` from it, and returns the extracted bytes and reported sha256. */
  async function roundTrip(zip: Buffer, name: string): Promise<{ data: Buffer; sha: string }> {
    const path = join(dir, `${randomBytes(4).toString('hex')}.zip`);
    await writeFile(path, zip);
    const entry = (await readZipEntries(path)).find((e) => e.name === name);
    assert.ok(entry, `${name} listed`);
    const out = `${path}.out`;
    const sha = await extractZipEntry(path, entry, out);
    return { data: await readFile(out), sha };
  }

  const text = Buffer.from('hello wheel '.repeat(1000));
  const noise = randomBytes(300_000);

  for (const zip64 of [false, true]) {
    it(`reads stored and deflated members${zip64 ? ' (zip64)' : ''}`, async () => {
      const zip = buildZip(
        [
          { name: 'pkg/__init__.py', data: Buffer.from(''), method: 'stored' },
          { name: 'pkg/model.gguf', data: noise, method: 'stored' },
          { name: 'pkg/notes.txt', data: text, method: 'deflate' },
        ],
        { zip64, comment: 'a comment at the end' },
      );
      const path = join(dir, `list-${String(zip64)}.zip`);
      await writeFile(path, zip);
      const entries = await readZipEntries(path);
      assert.deepEqual(
        entries.map((e) => [e.name, e.method, e.size]),
        [
          ['pkg/__init__.py', 0, 0],
          ['pkg/model.gguf', 0, noise.length],
          ['pkg/notes.txt', 8, text.length],
        ],
      );
      for (const [name, data] of [
        ['pkg/model.gguf', noise],
        ['pkg/notes.txt', text],
        ['pkg/__init__.py', Buffer.alloc(0)],
      ] as const) {
        const got = await roundTrip(zip, name);
        assert.ok(got.data.equals(data), name);
        assert.equal(got.sha, sha256(data));
      }
    });
  }

  it('reads archives written by other tools (the system zip, Python zipfile)', async (t) => {
    const src = join(dir, 'src');
    await rm(src, { recursive: true, force: true });
    await writeFile(join(dir, 'payload.bin'), Buffer.concat([text, noise]));
    const made: string[] = [];
    try {
      execFileSync('zip', ['-q', '-j', join(dir, 'sys.zip'), join(dir, 'payload.bin')]);
      made.push('sys.zip');
    } catch {
      t.diagnostic('no zip command');
    }
    try {
      const script = `import zipfile,sys\nwith zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[2],'payload.bin')`;
      execFileSync('python3', ['-c', script, join(dir, 'py.zip'), join(dir, 'payload.bin')]);
      made.push('py.zip');
    } catch {
      t.diagnostic('no python3');
    }
    if (made.length === 0) t.skip('neither zip nor python3 here');
    for (const name of made) {
      const got = await roundTrip(await readFile(join(dir, name)), 'payload.bin');
      assert.ok(got.data.equals(Buffer.concat([text, noise])), name);
    }
  });

  it('rejects a member whose bytes fail the CRC-32', async () => {
    const zip = buildZip([{ name: 'a.bin', data: noise, method: 'stored' }]);
    zip[60] = (zip[60] ?? 0) ^ 0xff; // inside the stored data
    await assert.rejects(
      roundTrip(zip, 'a.bin'),
      (err) => err instanceof AutoGLMError && /CRC-32/.test(err.message),
    );
  });

  it('rejects corrupt deflate data', async () => {
    const zip = buildZip([{ name: 'a.txt', data: noise, method: 'deflate' }]);
    zip.fill(0xff, 40, 200);
    await assert.rejects(
      roundTrip(zip, 'a.txt'),
      (err) => err instanceof AutoGLMError && err.code === 'download_failed',
    );
  });

  it('says a truncated archive is not a zip', async () => {
    const zip = buildZip([{ name: 'a.txt', data: text }]);
    const path = join(dir, 'cut.zip');
    await writeFile(path, zip.subarray(0, zip.length - 30));
    await assert.rejects(readZipEntries(path), (err) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'download_failed');
      assert.match(err.message, /not a readable zip archive/);
      return true;
    });
  });
});
