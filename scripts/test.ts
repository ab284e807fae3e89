/**
 * The one entry point for checks: `npm test` (everything CI runs) and `npm run check`
 * (lint, types and unit tests, fast). Suites:
 *   setup  the Python reference environment (scripts/setup-python.sh), then it is required.
 *   unit   co-located *.test.ts under server/, operator/, crds/: no model, no cluster, seconds.
 *   server test/server/*.test.ts: the HTTP server on loopback over seeded random models.
 *   cluster test/{cluster,operator,dashboards,gitops,policies,helm,images}: a real control plane on
 *          loopback (etcd, kube-apiserver, controller-manager, scheduler built from source; kwok
 *          nodes), real Prometheus, opa, gator, helm, Lua; the cluster is brought up once for the
 *          suite by test/cluster/up.ts and torn down after it, pass or fail.
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
const CLUSTER = [
  'test/cluster/**/*.test.ts',
  'test/operator/**/*.test.ts',
  'test/dashboards/**/*.test.ts',
  'test/gitops/**/*.test.ts',
  'test/policies/**/*.test.ts',
  'test/helm/**/*.test.ts',
  'test/images/**/*.test.ts',
];

/** Runs a step and returns its exit status, reporting a failure. */
function attempt(label: string, cmd: string, args: string[]): number {
  console.log(`\n== ${label}: ${cmd} ${args.join(' ')}`);
  const res = spawnSync(cmd, args, { stdio: 'inherit' });
  const status = res.status ?? 1;
  if (status !== 0) console.error(`\n${label} failed (exit ${String(res.status ?? res.signal)})`);
  return status;
}

function run(label: string, cmd: string, args: string[]): void {
  const status = attempt(label, cmd, args);
  if (status !== 0) process.exit(status);
}

const nodeTest = (globs: string[], concurrency = 2): string[] => [
  '--test',
  '--test-reporter=spec',
  `--test-concurrency=${String(concurrency)}`,
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
  // Up once (the first time this builds the binaries, ~10 min), so the test files share it.
  cluster: () => {
    const node = process.execPath;
    let status = attempt('cluster up', node, ['test/cluster/up.ts']);
    // One file at a time: the fault tests restart the shared API server under everyone's feet.
    if (status === 0) status = attempt('cluster tests', node, nodeTest(CLUSTER, 1));
    const down = attempt('cluster down', node, ['test/cluster/down.ts']);
    if (status !== 0 || down !== 0) process.exit(status || down);
  },
  model: () => {
    run('default model', process.execPath, ['bin/autoglm.js', 'model', 'pull']);
    run('model tests', process.execPath, nodeTest(MODEL));
  },
};
const plans: Record<string, string[]> = {
  all: ['setup', 'lint', 'types', 'unit', 'server', 'cluster', 'model'],
  check: ['lint', 'types', 'unit'],
  unit: ['unit'],
  server: ['server'],
  cluster: ['cluster'],
  model: ['model'],
};
const plan = plans[mode];
if (plan === undefined) {
  console.error(`unknown mode ${mode}; one of ${Object.keys(plans).join(', ')}`);
  process.exit(2);
}
for (const step of plan) steps[step]?.();
