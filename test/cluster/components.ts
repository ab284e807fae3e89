/**
 * The processes of the local control plane and their flags: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and kwok (which plays the kubelets of the fake nodes).
 * Everything listens on 127.0.0.1 only, on ports picked at startup.
 */
import { join } from 'node:path';
import type { ProcSpec } from './procs.ts';
import { SERVICE_CIDR, type ClientName, type Pki } from './pki.ts';

export const COMPONENTS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
] as const;
export type Component = (typeof COMPONENTS)[number];

export interface Ports {
  readonly etcd: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  readonly controllerManager: number;
  readonly scheduler: number;
}

/** Where things live under a state dir. */
export interface Layout {
  readonly dir: string;
  readonly bin: string;
  readonly pki: Pki;
  readonly etcdData: string;
  readonly kubeconfig: (client: ClientName) => string;
  readonly log: (c: Component) => string;
  readonly certDir: (c: Component) => string;
  readonly kwokWorkdir: string;
}

/** The annotation kwok selects its nodes by, and the issuer of service-account tokens. */
export const KWOK_NODE_ANNOTATION = { key: 'kwok.x-k8s.io/node', value: 'fake' } as const;
export const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

function spec(l: Layout, c: Component, args: string[], env: Record<string, string> = {}): ProcSpec {
  return { bin: join(l.bin, c), args, env, log: l.log(c) };
}

function etcd(l: Layout, p: Ports): ProcSpec {
  const client = `http://127.0.0.1:${String(p.etcd)}`;
  const peer = `http://127.0.0.1:${String(p.etcdPeer)}`;
  return spec(l, 'etcd', [
    '--name=autoglm',
    `--data-dir=${l.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=autoglm=${peer}`,
    '--initial-cluster-state=new',
    // A throwaway test store: durability is not needed, speed and a small footprint are.
    '--unsafe-no-fsync',
    '--quota-backend-bytes=2147483648',
    '--log-level=warn',
  ]);
}

function apiserver(l: Layout, p: Ports): ProcSpec {
  return spec(l, 'kube-apiserver', [
    `--etcd-servers=http://127.0.0.1:${String(p.etcd)}`,
    '--advertise-address=127.0.0.1',
    '--bind-address=127.0.0.1',
    `--secure-port=${String(p.apiserver)}`,
    `--cert-dir=${l.certDir('kube-apiserver')}`,
    `--tls-cert-file=${l.pki.serverCert}`,
    `--tls-private-key-file=${l.pki.serverKey}`,
    `--client-ca-file=${l.pki.caCert}`,
    // The aggregation layer (APIServices), and what lets the other components read the
    // identity-header CA from kube-system/extension-apiserver-authentication.
    `--requestheader-client-ca-file=${l.pki.frontProxyCa}`,
    '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${l.pki.frontProxyCert}`,
    `--proxy-client-key-file=${l.pki.frontProxyKey}`,
    '--authorization-mode=Node,RBAC',
    `--service-account-issuer=${SA_ISSUER}`,
    `--api-audiences=${SA_ISSUER}`,
    `--service-account-key-file=${l.pki.saPub}`,
    `--service-account-signing-key-file=${l.pki.saKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // The `kubernetes` Service keeps no endpoints: a loopback address is not a valid endpoint.
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    '--profiling=false',
  ]);
}

/** Flags for serving health on 127.0.0.1, with authn/authz delegated to the apiserver. */
function serving(l: Layout, c: Component, client: ClientName, port: number): string[] {
  const kubeconfig = l.kubeconfig(client);
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${String(port)}`,
    `--cert-dir=${l.certDir(c)}`,
    // One instance of each: no leader election, so a restart takes over at once.
    '--leader-elect=false',
    '--profiling=false',
  ];
}

function controllerManager(l: Layout, p: Ports): ProcSpec {
  return spec(l, 'kube-controller-manager', [
    ...serving(l, 'kube-controller-manager', 'controller-manager', p.controllerManager),
    '--controllers=*',
    `--service-account-private-key-file=${l.pki.saKey}`,
    `--root-ca-file=${l.pki.caCert}`,
    '--use-service-account-credentials=true',
    '--cluster-name=autoglm-test',
  ]);
}

function scheduler(l: Layout, p: Ports): ProcSpec {
  return spec(l, 'kube-scheduler', serving(l, 'kube-scheduler', 'scheduler', p.scheduler));
}

function kwok(l: Layout): ProcSpec {
  const { key, value } = KWOK_NODE_ANNOTATION;
  return spec(
    l,
    'kwok',
    [
      `--kubeconfig=${l.kubeconfig('kwok')}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${key}=${value}`,
      '--cidr=10.244.0.1/16',
      '--node-ip=127.0.0.1',
      '--node-lease-duration-seconds=40',
    ],
    // kwok reads its config from $KWOK_WORKDIR/kwok.yaml (~/.kwok by default): keep it ours.
    { KWOK_WORKDIR: l.kwokWorkdir },
  );
}

export function componentSpec(l: Layout, p: Ports, c: Component): ProcSpec {
  switch (c) {
    case 'etcd':
      return etcd(l, p);
    case 'kube-apiserver':
      return apiserver(l, p);
    case 'kube-controller-manager':
      return controllerManager(l, p);
    case 'kube-scheduler':
      return scheduler(l, p);
    case 'kwok':
      return kwok(l);
  }
}
