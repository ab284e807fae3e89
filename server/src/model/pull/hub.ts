/**
 * `hf:org/repo[@revision][:path]` sources, through the Hub's HTTP API:
 *   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true  → commit sha and file list
 *   GET {endpoint}/{repo}/resolve/{commit}/{path}                    → the file (often a CDN redirect)
 * Files land in hub/<org>--<repo>/<commit>/<path>. A small record per request (refs/<key>.json)
 * remembers which commit and files it resolved to, so a pinned commit or HF_HUB_OFFLINE=1 needs
 * no network, and a branch costs one metadata request when nothing changed.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AutoGLMError, asStorageError } from '../../errors.ts';
import { cacheLayout } from './cache.ts';
import { planHubPull, isSafeRepoPath, type HubFile, type HubPlan } from './hub-plan.ts';
import {
  describeHttpFailure,
  downloadFile,
  fetchFollowing,
  isTransient,
  type DescribeFailure,
} from './http.ts';
import type { PullEnv, PullOptions, PullResult } from './types.ts';

export interface HfSource {
  readonly kind: 'hf';
  /** 'org/repo' (or a legacy un-namespaced 'repo'). */
  readonly repo: string;
  /** Branch, tag or commit sha; 'main' when absent. */
  readonly revision?: string;
  /** A file inside the repository to take: a .gguf, or an .onnx graph of an ONNX folder. */
  readonly path?: string;
}

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const COMMIT_SHA = /^[0-9a-f]{40}$/;

function invalid(spec: string, why: string): AutoGLMError {
  return new AutoGLMError('model_source_invalid', `hf:${spec}: ${why}`, {
    hint: 'write hf:org/repo, optionally with @revision and :path/in/repo.gguf',
  });
}

function splitHfSpec(spec: string): { repo: string; revision: string | undefined; path: string | undefined } {
  const colon = spec.indexOf(':');
  const head = colon < 0 ? spec : spec.slice(0, colon);
  const at = head.indexOf('@');
  return {
    repo: at < 0 ? head : head.slice(0, at),
    revision: at < 0 ? undefined : head.slice(at + 1),
    path: colon < 0 ? undefined : spec.slice(colon + 1),
  };
}

const isRepoId = (repo: string): boolean => {
  const parts = repo.split('/');
  return parts.length <= 2 && parts.every((p) => REPO_PART.test(p) && !p.includes('..'));
};

