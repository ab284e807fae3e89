/**
 * The small toolkit the request parsers are built from: a list that collects every problem
 * (so one response reports them all), and a reader over one JSON object that checks fields
 * and remembers which keys it looked at (the rest are the request's ignored fields).
 *
 * An explicit `null` reads as absent everywhere: the OpenAI API treats `"temperature": null`
 * as "use the default", and the SDKs send nulls for unset fields.
 */

/** OpenAI's `code` values for request validation failures. */
export const ISSUE_CODES = [
  'invalid_type',
  'invalid_value',
  'missing_required_parameter',
  'unsupported_parameter',
  'unsupported_value',
] as const;
export type IssueCode = (typeof ISSUE_CODES)[number];

/** One problem with a request. `param` is OpenAI's: a dotted path such as `messages[1].content`. */
export interface RequestIssue {
  readonly param: string | null;
  readonly code: IssueCode;
  readonly message: string;
}

export interface NumberRule {
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** The minimum itself is not allowed (`> min`, not `>= min`). */
  readonly minExclusive?: boolean;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a JSON value reads in a message: "a string", "an integer", "null". */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** Collects problems; the parsers keep going after one so that all are reported together. */
export class Issues {
  readonly list: RequestIssue[] = [];

  get empty(): boolean {
    return this.list.length === 0;
  }

  add(param: string | null, code: IssueCode, message: string): void {
    this.list.push({ param, code, message });
  }

  type(param: string, expected: string, value: unknown): void {
    this.add(
      param,
      'invalid_type',
      `Invalid type for '${param}': expected ${expected}, but got ${describeValue(value)} instead.`,
    );
  }

  value(param: string, why: string): void {
    this.add(param, 'invalid_value', `Invalid value for '${param}': ${why}`);
  }

  missing(param: string): void {
    this.add(param, 'missing_required_parameter', `Missing required parameter: '${param}'.`);
  }

  unsupported(param: string, why: string): void {
    this.add(param, 'unsupported_parameter', `Unsupported parameter: '${param}' ${why}`);
  }

  unsupportedValue(param: string, why: string): void {
    this.add(param, 'unsupported_value', `Unsupported value for '${param}': ${why}`);
  }
}

function rangeText(rule: NumberRule): string {
  const low = rule.min === undefined ? '' : `${rule.minExclusive === true ? '>' : '>='} ${rule.min}`;
  const high = rule.max === undefined ? '' : `<= ${rule.max}`;
  return [low, high].filter((part) => part !== '').join(' and ');
}

function inRange(value: number, rule: NumberRule): boolean {
  if (rule.max !== undefined && value > rule.max) return false;
  if (rule.min === undefined) return true;
  return rule.minExclusive === true ? value > rule.min : value >= rule.min;
}

/** Checks one number against a rule; records the problem and returns undefined when it fails. */
export function checkNumber(
  issues: Issues,
  param: string,
  value: unknown,
  rule: NumberRule,
): number | undefined {
  const expected = rule.integer === true ? 'an integer' : 'a number';
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.type(param, expected, value);
    return undefined;
  }
  if (rule.integer === true && !Number.isSafeInteger(value)) {
    issues.type(param, expected, value);
    return undefined;
  }
  if (!inRange(value, rule)) {
    issues.value(param, `expected a value ${rangeText(rule)}, but got ${value} instead.`);
    return undefined;
  }
  return value;
}

export function checkString(issues: Issues, param: string, value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  issues.type(param, 'a string', value);
  return undefined;
}

/**
 * Checks an array's elements one by one; the result keeps only the good ones, so callers
 * must treat it as valid only when no issue was added.
 */
export function checkEach<T>(
  items: readonly unknown[],
  param: string,
  check: (item: unknown, itemParam: string, index: number) => T | undefined,
): T[] {
  const out: T[] = [];
  items.forEach((item, index) => {
    const value = check(item, `${param}[${index}]`, index);
    if (value !== undefined) out.push(value);
  });
  return out;
}

/** Reads the fields of one JSON object, each checked and named by its full `param` path. */
export class FieldReader {
  readonly issues: Issues;
  readonly #object: Readonly<Record<string, unknown>>;
  readonly #path: string;
  readonly #read = new Set<string>();

  constructor(object: Readonly<Record<string, unknown>>, issues: Issues, path = '') {
    this.#object = object;
    this.issues = issues;
    this.#path = path;
  }

  param(key: string): string {
    return this.#path === '' ? key : `${this.#path}.${key}`;
  }

  /** Whether the key is there at all, even as null. */
  present(key: string): boolean {
    return Object.hasOwn(this.#object, key);
  }

  /** The value, or undefined when the key is missing or null. */
  raw(key: string): unknown {
    this.#read.add(key);
    const value = Object.hasOwn(this.#object, key) ? this.#object[key] : undefined;
    return value ?? undefined;
  }

  /** Like raw(), but a missing value is a problem. */
  required(key: string): unknown {
    const value = this.raw(key);
    if (value === undefined) this.issues.missing(this.param(key));
    return value;
  }

  /** A required string: missing and wrong-typed are each one issue. */
  requiredString(key: string): string | undefined {
    const value = this.required(key);
    return value === undefined ? undefined : checkString(this.issues, this.param(key), value);
  }

  string(key: string): string | undefined {
    const value = this.raw(key);
    return value === undefined ? undefined : checkString(this.issues, this.param(key), value);
  }

  boolean(key: string): boolean | undefined {
    const value = this.raw(key);
    if (value === undefined || typeof value === 'boolean') return value;
    this.issues.type(this.param(key), 'a boolean', value);
    return undefined;
  }

  number(key: string, rule: NumberRule): number | undefined {
    const value = this.raw(key);
    return value === undefined ? undefined : checkNumber(this.issues, this.param(key), value, rule);
  }

  numberOr(key: string, rule: NumberRule, fallback: number): number {
    return this.number(key, rule) ?? fallback;
  }

  booleanOr(key: string, fallback: boolean): boolean {
    return this.boolean(key) ?? fallback;
  }

  array(key: string): readonly unknown[] | undefined {
    const value = this.raw(key);
    if (value === undefined || Array.isArray(value)) return value;
    this.issues.type(this.param(key), 'an array', value);
    return undefined;
  }

  object(key: string): FieldReader | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (isRecord(value)) return new FieldReader(value, this.issues, this.param(key));
    this.issues.type(this.param(key), 'an object', value);
    return undefined;
  }

  /** Every key of the object, all marked as read. */
  keys(): string[] {
    const keys = Object.keys(this.#object);
    for (const key of keys) this.#read.add(key);
    return keys;
  }

  /** Keys present in the object that no one read, in the order they came. */
  unread(): string[] {
    return Object.keys(this.#object).filter((key) => !this.#read.has(key));
  }
}

/** A reader for an array element or a request body: it must be a JSON object. */
export function readerFor(issues: Issues, param: string, value: unknown): FieldReader | undefined {
  if (isRecord(value)) return new FieldReader(value, issues, param);
  issues.type(param, 'an object', value);
  return undefined;
}

/** Freezes a tree of plain objects and arrays, so a parsed request cannot change later. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
