/**
 * ONNX Runtime's C API, called through koffi, for what onnxruntime-node 1.30 does not expose:
 * I/O binding, outputs written into buffers we own (device memory included) and CUDA graphs.
 *
 * It opens the libonnxruntime.so.1 that onnxruntime-node ships; the dynamic linker keeps one
 * copy of it, so both bindings share one runtime and one OrtEnv. The OrtApi struct is a table
 * of function pointers that only ever grows, so indices counted from an older header stay
 * valid on a newer runtime as long as we ask it for that header's version.
 */
import koffi from 'koffi';
import { join } from 'node:path';
import { ortBinaryDir } from '../providers.ts';
import { HEADER_API_VERSION, TABLE, type OrtApi, type Out, type Ptr, type Status } from './ort-api.ts';

export type { Out, Ptr } from './ort-api.ts';

const ORT_LOGGING_LEVEL_WARNING = 2;

export class OrtError extends Error {
  /** OrtErrorCode: 1 fail, 2 invalid argument, 3 no such file, … */
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.name = 'OrtError';
    this.code = code;
  }
}

interface Library {
  readonly api: OrtApi;
  readonly version: string;
  /**
   * koffi closes a library when its handle is collected, and functions decoded from
   * pointers do not hold it: keep it, and the prototypes, for the life of the process.
   */
  readonly keep: readonly unknown[];
}

let loaded: Library | undefined;

function libraryPath(): string {
  if (process.platform !== 'linux') {
    throw new Error(
      `the C API binding loads libonnxruntime.so.1 and runs on Linux only, not ${process.platform}`,
    );
  }
  return join(ortBinaryDir(), 'libonnxruntime.so.1');
}

/**
 * koffi runs a native call on a stack of its own, 128 KiB for an async call by default: too
 * little for a session run, where MLAS's float GEMM alone packs into about 64 KiB of arrays
 * on the calling thread's stack. Give both kinds the 8 MiB a Linux thread gets. koffi takes
 * settings only before it loads its first library.
 */
const STACK_BYTES = 8 << 20;

function configureKoffi(): void {
  const c = koffi.config();
  if ((c.sync_stack_size ?? 0) >= STACK_BYTES && (c.async_stack_size ?? 0) >= STACK_BYTES) return;
  try {
    koffi.config({ sync_stack_size: STACK_BYTES, async_stack_size: STACK_BYTES });
  } catch (err) {
    throw new Error('koffi loaded a library before the ONNX Runtime binding could size its call stacks', {
      cause: err,
    });
  }
}

function load(): Library {
  configureKoffi();
  const lib = koffi.load(libraryPath());
  const base = lib.func('void *OrtGetApiBase()')() as Ptr;
  const ptrSize = koffi.sizeof('void *');
  const fn = (offset: Ptr, at: number): Ptr => koffi.decode(offset, at, 'void *') as Ptr;
  const version = koffi.call(fn(base, ptrSize), koffi.proto('const char *()')) as string;
  const table = koffi.call(
    fn(base, 0),
    koffi.proto('void *(uint32_t version)'),
    HEADER_API_VERSION,
  ) as Ptr | null;
  if (table === null) {
    throw new Error(`ONNX Runtime ${version} does not offer C API version ${HEADER_API_VERSION}`);
  }
  const fns: Record<string, unknown> = {};
  const protos: unknown[] = [];
  for (const [name, [index, signature]] of Object.entries(TABLE)) {
    const proto = koffi.proto(signature);
    protos.push(proto);
    fns[name] = koffi.decode(fn(table, index * ptrSize), proto);
  }
  // The table's types come from TABLE's signatures, which koffi cannot check for us.
  const api = fns as unknown as OrtApi;
  selfCheck(api);
  return { api, version, keep: [lib, protos] };
}

/**
 * A status round trip: CreateStatus, GetErrorCode and GetErrorMessage sit at the start of the
 * table, so a table read from the wrong place fails here rather than crashing later.
 */
function selfCheck(api: OrtApi): void {
  const status = api.CreateStatus(2, 'autoglm self-check');
  if (status === null) throw new Error('OrtApi.CreateStatus returned NULL');
  const ok = api.GetErrorCode(status) === 2 && api.GetErrorMessage(status) === 'autoglm self-check';
  api.ReleaseStatus(status);
  if (!ok) throw new Error('the OrtApi table does not match onnxruntime_c_api.h version 24');
}