/** Git's ref-name rules, as far as they matter here. */
const isRevision = (revision: string): boolean => revision !== '' && !/\.\.|[\s~^:?*[\\]/.test(revision);

/** Parses what follows 'hf:'. */
export function parseHfSource(spec: string): HfSource {
  const { repo, revision, path } = splitHfSpec(spec);
  if (!isRepoId(repo)) throw invalid(spec, `'${repo}' is not a repository id`);
  if (revision !== undefined && !isRevision(revision)) throw invalid(spec, `'${revision}' is not a revision`);
  if (path !== undefined && !isSafeRepoPath(path)) {
    throw invalid(spec, `'${path}' is not a path inside the repository`);
  }
  return {
    kind: 'hf',
    repo,
    ...(revision === undefined ? {} : { revision }),
    ...(path === undefined ? {} : { path }),
  };
}

interface HubSettings {
  readonly endpoint: string;
  readonly token: string | undefined;
  readonly offline: boolean;
}

function hubSettings(env: PullEnv): HubSettings {
  const token = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  return {
    endpoint: (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    token: token === '' ? undefined : token,
    offline: ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase()),
  };
}

function requestHeaders(hub: HubSettings): Record<string, string> {
  return {
    'user-agent': 'autoglm',
    ...(hub.token === undefined ? {} : { authorization: `Bearer ${hub.token}` }),
  };
}

function accessDenied(
  hub: HubSettings,
  src: HfSource,
  status: number,
  errorCode: string | null,
): AutoGLMError {
  const page = `${hub.endpoint}/${src.repo}`;
  const hint =
    errorCode === 'GatedRepo'
      ? `the model is gated: accept its terms at ${page}, then set HF_TOKEN to a token of that account`
      : hub.token === undefined
        ? `the repository may be private or gated (or may not exist): set HF_TOKEN to an access token with read access`
        : `HF_TOKEN is set but was refused: check that the token is valid and can read ${src.repo}`;
  const detail = errorCode === null ? '' : `, ${errorCode}`;
  const message = `${hub.endpoint} refused access to ${src.repo} (HTTP ${status}${detail})`;
  return new AutoGLMError('model_access_denied', message, { hint });
}

function hubFailure(hub: HubSettings, src: HfSource): DescribeFailure {
  return (failure) => {
    const errorCode = failure.headers.get('x-error-code');
    if (failure.status === 401 || failure.status === 403) {
      return accessDenied(hub, src, failure.status, errorCode);
    }
    if (failure.status !== 404) return describeHttpFailure(failure);
    const what =
      errorCode === 'RevisionNotFound'
        ? `revision ${src.revision ?? 'main'} of ${src.repo}`
        : errorCode === 'EntryNotFound'
          ? `a file of ${src.repo} (${failure.url})`
          : `repository ${src.repo}`;
    return new AutoGLMError('model_not_found', `${what} not found on ${hub.endpoint}`, {
      hint: `check the name at ${hub.endpoint}/${src.repo}`,
    });
  };
}

interface RepoInfo {
  readonly commit: string;
  readonly files: readonly HubFile[];
}

function parseSibling(value: unknown): HubFile | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { rfilename, size, lfs } = value as {
    rfilename?: unknown;
    size?: unknown;
    lfs?: { sha256?: unknown; size?: unknown };
  };
  if (typeof rfilename !== 'string') return undefined;
  const bytes = typeof lfs?.size === 'number' ? lfs.size : size;
  return {
    path: rfilename,
    ...(typeof bytes === 'number' ? { size: bytes } : {}),
    ...(typeof lfs?.sha256 === 'string' ? { sha256: lfs.sha256.toLowerCase() } : {}),
  };
}

async function fetchRepoInfo(hub: HubSettings, src: HfSource, signal?: AbortSignal): Promise<RepoInfo> {
  const revision = encodeURIComponent(src.revision ?? 'main');
  const url = `${hub.endpoint}/api/models/${src.repo}/revision/${revision}?blobs=true`;
  const { response } = await fetchFollowing(
    url,
    { ...requestHeaders(hub), accept: 'application/json' },
    signal,
  );
  if (!response.ok) {
    await response.body?.cancel();
    throw hubFailure(hub, src)({ url, status: response.status, headers: response.headers });
  }
  const body = (await response.json().catch(() => undefined)) as
    { sha?: unknown; siblings?: unknown } | undefined;
  const commit = body?.sha;
  if (typeof commit !== 'string' || !/^[A-Za-z0-9]{7,64}$/.test(commit) || !Array.isArray(body?.siblings)) {
    throw new AutoGLMError(
      'download_failed',
      `${url} did not answer with a model description (sha, siblings)`,
    );
  }
  const files = body.siblings.flatMap((s: unknown) => parseSibling(s) ?? []);
  return { commit, files };
}

/** What a finished pull resolved to, kept per request under hub/<repo>/refs/. */
interface PullRecord {
  readonly commit: string;
  readonly kind: 'gguf' | 'onnx';
  /** The GGUF file or the ONNX graph, relative to the snapshot folder. */
  readonly main: string;
  readonly files: readonly { readonly path: string; readonly size: number }[];
}

const repoFolder = (repo: string): string => repo.replace('/', '--');

function recordPath(repoDir: string, src: HfSource, variant: string | undefined): string {
  const key = [src.revision ?? 'main', src.path ?? '', variant ?? ''].join('|');
  return join(repoDir, 'refs', `${encodeURIComponent(key)}.json`);
}

function resultOf(repoDir: string, record: PullRecord): PullResult {
  const dir = join(repoDir, record.commit);
  return record.kind === 'gguf'
    ? { kind: 'gguf', path: join(dir, record.main) }
    : { kind: 'onnx', dir, modelFile: record.main };
}

