/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, for tests: the model API, `resolve` with
 * Range support, LFS files answered by a redirect to a second server (another origin, like the
 * Hub's CDN), optional token checks, and switches to drop or corrupt a transfer.
 * Repositories live in a temp folder: <root>/<org>--<repo>/<commit>/<files> and refs.json.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative } from 'node:path';

export interface SeenRequest {
  readonly server: 'hub' | 'cdn';
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly range: string | undefined;
}

/** Files stored with LFS (served through the CDN with X-Linked-Etag = sha256). */
const isLfs = (path: string): boolean => /\.(gguf|onnx|onnx_data\w*|bin|safetensors)$/.test(path);

/** Writes one commit of a repository into `root`; returns its commit sha. Refs given move to it. */
export async function writeCommit(
  root: string,
  repo: string,
  files: Readonly<Record<string, string | Buffer>>,
  refs: readonly string[] = ['main'],
): Promise<string> {
  const hash = createHash('sha1').update(repo);
  for (const [path, data] of Object.entries(files).sort()) hash.update(path).update(data);
  const commit = hash.digest('hex');
  const repoDir = join(root, repo.replace('/', '--'));
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(repoDir, commit, path)), { recursive: true });
    await writeFile(join(repoDir, commit, path), data);
  }
  const refsFile = join(repoDir, 'refs.json');
  const known = JSON.parse(await readFile(refsFile, 'utf8').catch(() => '{}')) as Record<string, string>;
  for (const ref of refs) known[ref] = commit;
  await writeFile(refsFile, JSON.stringify(known));
  return commit;
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full, base)));
    else out.push(relative(base, full));
  }
  return out.sort();
}

