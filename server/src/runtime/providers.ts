/**
 * Which execution providers can load here, checked before asking onnxruntime: a failed
 * provider load prints native errors, and `--device auto` should not make noise for
 * providers this machine cannot have.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type ProviderName = 'cuda' | 'webgpu' | 'cpu';

/** Folder holding libonnxruntime.so and its provider libraries. */
export function ortBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

function sharedLibraryFound(name: string): boolean {
  const paths = (process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter((p) => p !== '');
  if (paths.some((p) => existsSync(join(p, name)))) return true;
  try {
    return execFileSync('ldconfig', ['-p'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).includes(name);
  } catch {
    return false;
  }
}

export function providerAvailable(p: ProviderName): { ok: boolean; reason: string } {
  if (p === 'cpu') return { ok: true, reason: 'always available' };
  if (p === 'cuda') {
    const lib = join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so');
    return existsSync(lib)
      ? { ok: true, reason: lib }
      : { ok: false, reason: `no ${lib} (install the CUDA provider: docs/gpu.md)` };
  }
  return sharedLibraryFound('libvulkan.so.1')
    ? { ok: true, reason: 'Vulkan loader found' }
    : { ok: false, reason: 'no Vulkan loader (libvulkan.so.1)' };
}
