/**
 * `npm run bench:operator`: N AutoGLMDeployments (default 200) applied at once to the test
 * control plane (kwok nodes run their pods), timed until every one reports Available=True,
 * with the operator's resident memory sampled throughout. Writes bench/results/operator.md.
 *
 *   node bench/operator.ts [--count N]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { clusterWithCrd, freshNamespace, sleep, startOperator } from '../test/support/operator.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '200' } } });
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');

const c = await clusterWithCrd();
const ns = await freshNamespace(c, 'bench');
const op = await startOperator(c.info, { leaseNamespace: ns, namespace: ns, args: ['--workers=4'] });
const pid = op.proc.pid ?? 0;

function rssMiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

interface Agd {
  status?: { conditions?: { type: string; status: string }[] };
}
async function available(): Promise<number> {
  const list = await c.getJson<{ items: Agd[] }>(['-n', ns, 'get', 'agd']);
  return list.items.filter((a) =>
    a.status?.conditions?.some((x) => x.type === 'Available' && x.status === 'True'),
  ).length;
}

const idleRss = rssMiB();
const loadBefore = loadavg()[0] ?? 0;
const docs = Array.from(
  { length: count },
  (_, i) =>
    `apiVersion: serving.autoglm.io/v1alpha1\nkind: AutoGLMDeployment\nmetadata:\n  name: model-${String(i)}\n  namespace: ${ns}\nspec:\n  model:\n    source: hf:org/model-${String(i)}\n`,
).join('---\n');
let peak = idleRss;
const sampler = setInterval(() => {
  peak = Math.max(peak, rssMiB());
}, 200);
const t0 = performance.now();
await c.kubectl(['apply', '--server-side', '-f', '-'], docs);
const applied = performance.now();
const firstAt: number[] = [];
let done = 0;
const deadline = t0 + 15 * 60_000;
while (done < count && performance.now() < deadline) {
  await sleep(1000);
  done = await available();
  if (done > 0 && firstAt.length === 0) firstAt.push(performance.now());
}
const allAt = performance.now();
clearInterval(sampler);
const settledRss = rssMiB();
const metrics = await op.metrics();
const reconciles = [...metrics.matchAll(/^autoglm_operator_reconcile_total\{result="(\w+)"\} (\d+)/gm)]
  .map((m) => `${m[1] ?? ''} ${m[2] ?? ''}`)
  .join(', ');
await op.stop();
await c.kubectl(['delete', 'namespace', ns, '--wait=false']);

const s = (ms: number) => (ms / 1000).toFixed(1);
const rows = [
  ['objects', String(count)],
  ['Available=True', `${String(done)} of ${String(count)}`],
  ['apply of all objects (kubectl, server-side)', `${s(applied - t0)} s`],
  ['first Available', firstAt[0] === undefined ? '-' : `${s(firstAt[0] - t0)} s`],
  ['all Available', done === count ? `${s(allAt - t0)} s` : 'not reached in 15 min'],
  [
    'operator RSS idle / peak / settled',
    `${idleRss.toFixed(0)} / ${peak.toFixed(0)} / ${settledRss.toFixed(0)} MiB`,
  ],
  ['reconciles by result', reconciles],
  ['machine load average (1 min) at start', loadBefore.toFixed(1)],
];
const table = [
  '# bench:operator',
  '',
  `Command: \`npm run bench:operator -- --count ${String(count)}\` (test control plane from test/cluster: etcd, kube-apiserver, controller-manager, scheduler and kwok on one machine, ${String(cpus().length)} cores; the operator with 4 workers; one replica per object, pods simulated by kwok).`,
  '',
  '| measure | value |',
  '|---|---|',
  ...rows.map(([k, v]) => `| ${k ?? ''} | ${v ?? ''} |`),
  '',
  'Time to Available includes the whole control plane: the Deployment and ReplicaSet controllers, the scheduler and kwok share the same two cores with the operator.',
  '',
].join('\n');
writeFileSync(new URL('results/operator.md', import.meta.url), table);
console.log(table);
if (done < count) process.exitCode = 1;
