/**
 * Regenerates the files derived from crds/ (see crds/generated.ts):
 *   node scripts/gen-crds.ts           write them
 *   node scripts/gen-crds.ts --check   list the stale ones and exit 1, writing nothing
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GENERATED_FILES, REPO_ROOT, renderFile, staleFiles } from '../crds/generated.ts';

if (process.argv.includes('--check')) {
  const stale = await staleFiles();
  for (const path of stale) console.error(`stale: ${path} (run node scripts/gen-crds.ts)`);
  process.exitCode = stale.length > 0 ? 1 : 0;
} else {
  for (const file of GENERATED_FILES) {
    const target = join(REPO_ROOT, file.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, await renderFile(file));
    console.log(`wrote ${file.path}`);
  }
}
