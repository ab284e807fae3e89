/**
 * From what a user names (nothing, a source such as `hf:org/repo`, a GGUF file or a model
 * folder) to a ready ONNX model folder: pull when needed, build GGUF once per
 * profile/precision, and reuse the cached build while its source is unchanged.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { autoglmHome } from './pull/cache.ts';
import { cachedSha256, DEFAULT_MODEL, pullModel } from './pull/index.ts';
import { buildFromGguf } from './build/index.ts';
import { BUILDER_VERSION } from './build/hf-config.ts';
import type { BuildOptions } from './build/options.ts';

export const DEFAULT_BUILD: BuildOptions = { profile: 'fast', precision: 'int4' };

export interface ResolveOptions {
  readonly build?: BuildOptions;
  readonly onProgress?: (message: string) => void;
}

export function isModelFolder(path: string): boolean {
  return (
    existsSync(path) &&
    statSync(path).isDirectory() &&
    existsSync(join(path, 'config.json')) &&
    existsSync(join(path, 'onnx'))
  );
}

/** Whether `dir` holds this builder's build of the source with this sha256. */
function isCurrentBuild(dir: string, sha: string): boolean {
  try {
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
      autoglm?: { sourceSha256?: string; builder?: number };
    };
    return cfg.autoglm?.sourceSha256 === sha && cfg.autoglm.builder === BUILDER_VERSION;
  } catch {
    return false;
  }
}

export function modelDirFor(name: string, o: BuildOptions): string {
  return join(
    autoglmHome(),
    'models',
    `${name}-${o.profile}-${o.precision}${o.headGating === true ? '-gated' : ''}`,
  );
}

export interface ResolvedModel {
  readonly dir: string;
  /** The graph to load, relative to dir/onnx (exports may hold several variants). */
  readonly fileName: string;
}

function progressLine(p: { phase: string; file: string; done: number; total: number | undefined }): string {
  const total = p.total === undefined ? '' : ` of ${(p.total / 1e6).toFixed(1)}`;
  return `${p.phase} ${p.file}: ${(p.done / 1e6).toFixed(1)}${total} MB`;
}

export async function resolveModel(
  spec: string | undefined,
  options: ResolveOptions = {},
): Promise<ResolvedModel> {
  const o = options.build ?? DEFAULT_BUILD;
  if (spec !== undefined && isModelFolder(spec)) return { dir: spec, fileName: 'model.onnx' };
  const pulled = await pullModel(spec ?? DEFAULT_MODEL.source, {
    onProgress: (p) => options.onProgress?.(progressLine(p)),
    onMessage: (m) => options.onProgress?.(m),
  });
  if (pulled.kind === 'onnx') return { dir: pulled.dir, fileName: basename(pulled.modelFile) };
  // The pull verified the file; its sidecar makes this a stat, not a re-hash.
  const sha = await cachedSha256(pulled.path);
  const name = spec === undefined ? DEFAULT_MODEL.name : basename(pulled.path, '.gguf').toLowerCase();
  const dir = modelDirFor(name, o);
  if (!(isModelFolder(dir) && isCurrentBuild(dir, sha))) {
    options.onProgress?.(`building ${dir} (${o.profile}, ${o.precision})`);
    await buildFromGguf(pulled.path, dir, o, sha);
  }
  return { dir, fileName: 'model.onnx' };
}
