/**
 * Merges the user's `spec.podTemplate.spec` over the generated PodSpec: objects merge key by
 * key, lists of named items (containers, volumes, env, ports, volumeMounts) merge by name,
 * other lists and scalars are replaced. This is the subset of strategic merge that pod
 * overrides need, and it is pure, so the Deployment stays a function of the spec.
 */
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNamedList = (v: unknown): v is Json[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => isObject(x) && typeof x['name'] === 'string');

function mergeNamed(base: Json[], over: Json[]): Json[] {
  const out = base.map((b) => {
    const o = over.find((x) => x['name'] === b['name']);
    return o === undefined ? b : mergeJson(b, o);
  });
  for (const o of over) if (!base.some((b) => b['name'] === o['name'])) out.push(o);
  return out;
}

export function mergeJson(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (isObject(b) && isObject(v)) out[k] = mergeJson(b, v);
    else if (isNamedList(b) && isNamedList(v)) out[k] = mergeNamed(b, v);
    else out[k] = v;
  }
  return out;
}