const sha256Of = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export class HubFixture {
  readonly requests: SeenRequest[] = [];
  /** Require `Authorization: Bearer <token>` on the Hub server (not on the CDN). */
  token: string | undefined;
  /** Repo paths whose next transfer stops halfway (the server closes the connection). */
  readonly dropOnce = new Set<string>();
  /** Repo paths whose every transfer stops halfway. */
  readonly dropAlways = new Set<string>();
  /** Repo paths served with one byte flipped. */
  readonly corrupt = new Set<string>();
  /** Answer the model API without sizes and LFS hashes, as if `?blobs=true` were not understood. */
  plainListing = false;
  readonly #root: string;
  readonly #hub: Server;
  readonly #cdn: Server;
  /** sha256 → [repo path, file on disk], for the CDN. */
  readonly #blobs = new Map<string, [string, string]>();

  private constructor(root: string) {
    this.#root = root;
    this.#hub = createServer((req, res) => {
      this.#onHub(req, res).catch((err: unknown) => {
        this.#fail(res, err);
      });
    });
    this.#cdn = createServer((req, res) => {
      this.#onCdn(req, res).catch((err: unknown) => {
        this.#fail(res, err);
      });
    });
  }

  static async start(root: string): Promise<HubFixture> {
    const fixture = new HubFixture(root);
    for (const server of [fixture.#hub, fixture.#cdn]) {
      await new Promise<void>((ok) => {
        server.listen(0, '127.0.0.1', ok);
      });
    }
    return fixture;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#hub.address() as AddressInfo).port}`;
  }

  get cdnUrl(): string {
    return `http://127.0.0.1:${(this.#cdn.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const server of [this.#hub, this.#cdn]) {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    }
  }

  #fail(res: ServerResponse, err: unknown): void {
    if (!res.headersSent) sendJson(res, 500, { error: String(err) });
    else res.destroy();
  }

  #record(server: SeenRequest['server'], req: IncomingMessage): void {
    const { authorization, range } = req.headers;
    this.requests.push({ server, method: req.method ?? 'GET', path: req.url ?? '', authorization, range });
  }

  /** Resolves a revision of a repository to its commit folder, or answers the error itself. */
  async #commit(repo: string, revision: string, res: ServerResponse): Promise<string | undefined> {
    const repoDir = join(this.#root, repo.replace('/', '--'));
    const refs = JSON.parse(await readFile(join(repoDir, 'refs.json'), 'utf8').catch(() => 'null')) as Record<
      string,
      string
    > | null;
    if (refs === null) {
      sendJson(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      return undefined;
    }
    const commit = refs[revision] ?? revision;
    if (await stat(join(repoDir, commit)).catch(() => undefined)) return commit;
    sendJson(res, 404, { error: `Invalid rev id: ${revision}` }, { 'x-error-code': 'RevisionNotFound' });
    return undefined;
  }

  #authorized(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.token === undefined || req.headers.authorization === `Bearer ${this.token}`) return true;
    sendJson(
      res,
      401,
      { error: 'Invalid credentials in Authorization header' },
      { 'x-error-code': 'RepoNotFound' },
    );
    return false;
  }

  async #onHub(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#record('hub', req);
    if (!this.#authorized(req, res)) return;
    const url = new URL(req.url ?? '/', this.url);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api?.[1] !== undefined && api[2] !== undefined) {
      const blobs = url.searchParams.get('blobs') === 'true' && !this.plainListing;
      await this.#modelInfo(api[1], decodeURIComponent(api[2]), blobs, res);
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve?.[1] !== undefined && resolve[2] !== undefined && resolve[3] !== undefined) {
      await this.#resolve(
        resolve[1],
        decodeURIComponent(resolve[2]),
        decodeURIComponent(resolve[3]),
        req,
        res,
      );
      return;
    }
    sendJson(res, 404, { error: 'no such route' });
  }

  async #modelInfo(repo: string, revision: string, blobs: boolean, res: ServerResponse): Promise<void> {
    const commit = await this.#commit(repo, revision, res);
    if (commit === undefined) return;
    const dir = join(this.#root, repo.replace('/', '--'), commit);
    const siblings = [];
    for (const path of await listFiles(dir)) {
      const data = await readFile(join(dir, path));
      const lfs = isLfs(path) ? { sha256: sha256Of(data), size: data.length, pointerSize: 134 } : undefined;
      siblings.push(
        blobs ? { rfilename: path, size: data.length, ...(lfs ? { lfs } : {}) } : { rfilename: path },
      );
    }
    sendJson(res, 200, { id: repo, modelId: repo, sha: commit, private: false, siblings });
  }

  async #resolve(
    repo: string,
    revision: string,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const commit = await this.#commit(repo, revision, res);
    if (commit === undefined) return;
    const file = join(this.#root, repo.replace('/', '--'), commit, path);
    const data = await readFile(file).catch(() => undefined);
    if (data === undefined) {
      sendJson(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
      return;
    }
    if (isLfs(path)) {
      const sha = sha256Of(data);
      this.#blobs.set(sha, [path, file]);
      res.writeHead(302, {
        location: `${this.cdnUrl}/lfs/${sha}?signature=test`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${sha}"`,
        'x-linked-size': String(data.length),
      });
      res.end();
      return;
    }
    const etag = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
    this.#send(path, data, req, res, { 'x-repo-commit': commit, etag: `"${etag}"` });
  }

  async #onCdn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#record('cdn', req);
    const sha = /^\/lfs\/([0-9a-f]{64})/.exec(req.url ?? '')?.[1];
    const blob = sha === undefined ? undefined : this.#blobs.get(sha);
    if (blob === undefined) {
      res.writeHead(403).end('AccessDenied');
      return;
    }
    this.#send(blob[0], await readFile(blob[1]), req, res, { etag: `"${sha ?? ''}"` });
  }

  /** Answers with the file, honouring `Range: bytes=a-[b]`, and applies the drop/corrupt switches. */
  #send(
    path: string,
    data: Buffer,
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string>,
  ): void {
    const body = this.corrupt.has(path) ? Buffer.from(data.map((b, i) => (i === 0 ? b ^ 0xff : b))) : data;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = body.length - 1;
    if (range?.[1] !== undefined) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
      if (start >= body.length) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      headers = { ...headers, 'content-range': `bytes ${start}-${end}/${body.length}` };
    }
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'content-length': String(end - start + 1),
      'accept-ranges': 'bytes',
    });
    const slice = body.subarray(start, end + 1);
    const drop = this.dropAlways.has(path) || this.dropOnce.delete(path);
    if (!drop) {
      res.end(slice);
      return;
    }
    // Half the bytes, a pause for the client to take them, then a clean close: the client sees a
    // body shorter than Content-Length. (Bytes still queued in the client's stream when it errors
    // are dropped, so tests accept any resume offset up to the half.)
    res.write(slice.subarray(0, Math.floor(slice.length / 2)), () => {
      setTimeout(() => res.socket?.end(), 50);
    });
  }
}
