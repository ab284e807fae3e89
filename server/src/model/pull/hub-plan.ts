/**
 * Which files of a Hub repository a pull takes. Pure functions of the repository's file list,
 * so every rule is testable without a server.
 */
import { basename, posix } from 'node:path';
import { AutoGLMError } from '../../errors.ts';

export interface HubFile {
  /** Path inside the repository, '/'-separated. */
  readonly path: string;
  readonly size?: number;
  /** Known for LFS files. */
  readonly sha256?: string;
}

export type HubPlan =
  | {
      readonly kind: 'gguf';
      readonly files: readonly HubFile[];
      readonly gguf: string;
      readonly note?: string;
    }
  | {
      readonly kind: 'onnx';
      readonly files: readonly HubFile[];
      readonly modelFile: string;
      readonly note?: string;
    };

export interface HubRequest {
  /** A file named in the source (`hf:org/repo:path`). */
  readonly path?: string | undefined;
  /** ONNX graph variant or GGUF quantization. */
  readonly variant?: string | undefined;
}

/** Quantizations in the order a pull prefers them when the source does not name a file. */
export const GGUF_PREFERENCE = ['Q4_1', 'Q4_0', 'Q8_0', 'Q4_K_M'] as const;

/** ONNX graphs in the order a pull prefers them when neither `model.onnx` nor a variant is given. */
const ONNX_PREFERENCE = [
  'model',
  'model_q4',
  'model_quantized',
  'model_int8',
  'model_uint8',
  'model_fp16',
  'model_q4f16',
];

/** Files that travel with an ONNX graph when the repository has them. */
const ONNX_COMPANIONS = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
];
const ONNX_REQUIRED = ['config.json', 'tokenizer.json'];

const SPLIT_GGUF = /-\d{5}-of-\d{5}\.gguf$/i;

