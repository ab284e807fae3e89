/** Writes tokenizer files into a model folder, under the names transformers looks for. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { asStorageError } from '../../errors.ts';
import type { TokenizerFiles } from './types.ts';

export const TOKENIZER_FILE_NAMES = {
  tokenizerJson: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  specialTokensMap: 'special_tokens_map.json',
} as const;

/**
 * tokenizer.json, tokenizer_config.json and special_tokens_map.json. The ids in `generation`
 * belong in config.json / generation_config.json, which the model builder writes.
 */
export async function writeTokenizerFiles(dir: string, files: TokenizerFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  const writes = (Object.keys(TOKENIZER_FILE_NAMES) as (keyof typeof TOKENIZER_FILE_NAMES)[]).map(
    async (key) => {
      const file = path.join(dir, TOKENIZER_FILE_NAMES[key]);
      // tokenizer.json is large (mostly the vocabulary and merges): compact, as `tokenizers` writes it.
      const text = key === 'tokenizerJson' ? JSON.stringify(files[key]) : JSON.stringify(files[key], null, 2);
      try {
        await writeFile(file, `${text}\n`);
      } catch (err) {
        throw asStorageError(err, file);
      }
    },
  );
  await Promise.all(writes);
}
