/**
 * `autoglm operator`: runs the controller with the current kubeconfig (or in-cluster config),
 * behind a leader lease so two replicas can run, with /healthz, /readyz and /metrics.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pkg from '../../package.json' with { type: 'json' };
import { Controller } from './controller/controller.ts';
import { TuningLoop } from './aiops/loop.ts';
import { EventRecorder } from './kube/events.ts';
import { LeaderElector } from './kube/leader.ts';
import { KubeClient, loadKubeConfig } from './kube/rest.ts';
import { OperatorMetrics } from './metrics.ts';

export const OPERATOR_USAGE = `usage: autoglm operator [options]

Reconciles AutoGLMDeployment objects into serving Deployments, Services and ConfigMaps.

options:
  --kubeconfig <file>            kubeconfig (default: $KUBECONFIG, ~/.kube/config, else in-cluster)
  --namespace <ns>               watch one namespace (default: all)
  --server-image <image>         server image for specs that name none (default ${defaultImage()})
  --workers <n>                  concurrent reconciles (default 4)
  --health-addr <host:port>      /healthz, /readyz and /metrics (default 0.0.0.0:8081)
  --leader-elect true|false      hold a Lease before acting (default true)
  --leader-election-namespace    the Lease's namespace (default $POD_NAMESPACE or default)
  --leader-election-id <name>    the Lease's name (default autoglm-operator)
  --resync-seconds <n>           reconcile every object this often regardless of events (default 300)
  --prometheus-url <url>         where the tuning loop reads metrics (spec.tuning.prometheusURL overrides)
  --tuning-interval-seconds <n>  how often the tuning loop evaluates each object (default 15)`;

function defaultImage(): string {
  return `ghcr.io/autoglm/autoglm-server:${pkg.version}`;
}

type Level = 'info' | 'error';
function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({
    time: new Date().toISOString(),
    level,
    component: 'operator',
    msg,
    ...fields,
  });
  if (level === 'error') console.error(line);
  else console.log(line);
}

class UsageError extends Error {}

function positiveInt(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive integer, not "${v}"`);
  return n;
}

function hostPort(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(':');
  const port = Number(addr.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--health-addr must be host:port, not "${addr}"`);
  return { host: addr.slice(0, colon), port };
}

function options(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: Object.fromEntries(
      [
        'kubeconfig',
        'namespace',
        'server-image',
        'workers',
        'health-addr',
        'leader-elect',
        'leader-election-namespace',
        'leader-election-id',
        'resync-seconds',
        'prometheus-url',
        'tuning-interval-seconds',
      ].map((k) => [k, { type: 'string' as const }]),
    ),
  });
  const elect = values['leader-elect'] ?? 'true';
  if (elect !== 'true' && elect !== 'false')
    throw new UsageError(`--leader-elect must be true or false, not "${elect}"`);
  return {
    kubeconfig: values.kubeconfig,
    namespace: values.namespace,
    serverImage: values['server-image'] ?? defaultImage(),
    workers: positiveInt(values.workers, 'workers', 4),
    health: hostPort(values['health-addr'] ?? '0.0.0.0:8081'),
    leaderElect: elect === 'true',
    leaseNamespace: values['leader-election-namespace'] ?? process.env['POD_NAMESPACE'] ?? 'default',
    leaseName: values['leader-election-id'] ?? 'autoglm-operator',
    resyncMs: positiveInt(values['resync-seconds'], 'resync-seconds', 300) * 1000,
    prometheusURL: values['prometheus-url'],
    tuningIntervalMs: positiveInt(values['tuning-interval-seconds'], 'tuning-interval-seconds', 15) * 1000,
  };
}

function healthServer(metrics: OperatorMetrics, ready: () => boolean): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200).end('ok');
    } else if (path === '/readyz') {
      res.writeHead(ready() ? 200 : 503).end(ready() ? 'ok' : 'informers not synced');
    } else if (path === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      });
    } else {
      res.writeHead(404).end('not found');
    }
  });
}

export async function operatorCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(OPERATOR_USAGE);
    return;
  }
  const o = options(argv);
  const client = new KubeClient(loadKubeConfig(o.kubeconfig));
  const metrics = new OperatorMetrics();
  const controller = new Controller({
    client,
    metrics,
    serverImage: o.serverImage,
    namespace: o.namespace,
    workers: o.workers,
    resyncMs: o.resyncMs,
    log,
  });
  let synced = false;
  let loop: TuningLoop | undefined;
  const health = healthServer(metrics, () => synced || (o.leaderElect && !elector?.leading));
  await new Promise<void>((resolve, reject) => {
    health.once('error', reject);
    health.listen(o.health.port, o.health.host, resolve);
  });
  const address = health.address();
  log('info', 'operator starting', {
    version: pkg.version,
    server: client.server.origin,
    health:
      typeof address === 'object' && address !== null
        ? `${address.address}:${String(address.port)}`
        : addr(o),
  });
  const run = async () => {
    await controller.start();
    const agds = controller.deployments;
    if (agds !== undefined) {
      loop = new TuningLoop({
        client,
        agds,
        metrics,
        events: new EventRecorder(client),
        prometheusURL: o.prometheusURL,
        intervalMs: o.tuningIntervalMs,
        log,
      });
      loop.start();
    }
    synced = true;
    log('info', 'caches synced; reconciling');
  };
  const identity = `${hostname()}_${String(process.pid)}`;
  const elector = o.leaderElect
    ? new LeaderElector(client, {
        namespace: o.leaseNamespace,
        name: o.leaseName,
        identity,
        onStartedLeading: () => {
          metrics.leader.set(1);
          log('info', 'became the leader', { identity, lease: `${o.leaseNamespace}/${o.leaseName}` });
          void run();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          // Another replica may act now: stop at once, as controller-runtime does, and let the pod restart.
          log('error', 'lost the leader lease; exiting', { identity });
          process.exit(1);
        },
      })
    : undefined;
  if (elector === undefined) await run();
  else elector.start();

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', `${signal}: stopping`);
      void (async () => {
        await elector?.stop();
        await loop?.stop();
        await controller.stop();
        health.close();
        resolve();
      })();
    };
    process.once('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.once('SIGINT', () => {
      stop('SIGINT');
    });
  });
}

function addr(o: { health: { host: string; port: number } }): string {
  return `${o.health.host}:${String(o.health.port)}`;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await operatorCommand(argv);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (!(err instanceof UsageError) && process.env['AUTOGLM_DEBUG'] === '1') console.error(err);
    process.exitCode = 1;
  }
}
