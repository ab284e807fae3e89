/** A real server on loopback over a seeded random model, for the HTTP suites. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVING_PARAMS_DEFAULTS } from '../../crds/tuning.ts';
import { buildRandom } from '../../server/src/model/build/index.ts';
import {
  DEFAULT_SERVE,
  startServer,
  type RunningServer,
  type ServeOptions,
} from '../../server/src/http/server.ts';

export async function randomModel(
  profile: 'fast' | 'portable' = 'fast',
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'autoglm-server-'));
  const dir = join(root, 'model');
  await buildRandom('small', dir, { profile, precision: 'fp32' }, { seed: 5 });
  return { dir, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export async function serve(dir: string, overrides: Partial<ServeOptions> = {}): Promise<RunningServer> {
  const s = await startServer({
    ...DEFAULT_SERVE,
    model: dir,
    servedModelName: 'test-model',
    port: 0,
    threads: 2,
    maxModelLen: 256,
    kvCacheTokens: 16 * 256,
    params: { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 16 },
    version: 'test',
    ...overrides,
  });
  await s.ready;
  return s;
}

/** Reads one numeric sample from Prometheus text, e.g. value(text, 'autoglm_num_requests_running'). */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m?.[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}
