/**
 * Turns TypeBox validation errors into one readable line per problem, each led by the path of
 * the value at fault (`nodes["node-a"].compression.level: must be <= 9`).
 *
 * TypeBox reports every branch of a union and an aggregate next to per-key errors; this keeps
 * what a person needs: for a union tagged by a `const` property (our discriminated unions) only
 * the errors of the branch the tag selects, one line per unknown or missing key, no duplicates.
 */
import type { TSchema } from 'typebox';
import { Settings } from 'typebox/system';
import type { TLocalizedValidationError } from 'typebox/error';
import { Value } from 'typebox/value';

/**
 * TypeBox stops collecting at `maxErrors` (8 by default, a guard for request validation) per
 * context. Documents we report on are configuration, so allow enough for every problem at
 * once; the setting is global, so it is raised only for the duration of one synchronous call.
 */
const MAX_ERRORS = 256;

interface Problem {
  readonly instancePath: string;
  readonly schemaPath: string;
  readonly keyword: string;
  readonly message: string;
}

/** Every problem with `value` against `schema`, formatted; empty when the value is valid. */
export function schemaErrors(schema: TSchema, value: unknown): string[] {
  const problems = narrowUnions(collect(schema, value).flatMap((e) => expand(schema, e)));
  const lines = problems
    .toSorted((a, b) => (a.instancePath < b.instancePath ? -1 : a.instancePath > b.instancePath ? 1 : 0))
    .map((p) => `${formatPath(p.instancePath)}: ${p.message}`);
  return [...new Set(lines)];
}

function collect(schema: TSchema, value: unknown): TLocalizedValidationError[] {
  const saved = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: MAX_ERRORS });
  try {
    return Value.Errors(schema, value);
  } finally {
    Settings.Set({ maxErrors: saved });
  }
}

/** `/nodes/node-a/maxBatchSize` → `nodes["node-a"].maxBatchSize`; the root reads `file`. */
export function formatPath(pointer: string): string {
  if (pointer === '') return 'file';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^[A-Za-z_$][\w$]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** One problem per offending key for aggregate keywords; clearer messages for a few others. */
function expand(schema: TSchema, e: TLocalizedValidationError): Problem[] {
  const at = (key: string): string => `${e.instancePath}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  const base = { schemaPath: e.schemaPath, keyword: e.keyword };
  switch (e.keyword) {
    case 'additionalProperties': {
      const properties = schemaAt(schema, e.schemaPath)['properties'];
      const known = typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
      return e.params.additionalProperties.map((key) => ({
        ...base,
        instancePath: at(key),
        message: unknownKeyMessage(key, known),
      }));
    }
    case 'required':
      return e.params.requiredProperties.map((key) => ({
        ...base,
        instancePath: at(key),
        message: 'is required',
      }));
    case 'const':
      return [
        {
          ...base,
          instancePath: e.instancePath,
          message: `must be ${JSON.stringify(e.params.allowedValue)}`,
        },
      ];
    case 'propertyNames':
      return []; // each bad name is also reported on its own, at its path
    case 'boolean':
      // `additionalProperties: false` reports each extra key as "schema is false" too.
      return e.schemaPath.endsWith('/additionalProperties')
        ? []
        : [{ ...base, instancePath: e.instancePath, message: e.message }];
    default:
      return [{ ...base, instancePath: e.instancePath, message: keyMessageOr(schema, e) }];
  }
}

/** A key that breaks `propertyNames` reads as such, in the words of that schema's description if any. */
function keyMessageOr(schema: TSchema, e: TLocalizedValidationError): string {
  if (!e.schemaPath.endsWith('/propertyNames')) return e.message;
  const description = schemaAt(schema, e.schemaPath)['description'];
  return `is not a valid key; expected ${typeof description === 'string' ? description : e.message}`;
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const close = known.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
  return close === undefined ? 'unknown key' : `unknown key (did you mean ${close}?)`;
}

/** The subschema at a TypeBox schema path (`#/properties/defaults`), if it is an object. */
function schemaAt(schema: TSchema, schemaPath: string): Record<string, unknown> {
  let node: unknown = schema;
  for (const raw of schemaPath.replace(/^#\/?/, '').split('/')) {
    if (raw === '' || typeof node !== 'object' || node === null) continue;
    node = (node as Record<string, unknown>)[raw.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>) : {};
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * For each `anyOf` failure, keeps the errors of the branches whose tag (a `const` property of
 * the value) matches. No branch matches: the tag itself is wrong, so report its allowed values.
 * Several match (e.g. the tag is missing): report what they all agree on.
 */
function narrowUnions(problems: Problem[]): Problem[] {
  let out = problems;
  for (const union of problems.filter((p) => p.keyword === 'anyOf')) {
    const prefix = `${union.schemaPath}/anyOf/`;
    const branches = new Map<string, Problem[]>();
    const inUnion = (p: Problem): boolean =>
      p.schemaPath.startsWith(prefix) &&
      (p.instancePath === union.instancePath || p.instancePath.startsWith(`${union.instancePath}/`));
    for (const p of out) {
      if (!inUnion(p)) continue;
      const index = p.schemaPath.slice(prefix.length).split('/')[0] ?? '';
      branches.set(index, [...(branches.get(index) ?? []), p]);
    }
    if (branches.size === 0) continue;
    const keep = unionVerdict(union, [...branches.values()]);
    out = out.filter((p) => p !== union && !inUnion(p));
    out.push(...keep);
  }
  return out;
}

function unionVerdict(union: Problem, branches: Problem[][]): Problem[] {
  const isTagMismatch = (p: Problem): boolean =>
    p.keyword === 'const' && p.instancePath.lastIndexOf('/') === union.instancePath.length;
  const matching = branches.filter((errors) => !errors.some(isTagMismatch));
  if (matching.length === 1) return matching[0] ?? [];
  if (matching.length === 0) {
    const tags = branches.flatMap((errors) => errors.filter(isTagMismatch));
    const first = tags[0];
    if (first === undefined) return [union];
    const allowed = tags.map((p) => p.message.replace(/^must be /, ''));
    return [{ ...first, message: `must be one of ${allowed.join(', ')}` }];
  }
  const key = (p: Problem): string => `${p.instancePath}\u0000${p.message}`;
  const [head = [], ...rest] = matching;
  const common = head.filter((p) => rest.every((errors) => errors.some((q) => key(q) === key(p))));
  return common.length > 0 ? common : [union];
}
