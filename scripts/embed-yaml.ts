/**
 * Keeps one source of truth for text that must also live inside a Kubernetes manifest (Rego in
 * a Gatekeeper ConstraintTemplate, Lua in Argo CD's argocd-cm): the manifest is the source
 * file's text set as a block scalar at one path of a hand-written YAML document, whose comments
 * and layout are kept, formatted as `prettier --check` expects.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { isDocument, parseAllDocuments, Scalar } from 'yaml';

export interface Embedding {
  /** The manifest, relative to the root. */
  readonly target: string;
  /** The text file embedded in it, relative to the root. */
  readonly source: string;
  /** Where in the manifest's first document the text goes. */
  readonly path: readonly (string | number)[];
}

/** The manifest as it should be: its current content with the source's text at the path. */
export async function renderEmbedding(root: string, e: Embedding): Promise<string> {
  const targetPath = join(root, e.target);
  const [doc, ...rest] = parseAllDocuments(await readFile(targetPath, 'utf8'));
  if (doc === undefined || !isDocument(doc) || rest.length > 0)
    throw new Error(`${e.target}: expected exactly one YAML document`);
  if (doc.errors.length > 0) throw new Error(`${e.target}: ${doc.errors.map((x) => x.message).join('; ')}`);
  const scalar = new Scalar(await readFile(join(root, e.source), 'utf8'));
  scalar.type = Scalar.BLOCK_LITERAL;
  doc.setIn(e.path, scalar);
  const options = (await resolveConfig(targetPath)) ?? {};
  return format(doc.toString({ lineWidth: 0 }), { ...options, filepath: targetPath });
}

/** The embedded text as the manifest holds it now, or undefined where the path is empty. */
export async function embeddedText(root: string, e: Embedding): Promise<unknown> {
  const [doc] = parseAllDocuments(await readFile(join(root, e.target), 'utf8'));
  return doc !== undefined && isDocument(doc) ? doc.getIn(e.path) : undefined;
}

/** The manifests whose content differs from what their source renders. */
export async function staleEmbeddings(root: string, embeddings: readonly Embedding[]): Promise<string[]> {
  const stale: string[] = [];
  for (const e of embeddings) {
    const have = await readFile(join(root, e.target), 'utf8');
    if (have !== (await renderEmbedding(root, e))) stale.push(e.target);
  }
  return stale;
}

/** `--check` lists the stale manifests and returns 1; otherwise rewrites them and returns 0. */
export async function embedCli(
  root: string,
  embeddings: readonly Embedding[],
  argv: readonly string[],
  command: string,
): Promise<number> {
  if (argv.includes('--check')) {
    const stale = await staleEmbeddings(root, embeddings);
    for (const path of stale) console.error(`stale: ${path} (run ${command})`);
    return stale.length > 0 ? 1 : 0;
  }
  for (const e of embeddings) {
    await writeFile(join(root, e.target), await renderEmbedding(root, e));
    console.log(`wrote ${e.target} from ${e.source}`);
  }
  return 0;
}
