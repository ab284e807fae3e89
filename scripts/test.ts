/**
 * The one entry point for checks: `npm test` (everything CI runs) and `npm run check`
 * (lint, types and unit tests, fast). Suites:
 *   setup  the Python reference environment (scripts/setup-python.sh), then it is required.
 *   unit   co-located *.test.ts under server/, operator/, crds/: no model, no cluster, seconds.
 *   server test/server/*.test.ts: the HTTP server on loopback over seeded random models.
 *   model  test/model/*.test.ts: real onnxruntime on the default model (pulled and built once, cached).
 */
import { spawnSync } from 'node:child_process';

const UNIT = [
  'server/**/*.test.ts',
  'operator/**/*.test.ts',
  'crds/**/*.test.ts',
  'scripts/**/*.test.ts',
  'bench/**/*.test.ts',
];
const SERVER = ['test/server/**/*.test.ts'];
const MODEL = ['test/model/**/*.test.ts'];

function run(label: string, cmd: string, args: string[]): void {
  console.log(`\n== ${label}: ${cmd} ${args.join(' ')}`);
  const res = spawnSync(cmd, args, { stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`\n${label} failed (exit ${String(res.status ?? res.signal)})`);
    process.exit(res.status ?? 1);
  }
}

const nodeTest = (globs: string[]): string[] => [
  '--test',
  '--test-reporter=spec',
  '--test-concurrency=2',
  ...globs,
];

const mode = process.argv[2] ?? 'all';
const steps: Record<string, () => void> = {
  // The reference tools the unit suites compare against (gguf-py); required, not skipped, here.
  setup: () => {
    run('python reference env', 'bash', ['scripts/setup-python.sh']);
    process.env['AUTOGLM_REQUIRE_PYREF'] = '1';
  },
  lint: () => {
    run('eslint', 'eslint', ['--max-warnings', '0', '.']);
    run('prettier', 'prettier', ['--check', '.']);
  },
  types: () => {
    run('typecheck', 'tsc', ['--noEmit', '-p', 'tsconfig.json']);
  },
  unit: () => {
    run('unit tests', process.execPath, nodeTest(UNIT));
  },
  server: () => {
    run('server tests', process.execPath, nodeTest(SERVER));
  },
  model: () => {
    run('default model', process.execPath, ['bin/autoglm.js', 'model', 'pull']);
    run('model tests', process.execPath, nodeTest(MODEL));
  },
};
const plans: Record<string, string[]> = {
  all: ['setup', 'lint', 'types', 'unit', 'server', 'model'],
  check: ['lint', 'types', 'unit'],
  unit: ['unit'],
  server: ['server'],
  model: ['model'],
};
const plan = plans[mode];
if (plan === undefined) {
  console.error(`unknown mode ${mode}; one of ${Object.keys(plans).join(', ')}`);
  process.exit(2);
}
for (const step of plan) steps[step]?.();
