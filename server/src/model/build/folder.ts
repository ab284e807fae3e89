/**
 * Writes a complete model folder atomically: everything goes into a temporary sibling
 * folder which is renamed into place only when the last byte is on disk, so an interrupted
 * or failed build leaves nothing half-written under the final name.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { asStorageError } from '../../errors.ts';
import type { ModelDef, WriteResult } from '../onnx/model.ts';
import { writeModel } from '../onnx/model.ts';

export interface FolderContents {
  /** File name → JSON value, written pretty-printed. */
  readonly json: Readonly<Record<string, unknown>>;
  readonly model: ModelDef;
  readonly modelFile: string;
  readonly externalData?: boolean;
}

function tempSibling(dir: string, tag: string): string {
  return join(dirname(dir), `.${basename(dir)}.${tag}-${process.pid}-${Date.now().toString(36)}`);
}

export async function writeModelFolder(dir: string, contents: FolderContents): Promise<WriteResult> {
  await mkdir(dirname(dir), { recursive: true });
  const tmp = tempSibling(dir, 'partial');
  try {
    await mkdir(join(tmp, 'onnx'), { recursive: true });
    for (const [name, value] of Object.entries(contents.json)) {
      await writeFile(join(tmp, name), `${JSON.stringify(value, null, 2)}\n`);
    }
    const result = await writeModel(
      join(tmp, 'onnx', contents.modelFile),
      contents.model,
      contents.externalData,
    );
    await replaceDir(tmp, dir);
    return result;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw asStorageError(err, dir);
  }
}

/** rename() cannot replace a non-empty folder: move the old one aside first, then drop it. */
async function replaceDir(from: string, to: string): Promise<void> {
  const old = tempSibling(to, 'old');
  let moved = false;
  try {
    await rename(to, old);
    moved = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await rename(from, to);
  if (moved) await rm(old, { recursive: true, force: true });
}
