import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { HubFixture, writeCommit } from './hub-fixture.ts';
import { pullModel } from './index.ts';
import type { PullEnv, PullOptions, PullResult } from './types.ts';

const bytes = (seed: number, length: number): Buffer => {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
};
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const Q4_1 = bytes(1, 300_000);
const Q8_0 = bytes(2, 500_000);
const Q4_K_M = bytes(3, 250_000);
const GGUF_REPO = {
  'README.md': '# tiny\n',
  'tiny-Q8_0.gguf': Q8_0,
  'tiny-Q4_K_M.gguf': Q4_K_M,
  'tiny.Q4_1.gguf': Q4_1,
  'mmproj-tiny-f16.gguf': bytes(4, 1000),
};
const GRAPH = bytes(5, 100_000);
const GRAPH_DATA = bytes(6, 400_000);
const ONNX_REPO = {
  'README.md': '# tiny onnx\n',
  'config.json': '{"model_type":"llama"}',
  'generation_config.json': '{"eos_token_id":2}',
  'tokenizer.json': '{"model":{}}',
  'tokenizer_config.json': '{"chat_template":"{{ x }}"}',
  'special_tokens_map.json': '', // empty files exist on the Hub too
  'onnx/model.onnx': GRAPH,
  'onnx/model.onnx_data': GRAPH_DATA,
  'onnx/model_q4f16.onnx': bytes(7, 50_000),
  'onnx/model_q4f16.onnx_data': bytes(8, 60_000),
};

