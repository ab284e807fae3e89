/**
 * The policy tools the tests run, built from Go modules by scripts/setup-opa.sh into
 * $AUTOGLM_HOME/tools/bin (AUTOGLM_HOME defaults to ~/.cache/autoglm).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function toolsBin(): string {
  return join(process.env['AUTOGLM_HOME'] ?? join(homedir(), '.cache/autoglm'), 'tools/bin');
}

export interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command in the repository root and collects its output. */
export function run(cmd: string, args: readonly string[], input?: string): Run {
  const res: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(input === undefined ? {} : { input }),
  });
  if (res.error !== undefined) throw res.error;
  return { status: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}

/**
 * opa at its pinned version, building it first where needed (minutes on 2 cores; the script is
 * a no-op once it is there). With AUTOGLM_GATOR=1 the script builds gator too.
 */
export function ensurePolicyTools(): { opa: string; gator: string | undefined } {
  const setup = spawnSync('bash', [join(ROOT, 'scripts/setup-opa.sh')], { cwd: ROOT, stdio: 'inherit' });
  if (setup.status !== 0) throw new Error(`scripts/setup-opa.sh failed (exit ${String(setup.status)})`);
  const gator = join(toolsBin(), 'gator');
  return { opa: join(toolsBin(), 'opa'), gator: existsSync(gator) ? gator : undefined };
}
