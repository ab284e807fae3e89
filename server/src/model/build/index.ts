/**
 * `autoglm model build`: a GGUF file or a named random size in, a Hugging Face-style ONNX
 * model folder out (config.json, generation_config.json, tokenizer files, onnx/model.onnx).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Architecture } from '../config.ts';
import { openGguf } from '../gguf/reader.ts';
import { ggufWeights, type GgufTensors } from '../gguf/source.ts';
import { tokenizerFilesFromGguf } from '../tokenizer/fromGguf.ts';
import { syntheticTokenizerFiles } from '../tokenizer/synthetic.ts';
import type { WeightSource } from '../weights.ts';
import { buildDecoder } from './decoder.ts';
import { writeModelFolder } from './folder.ts';
import { generationConfig, hfConfig, type BuildProvenance } from './hf-config.ts';
import type { BuildOptions } from './options.ts';
import { randomConfig, randomWeights, type RandomSize } from './random.ts';

export interface BuildReport {
  readonly dir: string;
  readonly seconds: number;
  readonly modelBytes: number;
  readonly externalDataBytes: number;
  readonly weightTypes: Readonly<Record<string, number>>;
}

interface TokenizerFiles {
  readonly tokenizerJson: object;
  readonly tokenizerConfig: object;
  readonly specialTokensMap: object;
}

async function writeFolder(
  src: WeightSource,
  tok: TokenizerFiles,
  dir: string,
  o: BuildOptions,
  provenance: BuildProvenance,
): Promise<BuildReport> {
  const started = performance.now();
  const model = buildDecoder(src, o);
  const result = await writeModelFolder(dir, {
    json: {
      'config.json': hfConfig(src.config, o, provenance),
      'generation_config.json': generationConfig(src.config),
      'tokenizer.json': tok.tokenizerJson,
      'tokenizer_config.json': tok.tokenizerConfig,
      'special_tokens_map.json': tok.specialTokensMap,
    },
    model,
    modelFile: 'model.onnx',
    ...(o.externalData === undefined ? {} : { externalData: o.externalData }),
  });
  const weightTypes: Record<string, number> = {};
  for (const n of src.names()) {
    const t = src.get(n)?.sourceType ?? '?';
    weightTypes[t] = (weightTypes[t] ?? 0) + 1;
  }
  return {
    dir,
    seconds: (performance.now() - started) / 1000,
    modelBytes: result.modelBytes,
    externalDataBytes: result.externalDataBytes,
    weightTypes,
  };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Reads every tensor's raw bytes once; dequantization happens lazily per tensor. */
export async function loadGgufTensors(path: string): Promise<GgufTensors> {
  const file = await openGguf(path);
  try {
    const raw = new Map<string, Uint8Array>();
    for (const t of file.tensors) raw.set(t.name, await file.readRaw(t.name));
    return {
      metadata: file.metadata,
      tensors: file.tensors,
      raw: (name) => {
        const r = raw.get(name);
        if (r === undefined) throw new Error(`no tensor ${name}`);
        return r;
      },
    };
  } finally {
    await file.close();
  }
}

export async function buildFromGguf(
  path: string,
  dir: string,
  o: BuildOptions,
  sha256?: string,
): Promise<BuildReport> {
  const started = performance.now();
  const g = await loadGgufTensors(path);
  const src = ggufWeights(g);
  const tok = tokenizerFilesFromGguf(g.metadata);
  const report = await writeFolder(src, tok, dir, o, {
    source: path,
    ...(sha256 === undefined ? {} : { sourceSha256: sha256 }),
  });
  return { ...report, seconds: (performance.now() - started) / 1000 };
}

export async function buildRandom(
  size: RandomSize,
  dir: string,
  o: BuildOptions,
  options: { architecture?: Architecture; seed?: number } = {},
): Promise<BuildReport> {
  const config = randomConfig(size, options.architecture ?? 'llama');
  const src = randomWeights(config, options.seed ?? 0);
  const tok = syntheticTokenizerFiles(config.vocabSize);
  return writeFolder(src, tok, dir, o, { source: `random:${size}:seed=${options.seed ?? 0}` });
}
