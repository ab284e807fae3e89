/**
 * Local sources: a .gguf file, or a folder that already is an ONNX model (config.json,
 * tokenizer.json and onnx/model*.onnx, or model.onnx at its root). Nothing is copied.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { AutoGLMError } from '../../errors.ts';
import { chooseOnnxGraph } from './hub-plan.ts';
import type { PullResult } from './types.ts';

export interface PathSource {
  readonly kind: 'path';
  readonly path: string;
}

const GGUF_MAGIC = 'GGUF';

export function expandPath(path: string): string {
  return resolve(path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path);
}

async function checkGguf(path: string): Promise<PullResult> {
  if (!path.toLowerCase().endsWith('.gguf')) {
    throw new AutoGLMError('model_source_invalid', `${path} is neither a .gguf file nor a model folder`);
  }
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead < 4 || head.toString('latin1') !== GGUF_MAGIC) {
      throw new AutoGLMError('gguf_corrupt', `${path} does not start with the GGUF magic`, {
        hint: 'the file may be truncated, or be another format under a .gguf name',
      });
    }
  } finally {
    await fh.close();
  }
  return { kind: 'gguf', path };
}

async function namesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

async function checkOnnxFolder(dir: string, variant?: string): Promise<PullResult> {
  const top = new Set(await namesIn(dir));
  const graphs = (await namesIn(join(dir, 'onnx')))
    .filter((n) => n.endsWith('.onnx'))
    .map((n) => `onnx/${n}`)
    .sort();
  const missing = ['config.json', 'tokenizer.json'].filter((n) => !top.has(n));
  const rootGraph = variant === undefined && graphs.length === 0 && top.has('model.onnx');
  if (graphs.length === 0 && !rootGraph) missing.push('onnx/model.onnx');
  if (missing.length > 0) {
    throw new AutoGLMError(
      'model_source_invalid',
      `${dir} is not an ONNX model folder: no ${missing.join(', ')}`,
      {
        hint: 'a model folder holds config.json, tokenizer.json and onnx/model.onnx; or name a .gguf file',
      },
    );
  }
  if (rootGraph) return { kind: 'onnx', dir, modelFile: 'model.onnx' };
  return { kind: 'onnx', dir, modelFile: chooseOnnxGraph(graphs, variant).modelFile };
}

/** Checks a local source and says what it is; `variant` picks among onnx/model_*.onnx. */
export async function pullLocal(
  src: PathSource,
  opts: { readonly variant?: string } = {},
): Promise<PullResult> {
  const path = expandPath(src.path);
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new AutoGLMError('model_not_found', `no such file or folder: ${path}`, {
      hint: 'to pull from Hugging Face write hf:org/repo; for a web address write the full https:// URL',
    });
  }
  return st.isDirectory() ? checkOnnxFolder(path, opts.variant) : checkGguf(path);
}
