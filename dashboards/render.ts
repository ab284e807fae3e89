/**
 * The dashboards shipped in the Helm chart, rendered from the TypeScript beside this file:
 *   node dashboards/render.ts           write them
 *   node dashboards/render.ts --check   list the ones that differ from their source and exit 1
 * test/dashboards checks them for drift and runs every query against a real Prometheus.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import type { DashboardModel } from './common.ts';
import { operatorDashboard } from './operator.ts';
import { servingDashboard } from './serving.ts';
import { tuningDashboard } from './tuning.ts';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface DashboardFile {
  /** Relative to the repository root. */
  readonly file: string;
  build(): DashboardModel;
}

export const DASHBOARDS: readonly DashboardFile[] = [
  { file: 'charts/autoglm/dashboards/autoglm-serving.json', build: servingDashboard },
  { file: 'charts/autoglm/dashboards/autoglm-tuning.json', build: tuningDashboard },
  { file: 'charts/autoglm/dashboards/autoglm-operator.json', build: operatorDashboard },
];

/** The file's content as committed: the dashboard's JSON, formatted as `prettier --check` expects. */
export async function renderDashboard(d: DashboardFile): Promise<string> {
  const filepath = join(REPO_ROOT, d.file);
  const options = (await resolveConfig(filepath)) ?? {};
  return format(JSON.stringify(d.build(), null, 2), { ...options, filepath });
}

/** The dashboard files whose committed content differs from what their source renders, or that are missing. */
export async function staleDashboards(): Promise<string[]> {
  const stale: string[] = [];
  for (const d of DASHBOARDS) {
    const have = await readFile(join(REPO_ROOT, d.file), 'utf8').catch(() => undefined);
    if (have !== (await renderDashboard(d))) stale.push(d.file);
  }
  return stale;
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--check')) {
    const stale = await staleDashboards();
    for (const file of stale) console.error(`stale: ${file} (run node dashboards/render.ts)`);
    process.exitCode = stale.length > 0 ? 1 : 0;
    return;
  }
  for (const d of DASHBOARDS) {
    const target = join(REPO_ROOT, d.file);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, await renderDashboard(d));
    console.log(`wrote ${d.file}`);
  }
}

if (import.meta.main) await main(process.argv.slice(2));