/** A path from a listing that is safe to join under the cache (no absolute, empty, '.' or '..' parts). */
export function isSafeRepoPath(path: string): boolean {
  if (path === '' || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

const isGguf = (path: string): boolean => path.toLowerCase().endsWith('.gguf');
const isOnnx = (path: string): boolean => path.toLowerCase().endsWith('.onnx');

/** Whether the GGUF's name carries quantization `tag` (case-insensitive), e.g. 'x.Q4_1.gguf', 'x-q4_k_m.gguf'. */
export function hasQuantization(path: string, tag: string): boolean {
  const want = tag.toUpperCase();
  const stem = basename(path)
    .replace(/\.gguf$/i, '')
    .toUpperCase();
  return stem.split(/[.-]/).some((token) => token === want || token.endsWith(`_${want}`));
}

function listing(names: readonly string[]): string {
  const shown = names.slice(0, 12).join(', ');
  return names.length > 12 ? `${shown}, … (${names.length} in all)` : shown || '(none)';
}

/** The repository file for an ONNX variant: 'q4f16' → onnx/model_q4f16.onnx; paths pass through. */
export function onnxVariantPath(variant: string): string {
  if (variant.includes('/')) return variant;
  if (isOnnx(variant)) return `onnx/${variant}`;
  return variant === 'fp32' || variant === 'model' ? 'onnx/model.onnx' : `onnx/model_${variant}.onnx`;
}

function onnxPlan(byPath: ReadonlyMap<string, HubFile>, modelFile: string, note?: string): HubPlan {
  const missing = ONNX_REQUIRED.filter((name) => !byPath.has(name));
  if (missing.length > 0) {
    throw new AutoGLMError('model_source_invalid', `${modelFile} has no ${missing.join(' or ')} beside it`, {
      hint: 'an ONNX model folder needs config.json and tokenizer.json at the repository root',
    });
  }
  const data = [...byPath.keys()].filter(
    (p) => p.startsWith(`${modelFile}_data`) || p === `${modelFile}.data`,
  );
  const wanted = [...ONNX_COMPANIONS, modelFile, ...data.sort()];
  const files = wanted.flatMap((p) => byPath.get(p) ?? []);
  return { kind: 'onnx', files, modelFile, ...(note === undefined ? {} : { note }) };
}

/** The graph to load among `graphs` ('onnx/…onnx' paths): the variant asked for, else by ONNX_PREFERENCE. */
export function chooseOnnxGraph(
  graphs: readonly string[],
  variant?: string,
): { modelFile: string; note?: string } {
  if (variant !== undefined) {
    const wanted = onnxVariantPath(variant);
    if (!graphs.includes(wanted)) {
      throw new AutoGLMError('model_not_found', `no ONNX variant ${wanted}; there is ${listing(graphs)}`);
    }
    return { modelFile: wanted };
  }
  const modelFile =
    ONNX_PREFERENCE.map((stem) => `onnx/${stem}.onnx`).find((p) => graphs.includes(p)) ?? graphs[0];
  if (modelFile === undefined) throw new AutoGLMError('model_not_found', 'no ONNX graph (onnx/model*.onnx)');
  if (modelFile === 'onnx/model.onnx') return { modelFile };
  return { modelFile, note: `no onnx/model.onnx; using ${modelFile} (of ${listing(graphs)})` };
}

function ggufPlan(file: HubFile, note?: string): HubPlan {
  if (SPLIT_GGUF.test(file.path)) {
    throw new AutoGLMError('unsupported_quantization', `${file.path} is one part of a split GGUF`, {
      hint: 'split GGUF files are not supported; pick a single-file GGUF',
    });
  }
  return { kind: 'gguf', files: [file], gguf: file.path, ...(note === undefined ? {} : { note }) };
}

function chooseGguf(files: readonly HubFile[], variant?: string): HubPlan {
  const all = files.filter((f) => isGguf(f.path)).sort((a, b) => a.path.localeCompare(b.path));
  const candidates = all.filter((f) => !SPLIT_GGUF.test(f.path) && !/mmproj/i.test(basename(f.path)));
  if (variant !== undefined) {
    const match = all.find((f) => basename(f.path) === variant || hasQuantization(f.path, variant));
    if (match === undefined) {
      throw new AutoGLMError(
        'model_not_found',
        `no ${variant} GGUF; the repository has ${listing(all.map((f) => f.path))}`,
      );
    }
    return ggufPlan(match);
  }
  for (const tag of GGUF_PREFERENCE) {
    const match = candidates.find((f) => hasQuantization(f.path, tag));
    if (match !== undefined) {
      const others = candidates.filter((f) => f !== match).map((f) => f.path);
      const why = `${tag}, by preference ${GGUF_PREFERENCE.join(' > ')}`;
      return ggufPlan(
        match,
        `picked ${match.path} (${why})${others.length > 0 ? `; also there: ${listing(others)}` : ''}`,
      );
    }
  }
  const first = candidates[0];
  if (first === undefined) {
    throw new AutoGLMError(
      'model_not_found',
      'the repository has neither an ONNX model (onnx/model*.onnx) nor a GGUF file',
    );
  }
  return ggufPlan(
    first,
    `picked ${first.path}: none of ${GGUF_PREFERENCE.join(', ')} is there (${listing(candidates.map((f) => f.path))})`,
  );
}

function namedFile(byPath: ReadonlyMap<string, HubFile>, path: string): HubPlan {
  const file = byPath.get(path);
  if (file === undefined) {
    const near = [...byPath.keys()].filter((p) => isGguf(p) || isOnnx(p));
    throw new AutoGLMError('model_not_found', `no file ${path}; model files there: ${listing(near)}`);
  }
  if (isGguf(path)) return ggufPlan(file);
  if (isOnnx(path)) return onnxPlan(byPath, path);
  throw new AutoGLMError('model_source_invalid', `${path} is neither a .gguf nor an .onnx file`);
}

/**
 * The files to fetch: an ONNX folder when the repository has `onnx/model*.onnx` with
 * config.json and tokenizer.json, else one GGUF (named, or chosen by GGUF_PREFERENCE).
 */
export function planHubPull(files: readonly HubFile[], request: HubRequest): HubPlan {
  const safe = files.filter((f) => isSafeRepoPath(f.path));
  const byPath = new Map(safe.map((f) => [f.path, f]));
  const graphs = safe
    .map((f) => f.path)
    .filter((p) => posix.dirname(p) === 'onnx' && isOnnx(p) && basename(p).startsWith('model'))
    .sort();
  if (request.path !== undefined) return namedFile(byPath, request.path);
  const onnxRepo = graphs.length > 0 && ONNX_REQUIRED.every((name) => byPath.has(name));
  if (!onnxRepo) return chooseGguf(safe, request.variant);
  const { modelFile, note } = chooseOnnxGraph(graphs, request.variant);
  return onnxPlan(byPath, modelFile, note);
}
