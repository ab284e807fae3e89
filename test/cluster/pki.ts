/**
 * Certificates and keys for the local control plane, made with the openssl CLI: a CA, the
 * apiserver's serving certificate, one client certificate per component, and the service-account
 * signing key pair. Made once per state dir (into a temporary dir, then renamed into place).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The client identities: CN is the user, O the group (RBAC subjects). */
export const CLIENTS = {
  admin: { cn: 'kubernetes-admin', o: 'system:masters' },
  'controller-manager': { cn: 'system:kube-controller-manager', o: '' },
  scheduler: { cn: 'system:kube-scheduler', o: '' },
  kwok: { cn: 'kwok-controller', o: '' },
} as const;
export type ClientName = keyof typeof CLIENTS;

/** The first address of the service range: the `kubernetes` Service's ClusterIP. */
export const SERVICE_CIDR = '10.96.0.0/16';
const SERVICE_IP = '10.96.0.1';

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly saKey: string;
  readonly saPub: string;
  /** The aggregation layer's: a CA of its own for the identity headers, and the apiserver's client cert. */
  readonly frontProxyCa: string;
  readonly frontProxyCert: string;
  readonly frontProxyKey: string;
  clientCert(name: ClientName): string;
  clientKey(name: ClientName): string;
}

function pkiAt(dir: string): Pki {
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'apiserver.crt'),
    serverKey: join(dir, 'apiserver.key'),
    saKey: join(dir, 'sa.key'),
    saPub: join(dir, 'sa.pub'),
    frontProxyCa: join(dir, 'front-proxy-ca.crt'),
    frontProxyCert: join(dir, 'front-proxy-client.crt'),
    frontProxyKey: join(dir, 'front-proxy-client.key'),
    clientCert: (name) => join(dir, `${name}.crt`),
    clientKey: (name) => join(dir, `${name}.key`),
  };
}

function openssl(cwd: string, args: string[]): void {
  const res = spawnSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (res.error !== undefined) throw res.error;
  if (res.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${res.stderr}`);
}

/** Installs openssl with apt when it is missing (the machines here run as root). */
export function ensureOpenssl(): void {
  if (spawnSync('openssl', ['version']).status === 0) return;
  process.stderr.write('[cluster] openssl not found; installing it with apt-get\n');
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', 'openssl'],
  ]) {
    const res = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (res.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed; install openssl`);
  }
}

/** A self-signed CA `<ca>.crt` with its key `<ca>.key`. */
function makeCa(cwd: string, ca: string, cn: string): void {
  // prettier-ignore
  openssl(cwd, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '3650', '-sha256', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,digitalSignature,keyCertSign,cRLSign',
  ]);
}

/** Signs `<name>.crt` for a new P-256 key `<name>.key` with a CA, with the given extensions. */
function issue(cwd: string, ca: string, name: string, subject: string, extensions: string): void {
  openssl(cwd, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.ec`]);
  openssl(cwd, ['pkcs8', '-topk8', '-nocrypt', '-in', `${name}.ec`, '-out', `${name}.key`]);
  rmSync(join(cwd, `${name}.ec`));
  openssl(cwd, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  writeFileSync(join(cwd, `${name}.ext`), extensions);
  // prettier-ignore
  openssl(cwd, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-CAserial', `${ca}.srl`, '-days', '3650', '-sha256',
    '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ]);
  rmSync(join(cwd, `${name}.csr`));
  rmSync(join(cwd, `${name}.ext`));
}

function generate(dir: string): void {
  makeCa(dir, 'ca', 'autoglm-test-ca');
  makeCa(dir, 'front-proxy-ca', 'autoglm-test-front-proxy-ca');
  const sans = [
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
    'IP:127.0.0.1',
    `IP:${SERVICE_IP}`,
  ];
  const leaf = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
  issue(
    dir,
    'ca',
    'apiserver',
    '/CN=kube-apiserver',
    `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`,
  );
  for (const [name, id] of Object.entries(CLIENTS)) {
    const subject = id.o === '' ? `/CN=${id.cn}` : `/O=${id.o}/CN=${id.cn}`;
    issue(dir, 'ca', name, subject, `${leaf}extendedKeyUsage=clientAuth\n`);
  }
  const proxy = `${leaf}extendedKeyUsage=clientAuth\n`;
  issue(dir, 'front-proxy-ca', 'front-proxy-client', '/CN=front-proxy-client', proxy);
  openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
  openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

/** The PKI under `<stateDir>/pki`, made if it is missing or incomplete. */
export function ensurePki(stateDir: string): Pki {
  const pki = pkiAt(join(stateDir, 'pki'));
  const files = [pki.caCert, pki.caKey, pki.serverCert, pki.serverKey, pki.saKey, pki.saPub];
  files.push(pki.frontProxyCa, pki.frontProxyCert, pki.frontProxyKey);
  for (const name of Object.keys(CLIENTS) as ClientName[])
    files.push(pki.clientCert(name), pki.clientKey(name));
  if (files.every((f) => existsSync(f))) return pki;
  ensureOpenssl();
  const tmp = `${pki.dir}.tmp-${String(process.pid)}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  generate(tmp);
  rmSync(pki.dir, { recursive: true, force: true });
  renameSync(tmp, pki.dir);
  return pki;
}
