/**
 * Renders the AutoGLMDeployment CustomResourceDefinition from the TypeBox schema in
 * deployment.ts. A CRD needs a *structural* OpenAPI v3 schema, which is narrower than JSON
 * Schema: no `const`, unions only as enums, no `additionalProperties: false` next to
 * `properties` (unknown fields are pruned instead), maps as `additionalProperties`. Fields that
 * have a default are not required: the API server fills them in before validation.
 */
import {
  AutoGLMDeploymentSpecSchema,
  AutoGLMDeploymentStatusSchema,
  GROUP,
  KIND,
  PLURAL,
  PRINTER_COLUMNS,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './deployment.ts';

type Json = Record<string, unknown>;

const DROP = new Set(['$id', '$schema', 'title']);

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A union of string constants becomes one enum; anything else stays as the API server allows. */
function collapseUnion(branches: unknown[], rest: Json): Json | undefined {
  const consts = branches.map((b) => (isObject(b) ? b['const'] : undefined));
  if (consts.every((c) => typeof c === 'string')) return { type: 'string', ...rest, enum: consts };
  return undefined;
}

function properties(props: Json, required: unknown): { properties: Json; required?: string[] } {
  const out: Json = {};
  for (const [k, v] of Object.entries(props)) out[k] = structural(v);
  const req = (Array.isArray(required) ? (required as string[]) : []).filter((k) => {
    const p = props[k];
    return !(isObject(p) && 'default' in p);
  });
  return req.length > 0 ? { properties: out, required: req } : { properties: out };
}

/**
 * An object default with its nested defaults filled in. The API server checks a default (CEL
 * rules included) as written, without applying the defaults beneath it, so `default: {}` on an
 * object whose rule reads `self.min` would be refused.
 */
function completeDefault(value: unknown, node: Json): unknown {
  const props = node['properties'];
  if (!isObject(value) || !isObject(props)) return value;
  const out: Json = { ...value };
  for (const [k, p] of Object.entries(props)) {
    if (!isObject(p)) continue;
    const v = out[k] ?? structuredClone(p['default']);
    if (v !== undefined) out[k] = completeDefault(v, p);
  }
  return out;
}

/** One JSON Schema node → its structural equivalent. */
export function structural(node: unknown): Json {
  if (!isObject(node)) throw new Error(`not a schema: ${JSON.stringify(node)}`);
  const { anyOf, const: constant, properties: props, required, patternProperties, items, ...all } = node;
  const rest = Object.fromEntries(
    Object.entries(all).filter(([k, v]) => !DROP.has(k) && !(k === 'additionalProperties' && v === false)),
  );
  if (Array.isArray(anyOf)) {
    if (rest['x-kubernetes-int-or-string'] === true) return { ...rest, anyOf };
    const collapsed = collapseUnion(anyOf, rest);
    if (collapsed === undefined) throw new Error(`unsupported union: ${JSON.stringify(anyOf)}`);
    return collapsed;
  }
  if (typeof constant === 'string') return { type: 'string', ...rest, enum: [constant] };
  const out: Json = { ...rest };
  if (isObject(out['default'])) out['default'] = completeDefault(out['default'], node);
  if (isObject(props)) Object.assign(out, properties(props, required));
  if (isObject(patternProperties)) {
    const [only] = Object.values(patternProperties);
    out['type'] = 'object';
    out['additionalProperties'] = structural(only);
    delete out['propertyNames'];
  }
  if (items !== undefined) out['items'] = structural(items);
  return out;
}

const plain = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema));

export function deploymentCrd(): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'autoglm' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: SHORT_NAMES,
        categories: ['autoglm'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'A language model served by AutoGLM: replicas of its server, a Service, and a tuning loop.',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: structural(plain(AutoGLMDeploymentSpecSchema)),
                status: structural(plain(AutoGLMDeploymentStatusSchema)),
              },
              required: ['spec'],
            },
          },
        },
      ],
    },
  };
}
