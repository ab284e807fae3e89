/** Labels and names shared by every child of an AutoGLMDeployment. */
import { API_VERSION, KIND, type AutoGLMDeployment } from '../../../crds/deployment.ts';
import type { OwnerReference } from '../kube/rest.ts';

export const MANAGED_BY = 'autoglm-operator';
export const OWNER_LABEL = 'serving.autoglm.io/deployment';
/** Selects every child the operator made, for the informers. */
export const MANAGED_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
export const SERVER_PORT = 8000;
export const METRICS_PORT = 9090;
export const TUNING_MOUNT = '/etc/autoglm/tuning';

export function selectorLabels(agd: AutoGLMDeployment): Record<string, string> {
  return { [OWNER_LABEL]: agd.metadata.name };
}

export function childLabels(agd: AutoGLMDeployment): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'autoglm-server',
    'app.kubernetes.io/instance': agd.metadata.name,
    'app.kubernetes.io/component': 'inference',
    'app.kubernetes.io/part-of': 'autoglm',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    ...selectorLabels(agd),
  };
}

export function ownerReference(agd: AutoGLMDeployment): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: agd.metadata.name,
    uid: agd.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export const tuningConfigMapName = (agd: AutoGLMDeployment) => `${agd.metadata.name}-tuning`;
