/**
 * Embeds each policy's Rego (policies/<name>/src.rego, which `opa test` runs) into its
 * Gatekeeper ConstraintTemplate (policies/<name>/template.yaml, targets[0].rego):
 *   node policies/render.ts           rewrite the templates
 *   node policies/render.ts --check   list the stale ones and exit 1, writing nothing
 */
import { fileURLToPath } from 'node:url';
import { embedCli, type Embedding } from '../scripts/embed-yaml.ts';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

export const POLICIES = [
  'autoglm-deployment-caps',
  'autoglm-pod-security',
  'autoglm-model-source-allowlist',
  'autoglm-tuning-bounds',
] as const;

export const TEMPLATES: readonly Embedding[] = POLICIES.map((name) => ({
  target: `policies/${name}/template.yaml`,
  source: `policies/${name}/src.rego`,
  path: ['spec', 'targets', 0, 'rego'],
}));

if (import.meta.main)
  process.exitCode = await embedCli(ROOT, TEMPLATES, process.argv, 'node policies/render.ts');
