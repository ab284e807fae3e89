/**
 * The few CUDA runtime calls ONNX Runtime's C API has no equivalent for: filling device
 * buffers we allocated through a session's allocator, and, under CUDA graphs, copying inputs
 * into and logits out of buffers whose addresses the captured graph has fixed (a replayed
 * graph skips ONNX Runtime's own host/device copies). libcudart is the one the CUDA execution
 * provider links, so it is loadable wherever that provider loaded.
 */
import koffi from 'koffi';
import type { Ptr } from './library.ts';

const CANDIDATES = ['libcudart.so.13', 'libcudart.so.12', 'libcudart.so'];
const HOST_TO_DEVICE = 1;
const DEVICE_TO_HOST = 2;
const DEVICE_TO_DEVICE = 3;

interface Fns {
  /** koffi closes a library whose handle is collected. */
  lib: unknown;
  memcpy(dst: Ptr | ArrayBufferView, src: Ptr | ArrayBufferView, bytes: number, kind: number): number;
  memcpy2D(
    dst: Ptr,
    dpitch: number,
    src: Ptr,
    spitch: number,
    width: number,
    height: number,
    kind: number,
  ): number;
  memset(dst: Ptr, value: number, bytes: number): number;
  synchronize(): number;
  hostRegister(ptr: ArrayBufferView, bytes: number, flags: number): number;
  hostUnregister(ptr: ArrayBufferView): number;
  errorString(code: number): string;
}

export interface Cudart {
  /** Host to device; may still be in flight until `synchronize()`. */
  toDevice(dst: Ptr, src: ArrayBufferView): void;
  /** Device to host, after the work queued before it on the legacy stream; done on return. */
  toHost(dst: ArrayBufferView, src: Ptr, bytes: number): void;
  zero(dst: Ptr, bytes: number): void;
  /**
   * `height` rows of `width` bytes, device to device, rows `dpitch` and `spitch` bytes apart;
   * the regions must not overlap. Queued on the legacy stream: `synchronize()` before a run.
   */
  copy2D(dst: Ptr, dpitch: number, src: Ptr, spitch: number, width: number, height: number): void;
  /**
   * Waits for everything queued on the device. ONNX Runtime runs on its own non-blocking
   * stream, which does not wait for copies queued on the legacy stream, and cudaMemcpy from
   * pageable memory may return before its DMA lands: synchronize before the next run.
   */
  synchronize(): void;
  /**
   * Page-locks a host buffer the device copies to or from at every step: a copy from
   * pageable memory goes through a staging buffer at about half the bandwidth, which at
   * batch 64 makes the logits copy a third of a 1B model's step. The buffer must outlive
   * the returned undo.
   */
  pin(buf: ArrayBufferView): () => void;
}

let loaded: Cudart | undefined;

function open(): Fns {
  const errors: string[] = [];
  for (const name of CANDIDATES) {
    try {
      const lib = koffi.load(name);
      return {
        lib,
        memcpy: lib.func('int cudaMemcpy(void *dst, void *src, size_t count, int kind)') as Fns['memcpy'],
        memcpy2D: lib.func(
          'int cudaMemcpy2D(void *dst, size_t dpitch, void *src, size_t spitch, size_t width, size_t height, int kind)',
        ) as Fns['memcpy2D'],
        memset: lib.func('int cudaMemset(void *dst, int value, size_t count)') as Fns['memset'],
        synchronize: lib.func('int cudaDeviceSynchronize()') as Fns['synchronize'],
        hostRegister: lib.func(
          'int cudaHostRegister(void *ptr, size_t size, unsigned int flags)',
        ) as Fns['hostRegister'],
        hostUnregister: lib.func('int cudaHostUnregister(void *ptr)') as Fns['hostUnregister'],
        errorString: lib.func('const char *cudaGetErrorString(int error)') as Fns['errorString'],
      };
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`could not load the CUDA runtime:\n  ${errors.join('\n  ')}`);
}

function wrap(f: Fns): Cudart {
  const ok = (code: number, what: string): void => {
    if (code !== 0) throw new Error(`${what}: ${f.errorString(code)} (${code})`);
  };
  return {
    toDevice(dst, src) {
      ok(f.memcpy(dst, src, src.byteLength, HOST_TO_DEVICE), 'cudaMemcpy to device');
    },
    toHost(dst, src, bytes) {
      ok(f.memcpy(dst, src, bytes, DEVICE_TO_HOST), 'cudaMemcpy to host');
    },
    copy2D(dst, dpitch, src, spitch, width, height) {
      ok(f.memcpy2D(dst, dpitch, src, spitch, width, height, DEVICE_TO_DEVICE), 'cudaMemcpy2D');
    },
    zero(dst, bytes) {
      ok(f.memset(dst, 0, bytes), 'cudaMemset');
    },
    synchronize() {
      ok(f.synchronize(), 'cudaDeviceSynchronize');
    },
    pin(buf) {
      if (buf.byteLength === 0) return () => undefined;
      ok(f.hostRegister(buf, buf.byteLength, 0), 'cudaHostRegister');
      return () => {
        f.hostUnregister(buf);
      };
    },
  };
}

export function cudart(): Cudart {
  loaded ??= wrap(open());
  return loaded;
}
