/** Strict option parsing shared by every subcommand: unknown flags are errors, not ignored. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AutoGLMError } from '../errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<T extends Options>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new AutoGLMError('invalid_argument', err instanceof Error ? err.message : String(err), {
      hint: usage.split('\n')[0] ?? '',
    });
  }
}

export function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new AutoGLMError(
    'invalid_argument',
    `--${flag} must be one of ${allowed.join(', ')}, not "${value}"`,
  );
}

export function intArg(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new AutoGLMError('invalid_argument', `--${flag} must be an integer ≥ ${min}, not "${value}"`);
  return n;
}

export function numArg(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n))
    throw new AutoGLMError('invalid_argument', `--${flag} must be a number, not "${value}"`);
  return n;
}
