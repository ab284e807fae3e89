import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { pullModel } from './index.ts';

const DATA = Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(100_000, 3)]);
const SHA = createHash('sha256').update(DATA).digest('hex');

describe('URL sources', () => {
  let root: string;
  let server: Server;
  let base: string;
  const seen: { path: string; range: string | undefined }[] = [];
  let dropNext = false;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'autoglm-url-'));
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? '', range: req.headers.range });
      if (req.url === '/moved/m.gguf') {
        res.writeHead(301, { location: '/m.gguf' }).end();
        return;
      }
      if (req.url !== '/m.gguf') {
        res.writeHead(404).end();
        return;
      }
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
      const headers = { 'content-length': String(DATA.length - start) };
      res.writeHead(
        start > 0 ? 206 : 200,
        start > 0
          ? { ...headers, 'content-range': `bytes ${start}-${DATA.length - 1}/${DATA.length}` }
          : headers,
      );
      if (dropNext) {
        dropNext = false;
        res.write(DATA.subarray(start, start + 1000), () => {
          setTimeout(() => res.socket?.end(), 50);
        });
        return;
      }
      res.end(DATA.subarray(start));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
    await rm(root, { recursive: true, force: true });
  });

  it('downloads a GGUF, checks the #sha256, resumes a drop, and reuses the file', async () => {
    const env = { AUTOGLM_HOME: join(root, 'a') };
    dropNext = true;
    seen.length = 0;
    const result = await pullModel(`${base}/moved/m.gguf#sha256=${SHA}`, { env });
    assert.ok(result.kind === 'gguf' && (await readFile(result.path)).equals(DATA));
    const resumedAt = seen.map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1] ?? 0));
    assert.ok(
      resumedAt.some((at) => at > 0 && at <= 1000),
      'resumed with a Range request',
    );
    const count = seen.length;
    assert.deepEqual(await pullModel(`${base}/moved/m.gguf#sha256=${SHA}`, { env }), result);
    assert.equal(seen.length, count, 'no request for a verified file');
  });

  it('deletes a file with the wrong sha256 and fails', async () => {
    const env = { AUTOGLM_HOME: join(root, 'b') };
    await assert.rejects(
      pullModel(`${base}/m.gguf#sha256=${'1'.repeat(64)}`, { env }),
      (err) => err instanceof AutoGLMError && err.code === 'checksum_mismatch',
    );
    const left = await readdir(join(root, 'b', 'gguf'), { recursive: true });
    assert.ok(
      left.every((p) => !p.endsWith('.gguf') && !p.endsWith('.part')),
      left.join(),
    );
  });

  it('reports 404 and unreachable hosts with the URL', async () => {
    const env = { AUTOGLM_HOME: join(root, 'c') };
    await assert.rejects(
      pullModel(`${base}/absent.gguf`, { env }),
      (err) =>
        err instanceof AutoGLMError && err.code === 'model_not_found' && err.message.includes('/absent.gguf'),
    );
    await assert.rejects(
      pullModel('http://127.0.0.1:9/m.gguf', { env }),
      (err) =>
        err instanceof AutoGLMError &&
        err.code === 'download_failed' &&
        err.message.includes('http://127.0.0.1:9/m.gguf'),
    );
  });
});
