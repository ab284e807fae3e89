/**
 * Embeds the Argo CD health check (gitops/argocd/health.lua, which the tests run) into the
 * argocd-cm patch that installs it (gitops/argocd/argocd-cm-patch.yaml):
 *   node gitops/argocd/render.ts           rewrite the patch
 *   node gitops/argocd/render.ts --check   exit 1 if it is stale, writing nothing
 */
import { fileURLToPath } from 'node:url';
import { embedCli, type Embedding } from '../../scripts/embed-yaml.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Argo CD's key for a kind's health script: resource.customizations.health.<group>_<kind>. */
export const HEALTH_KEY = 'resource.customizations.health.serving.autoglm.io_AutoGLMDeployment';

export const ARGOCD_CM: readonly Embedding[] = [
  {
    target: 'gitops/argocd/argocd-cm-patch.yaml',
    source: 'gitops/argocd/health.lua',
    path: ['data', HEALTH_KEY],
  },
];

if (import.meta.main)
  process.exitCode = await embedCli(ROOT, ARGOCD_CM, process.argv, 'node gitops/argocd/render.ts');