function assertCode(code: string, pattern?: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof AutoGLMError, String(err));
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.toUserMessage(), pattern);
    return true;
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  return (
    (await readdir(dir, { recursive: true, withFileTypes: true })) as {
      isFile(): boolean;
      parentPath: string;
      name: string;
    }[]
  )
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('Hugging Face Hub sources', () => {
  let root: string;
  let hub: HubFixture;
  let home: string;
  let ggufCommit: string;
  let onnxCommit: string;
  let n = 0;
  const messages: string[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'autoglm-hub-'));
    ggufCommit = await writeCommit(join(root, 'repos'), 'org/tiny-GGUF', GGUF_REPO);
    onnxCommit = await writeCommit(join(root, 'repos'), 'onnx-community/tiny', ONNX_REPO);
    hub = await HubFixture.start(join(root, 'repos'));
  });
  after(async () => {
    await hub.close();
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    n += 1;
    home = join(root, `home-${n}`);
    hub.requests.length = 0;
    hub.token = undefined;
    messages.length = 0;
  });
  afterEach(() => {
    hub.dropOnce.clear();
    hub.dropAlways.clear();
    hub.corrupt.clear();
  });

  const env = (extra: PullEnv = {}): PullEnv => ({ AUTOGLM_HOME: home, HF_ENDPOINT: hub.url, ...extra });
  const pull = (source: string, extra: PullEnv = {}, opts: PullOptions = {}): Promise<PullResult> =>
    pullModel(source, { env: env(extra), onMessage: (m) => messages.push(m), ...opts });

  it('pulls the preferred GGUF (Q4_1) into hub/<org>--<repo>/<commit>/ and says why', async () => {
    const result = await pull('hf:org/tiny-GGUF');
    const snapshot = join(home, 'hub', 'org--tiny-GGUF', ggufCommit);
    assert.deepEqual(result, { kind: 'gguf', path: join(snapshot, 'tiny.Q4_1.gguf') });
    assert.ok((await readFile(join(snapshot, 'tiny.Q4_1.gguf'))).equals(Q4_1));
    assert.deepEqual(await filesUnder(snapshot), ['tiny.Q4_1.gguf'], 'one file, no .part or .lock');
    assert.ok(
      messages.some((m) => m.includes('picked tiny.Q4_1.gguf') && m.includes('Q4_1 > Q4_0 > Q8_0 > Q4_K_M')),
    );
    assert.ok(
      hub.requests.some((r) => r.server === 'cdn'),
      'LFS files come through the redirect',
    );
  });

  it('takes the file named in the source, and a quantization asked for as variant', async () => {
    const named = await pull('hf:org/tiny-GGUF:tiny-Q8_0.gguf');
    assert.ok(named.kind === 'gguf' && (await readFile(named.path)).equals(Q8_0));
    const variant = await pull('hf:org/tiny-GGUF', {}, { variant: 'q4_k_m' });
    assert.ok(variant.kind === 'gguf' && (await readFile(variant.path)).equals(Q4_K_M));
  });

  it('pulls an ONNX folder: the graph, its external data and the tokenizer and config files', async () => {
    const result = await pull('hf:onnx-community/tiny');
    const dir = join(home, 'hub', 'onnx-community--tiny', onnxCommit);
    assert.deepEqual(result, { kind: 'onnx', dir, modelFile: 'onnx/model.onnx' });
    assert.deepEqual(await filesUnder(dir), [
      'config.json',
      'generation_config.json',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    assert.ok((await readFile(join(dir, 'onnx/model.onnx_data'))).equals(GRAPH_DATA));
    assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), ONNX_REPO['config.json']);
  });

  it('pulls the ONNX variant asked for', async () => {
    const result = await pull('hf:onnx-community/tiny', {}, { variant: 'q4f16' });
    assert.ok(result.kind === 'onnx');
    assert.equal(result.modelFile, 'onnx/model_q4f16.onnx');
    const files = await filesUnder(result.dir);
    assert.ok(files.includes('onnx/model_q4f16.onnx_data') && !files.includes('onnx/model.onnx'));
    await assert.rejects(
      pull('hf:onnx-community/tiny', {}, { variant: 'int3' }),
      assertCode('model_not_found', /model_int3/),
    );
  });

  it('pins revisions: a branch, a tag, and a commit sha each get their own snapshot', async () => {
    const repos = join(root, 'repos');
    const v1 = await writeCommit(repos, 'org/pinned', { 'm.Q4_0.gguf': bytes(10, 1000) }, ['main', 'v1']);
    const v2 = await writeCommit(repos, 'org/pinned', { 'm.Q4_0.gguf': bytes(11, 1000) }, ['main']);
    const main = await pull('hf:org/pinned');
    const tag = await pull('hf:org/pinned@v1');
    const sha = await pull(`hf:org/pinned@${v1}`);
    assert.ok(main.kind === 'gguf' && main.path.includes(v2));
    assert.ok(tag.kind === 'gguf' && tag.path.includes(v1));
    assert.deepEqual(sha, tag);
    assert.ok((await readFile(tag.path)).equals(bytes(10, 1000)));
    assert.ok(
      hub.requests
        .filter((r) => r.path.includes('/resolve/'))
        .every((r) => r.path.includes(v1) || r.path.includes(v2)),
      'files are fetched by commit, never by a moving ref',
    );
  });

  it('sends HF_TOKEN to the Hub and never to the CDN', async () => {
    hub.token = 'hf_secret';
    await pull('hf:org/tiny-GGUF', { HF_TOKEN: 'hf_secret' });
    const hubSide = hub.requests.filter((r) => r.server === 'hub');
    assert.ok(hubSide.length >= 2);
    assert.ok(hubSide.every((r) => r.authorization === 'Bearer hf_secret'));
    const cdnSide = hub.requests.filter((r) => r.server === 'cdn');
    assert.ok(cdnSide.length >= 1 && cdnSide.every((r) => r.authorization === undefined));
  });

  it('explains a 401 in terms of HF_TOKEN', async () => {
    hub.token = 'hf_secret';
    await assert.rejects(
      pull('hf:org/tiny-GGUF'),
      assertCode('model_access_denied', /HTTP 401[\s\S]*set HF_TOKEN/),
    );
    await assert.rejects(
      pull('hf:org/tiny-GGUF', { HF_TOKEN: 'hf_wrong' }),
      assertCode('model_access_denied', /HF_TOKEN is set but was refused/),
    );
  });

  it('reports a missing repository, revision or file as model_not_found', async () => {
    await assert.rejects(
      pull('hf:org/nothing-here'),
      assertCode('model_not_found', /repository org\/nothing-here/),
    );
    await assert.rejects(pull('hf:org/tiny-GGUF@nope'), assertCode('model_not_found', /revision nope/));
    await assert.rejects(
      pull('hf:org/tiny-GGUF:absent.gguf'),
      assertCode('model_not_found', /no file absent\.gguf/),
    );
  });

  it('resumes a download that dropped halfway, with a Range request', async () => {
    hub.dropOnce.add('tiny.Q4_1.gguf');
    const result = await pull('hf:org/tiny-GGUF');
    assert.ok(result.kind === 'gguf' && (await readFile(result.path)).equals(Q4_1));
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    assert.equal(cdn.length, 2);
    assert.equal(cdn[0]?.range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]?.range ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= Q4_1.length / 2, `resumed at ${resumedAt}`);
    assert.ok(messages.some((m) => m.includes('retrying')));
  });

  it('keeps the .part of a failed download and resumes from it on the next pull', async () => {
    hub.dropAlways.add('tiny.Q4_1.gguf');
    await assert.rejects(
      pull('hf:org/tiny-GGUF'),
      assertCode('download_failed', /could not download http:\/\/127\.0\.0\.1/),
    );
    const part = join(home, 'hub', 'org--tiny-GGUF', ggufCommit, 'tiny.Q4_1.gguf.part');
    const kept = (await stat(part)).size;
    assert.ok(kept > 0 && kept < Q4_1.length);
    hub.dropAlways.clear();
    hub.requests.length = 0;
    const result = await pull('hf:org/tiny-GGUF');
    assert.ok(result.kind === 'gguf' && (await readFile(result.path)).equals(Q4_1));
    assert.equal(hub.requests.find((r) => r.server === 'cdn')?.range, `bytes=${kept}-`);
    await assert.rejects(stat(part), { code: 'ENOENT' });
  });

  it('deletes a file whose sha256 does not match and fails', async () => {
    hub.corrupt.add('tiny.Q4_1.gguf');
    await assert.rejects(pull('hf:org/tiny-GGUF'), assertCode('checksum_mismatch', new RegExp(sha256(Q4_1))));
    assert.deepEqual(await filesUnder(join(home, 'hub', 'org--tiny-GGUF', ggufCommit)), []);
  });

  it('checks LFS files against X-Linked-Etag when the listing carries no hashes', async () => {
    hub.plainListing = true;
    try {
      hub.corrupt.add('tiny.Q4_1.gguf');
      await assert.rejects(
        pull('hf:org/tiny-GGUF'),
        assertCode('checksum_mismatch', new RegExp(sha256(Q4_1))),
      );
      hub.corrupt.clear();
      const result = await pull('hf:org/tiny-GGUF');
      assert.ok(result.kind === 'gguf' && (await readFile(result.path)).equals(Q4_1));
    } finally {
      hub.plainListing = false;
    }
  });

  it('serves a cache hit without HTTP for a commit, and with one metadata request for a branch', async () => {
    const first = await pull(`hf:onnx-community/tiny@${onnxCommit}`);
    hub.requests.length = 0;
    assert.deepEqual(await pull(`hf:onnx-community/tiny@${onnxCommit}`), first);
    assert.equal(hub.requests.length, 0);
    await pull('hf:onnx-community/tiny');
    hub.requests.length = 0;
    assert.deepEqual(await pull('hf:onnx-community/tiny'), first);
    assert.deepEqual(
      hub.requests.map((r) => r.path),
      ['/api/models/onnx-community/tiny/revision/main?blobs=true'],
    );
  });

  it('with HF_HUB_OFFLINE=1 uses the cache or fails without touching the network', async () => {
    const online = await pull('hf:org/tiny-GGUF');
    hub.requests.length = 0;
    assert.deepEqual(await pull('hf:org/tiny-GGUF', { HF_HUB_OFFLINE: '1' }), online);
    await assert.rejects(
      pull('hf:onnx-community/tiny', { HF_HUB_OFFLINE: '1' }),
      assertCode('model_not_found', /HF_HUB_OFFLINE/),
    );
    assert.equal(hub.requests.length, 0);
  });

  it('falls back to the cached commit when the Hub is unreachable, and names the URL when there is none', async () => {
    const online = await pull('hf:org/tiny-GGUF');
    const down = { HF_ENDPOINT: 'http://127.0.0.1:9' };
    assert.deepEqual(await pull('hf:org/tiny-GGUF', down), online);
    assert.ok(messages.some((m) => m.includes('using the cached commit')));
    await assert.rejects(
      pull('hf:org/other', down),
      assertCode('download_failed', /http:\/\/127\.0\.0\.1:9\/api\/models\/org\/other/),
    );
  });

  it('downloads once when two pulls of the same file run at the same time', async () => {
    const [a, b] = await Promise.all([pull('hf:org/tiny-GGUF'), pull('hf:org/tiny-GGUF')]);
    assert.deepEqual(a, b);
    assert.equal(hub.requests.filter((r) => r.server === 'cdn').length, 1);
  });

  it('stops on abort, keeping the .part for later and leaving no lock', async () => {
    const controller = new AbortController();
    const pulling = pull(
      'hf:org/tiny-GGUF',
      {},
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'download' && p.done > 0) controller.abort();
        },
      },
    );
    await assert.rejects(pulling, { name: 'AbortError' });
    const snapshot = join(home, 'hub', 'org--tiny-GGUF', ggufCommit);
    assert.deepEqual(await filesUnder(snapshot), ['tiny.Q4_1.gguf.part']);
    const result = await pull('hf:org/tiny-GGUF');
    assert.ok(result.kind === 'gguf' && (await readFile(result.path)).equals(Q4_1));
  });

  it('reports progress up to the full size', async () => {
    let last = { done: 0, total: 0 as number | undefined };
    await pull('hf:org/tiny-GGUF', {}, { onProgress: (p) => (last = p) });
    assert.deepEqual(last, { ...last, done: Q4_1.length, total: Q4_1.length });
  });
});