/** The recorded pull, if every file it lists is still in place. */
async function readRecord(path: string, repoDir: string): Promise<PullRecord | undefined> {
  let record: PullRecord;
  try {
    record = JSON.parse(await readFile(path, 'utf8')) as PullRecord;
  } catch {
    return undefined;
  }
  const paths = [record.commit, record.main, ...record.files.map((f) => f.path)];
  if (!paths.every((p) => typeof p === 'string' && isSafeRepoPath(p))) return undefined;
  for (const file of record.files) {
    const st = await stat(join(repoDir, record.commit, file.path)).catch(() => undefined);
    if (st?.size !== file.size) return undefined;
  }
  return record;
}

async function writeRecord(path: string, record: PullRecord): Promise<void> {
  try {
    const tmp = `${path}.${process.pid}.tmp`;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
    await rename(tmp, path);
  } catch (err) {
    throw asStorageError(err, path);
  }
}

async function fetchPlan(
  hub: HubSettings,
  src: HfSource,
  info: RepoInfo,
  plan: HubPlan,
  repoDir: string,
  opts: PullOptions,
): Promise<PullRecord> {
  const snapshot = join(repoDir, info.commit);
  const files: { path: string; size: number }[] = [];
  for (const file of plan.files) {
    const dest = join(snapshot, ...file.path.split('/'));
    const url = `${hub.endpoint}/${src.repo}/resolve/${info.commit}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
    await downloadFile(
      {
        url,
        dest,
        label: file.path,
        headers: requestHeaders(hub),
        etagIsSha256: true,
        describeFailure: hubFailure(hub, src),
        ...(file.size === undefined ? {} : { size: file.size }),
        ...(file.sha256 === undefined ? {} : { sha256: file.sha256 }),
      },
      opts,
    );
    files.push({ path: file.path, size: (await stat(dest)).size });
  }
  const main = plan.kind === 'gguf' ? plan.gguf : plan.modelFile;
  return { commit: info.commit, kind: plan.kind, main, files };
}

function offlineMiss(src: HfSource, repoDir: string): AutoGLMError {
  return new AutoGLMError(
    'model_not_found',
    `hf:${src.repo}@${src.revision ?? 'main'} is not in the cache (${repoDir}) and HF_HUB_OFFLINE is set`,
    {
      hint: 'pull it once with network access (HF_HUB_OFFLINE unset), then offline runs use the cached copy',
    },
  );
}

type Resolution = { readonly cached: PullRecord } | { readonly info: RepoInfo };

/**
 * Whether the recorded pull answers this request (pinned commit, offline, unchanged branch, or
 * the Hub unreachable), or which commit to fetch now.
 */
async function resolveCommit(
  hub: HubSettings,
  src: HfSource,
  cached: PullRecord | undefined,
  repoDir: string,
  opts: PullOptions,
): Promise<Resolution> {
  const pinned = src.revision !== undefined && COMMIT_SHA.test(src.revision);
  if (cached !== undefined && (hub.offline || pinned)) return { cached };
  if (hub.offline) throw offlineMiss(src, repoDir);
  let info: RepoInfo;
  try {
    info = await fetchRepoInfo(hub, src, opts.signal);
  } catch (err) {
    if (cached === undefined || !isTransient(err)) throw err;
    opts.onMessage?.(`${(err as Error).message}; using the cached commit ${cached.commit}`);
    return { cached };
  }
  return cached?.commit === info.commit ? { cached } : { info };
}

/** Pulls a Hub source into the cache; see the module comment for what is fetched when. */
export async function pullHf(src: HfSource, opts: PullOptions = {}): Promise<PullResult> {
  const env = opts.env ?? process.env;
  const hub = hubSettings(env);
  const repoDir = join(cacheLayout(env).hub, repoFolder(src.repo));
  const recordFile = recordPath(repoDir, src, opts.variant);
  const resolution = await resolveCommit(hub, src, await readRecord(recordFile, repoDir), repoDir, opts);
  if ('cached' in resolution) return resultOf(repoDir, resolution.cached);
  const plan = planHubPull(resolution.info.files, { path: src.path, variant: opts.variant });
  if (plan.note !== undefined) opts.onMessage?.(`hf:${src.repo}: ${plan.note}`);
  const record = await fetchPlan(hub, src, resolution.info, plan, repoDir, opts);
  await writeRecord(recordFile, record);
  return resultOf(repoDir, record);
}