export function ortLibrary(): Library {
  loaded ??= load();
  return loaded;
}

export function ortApi(): OrtApi {
  return ortLibrary().api;
}

/** A non-null status as an OrtError, releasing the status. */
function statusError(status: Status, what: string): OrtError | undefined {
  if (status === null) return undefined;
  const api = ortApi();
  const message = api.GetErrorMessage(status);
  const code = api.GetErrorCode(status);
  api.ReleaseStatus(status);
  return new OrtError(`${what}: ${message}`, code);
}

/** Throws a non-null status as an OrtError, releasing it. */
export function check(status: Status, what: string): void {
  const err = statusError(status, what);
  if (err !== undefined) throw err;
}

/** Calls a function whose last argument is an output pointer, and returns that pointer. */
export function create(what: string, call: (out: Out<Ptr>) => Status): Ptr {
  const out: Out<Ptr> = [null];
  check(call(out), what);
  if (out[0] === null) throw new OrtError(`${what} returned NULL`, 1);
  return out[0];
}

/** Calls a function whose last argument is an output number (size_t, int, enum). */
export function count(what: string, call: (out: Out<number>) => Status): number {
  const out: Out<number> = [null];
  check(call(out), what);
  return Number(out[0]);
}

/**
 * RunWithBinding on one of koffi's worker threads, so a step does not block the event loop;
 * the caller must leave every bound buffer alone until the promise settles.
 */
export function runWithBinding(session: Ptr, runOptions: Ptr | null, binding: Ptr): Promise<void> {
  const api = ortApi();
  return new Promise((resolve, reject) => {
    api.RunWithBinding.async(session, runOptions, binding, (err: unknown, status: Status) => {
      const failure =
        err === null || err === undefined
          ? statusError(status, 'RunWithBinding')
          : new Error('koffi could not call RunWithBinding', { cause: err });
      if (failure === undefined) resolve();
      else reject(failure);
    });
  });
}

let env: Ptr | undefined;

/**
 * The process's OrtEnv. ONNX Runtime keeps one per process (CreateEnv hands back the one
 * onnxruntime-node made, if it made one first) and it must outlive every session, so it is
 * never released.
 */
export function ortEnv(): Ptr {
  env ??= create('CreateEnv', (out) => ortApi().CreateEnv(ORT_LOGGING_LEVEL_WARNING, 'autoglm', out));
  return env;
}

/** A NUL-terminated string at `p`. */
export function readString(p: Ptr): string {
  return koffi.decode.string(p);
}

/** The address of memory JS owns; it must stay referenced while native code may touch it. */
export function addressOf(view: ArrayBufferView): Ptr {
  return koffi.address(view);
}

const registry = new FinalizationRegistry<NativeScope>((scope) => {
  scope.close();
});

/**
 * Native objects an owner holds, released in reverse order of creation, and the JS buffers
 * they point into, kept alive until then. `close()` is the rule; the FinalizationRegistry only
 * catches an owner collected without it. A scope others depend on (a session, under its
 * bindings) releases only once the last of them is done, in whatever order they are closed
 * or collected.
 */
export class NativeScope {
  #releases: (() => void)[] = [];
  #keep: object[] = [];
  #users = 0;
  #closing = false;

  /** Releases everything when `owner` is collected, unless closed first. */
  guard(owner: object): void {
    registry.register(owner, this, this);
  }

  add(handle: Ptr, release: (handle: Ptr) => void): Ptr {
    this.#releases.push(() => {
      release(handle);
    });
    return handle;
  }

  keep(o: object): void {
    this.#keep.push(o);
  }

  /** Runs `undo` at release time, in reverse order with the handles. */
  defer(undo: () => void): void {
    this.#releases.push(undo);
  }

  /** Makes `dependent`'s close (its last release) the end of one use of this scope. */
  usedBy(dependent: NativeScope): void {
    this.#users++;
    dependent.#releases.unshift(() => {
      this.#users--;
      if (this.#closing && this.#users === 0) this.#release();
    });
  }

  close(): void {
    registry.unregister(this);
    this.#closing = true;
    if (this.#users === 0) this.#release();
  }

  #release(): void {
    const releases = this.#releases;
    this.#releases = [];
    for (let i = releases.length - 1; i >= 0; i--) releases[i]?.();
    this.#keep = [];
  }
}
