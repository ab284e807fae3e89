/**
 * `https://…/model.gguf[#sha256=<hex>]` sources (http:// too, for in-cluster mirrors and tests):
 * a resumable download to gguf/url-<hash of the URL>/<file name>, checked against the sha256
 * when the fragment gives one (and then remembered in a sidecar, so repeat runs are instant).
 */
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { AutoGLMError } from '../../errors.ts';
import { cacheLayout, fileSize, hasVerifiedFile, recordVerified, removeQuietly } from './cache.ts';
import { downloadFile } from './http.ts';
import type { PullEnv, PullResult, TransferOptions } from './types.ts';

export interface UrlSource {
  readonly kind: 'url';
  /** The address without its fragment. */
  readonly url: string;
  readonly sha256?: string;
}

function invalid(spec: string, why: string): AutoGLMError {
  return new AutoGLMError('model_source_invalid', `${spec}: ${why}`, {
    hint: 'write https://host/path/model.gguf, optionally with #sha256=<64 hex digits>',
  });
}

export function parseUrlSource(spec: string): UrlSource {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw invalid(spec, 'not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid(spec, 'only http and https are fetched');
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid(spec, 'credentials in the URL are not supported');
  }
  const params = new URLSearchParams(url.hash.slice(1));
  const unknown = [...params.keys()].filter((k) => k !== 'sha256');
  if (unknown.length > 0) throw invalid(spec, `unknown fragment key ${unknown.join(', ')} (sha256 is known)`);
  const sha256 = params.get('sha256');
  if (sha256 !== null && !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    throw invalid(spec, 'sha256 must be 64 hex digits');
  }
  if (!url.pathname.toLowerCase().endsWith('.gguf')) throw invalid(spec, 'the URL must name a .gguf file');
  url.hash = '';
  return { kind: 'url', url: url.href, ...(sha256 === null ? {} : { sha256: sha256.toLowerCase() }) };
}

/** Where a URL's file lives in the cache: one folder per URL, the file under its own name. */
export function urlCachePath(src: UrlSource, env: PullEnv = process.env): string {
  const key = createHash('sha256').update(src.url).digest('hex').slice(0, 16);
  const name = basename(decodeURIComponent(new URL(src.url).pathname));
  return join(cacheLayout(env).gguf, `url-${key}`, name);
}

export async function pullUrl(
  src: UrlSource,
  opts: TransferOptions & { readonly env?: PullEnv } = {},
): Promise<PullResult> {
  const dest = urlCachePath(src, opts.env);
  const label = basename(dest);
  if (src.sha256 === undefined) {
    if ((await fileSize(dest)) !== undefined) return { kind: 'gguf', path: dest };
  } else if (await hasVerifiedFile(dest, src.sha256, label, opts)) {
    return { kind: 'gguf', path: dest };
  } else {
    // Present but different (the expected sha256 changed): fetch it again.
    await removeQuietly(dest);
  }
  const sha256 = await downloadFile(
    { url: src.url, dest, label, ...(src.sha256 ? { sha256: src.sha256 } : {}) },
    opts,
  );
  if (sha256 !== undefined) await recordVerified(dest, sha256);
  return { kind: 'gguf', path: dest };
}
