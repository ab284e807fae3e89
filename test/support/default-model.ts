/**
 * The default model as the model suites see it: `npm test` pulls and builds it before they
 * run (scripts/test.ts), so here it only resolves from the cache.
 */
import { resolveModel } from '../../server/src/model/resolve.ts';
import { pullModel, DEFAULT_MODEL } from '../../server/src/model/pull/index.ts';

export async function defaultModelDir(): Promise<string> {
  return (await resolveModel(undefined)).dir;
}

export async function defaultGgufPath(): Promise<string> {
  const pulled = await pullModel(DEFAULT_MODEL.source);
  if (pulled.kind !== 'gguf') throw new Error('the default model source is a GGUF file');
  return pulled.path;
}
