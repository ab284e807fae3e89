/**
 * Follows the tuning file the operator writes into a ConfigMap mounted in the pod, and applies
 * this node's parameters to a LiveParams as the file changes.
 *
 * Kubernetes updates a ConfigMap volume by writing a new timestamped directory and swapping the
 * `..data` symlink to it; `tuning.yaml` is itself a symlink into `..data`. Watching the file
 * would follow the old inode and miss the swap, so the DIRECTORY is watched and the file is
 * re-read by path on any event (debounced, as one swap fires several). inotify can still miss
 * a swap (and some volumes have no events), so the file is also re-read every `intervalMs`.
 *
 * File contents never throw: an invalid, unreadable or deleted file keeps the last good
 * parameters and is reported through `onError`, once per distinct state.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  effectiveParams,
  parseTuningFile,
  servingParamsErrors,
  type ServingParams,
} from '../../../crds/tuning.ts';
import { AutoGLMError } from '../errors.ts';
import type { LiveParams } from './live.ts';

export interface TuningApplied {
  /** `file`: from the tuning file; `base`: no usable file at startup, so the base parameters. */
  readonly source: 'file' | 'base';
  /** The effective parameters for this node, now current. */
  readonly params: ServingParams;
  /** The file's `generation`, when it has one. */
  readonly generation: number | undefined;
  /** Whether the live parameters changed (a new file may change only other nodes' sections). */
  readonly changed: boolean;
}

export interface TuningProblem {
  /** What went wrong: a label for logs and metrics. */
  readonly reason: 'invalid' | 'missing' | 'unreadable' | 'internal';
  readonly path: string;
  /** Every problem found, each led by where it is (`defaults.maxBatchSize: must be <= 1024`). */
  readonly errors: readonly string[];
}

export interface WatchTuningOptions {
  /** This pod's node (from the downward API, `spec.nodeName`); undefined: only `defaults` apply. */
  readonly nodeName: string | undefined;
  /** The parameters under the file's: built in or from the command line. */
  readonly base: ServingParams;
  readonly live: LiveParams;
  readonly onApplied?: (applied: TuningApplied) => void;
  readonly onError?: (problem: TuningProblem) => void;
  /**
   * Re-read the file this often even without events. Default 10 s. 0 turns it off; then a
   * directory that is missing at startup, or replaced later, is not followed.
   */
  readonly intervalMs?: number;
  /** Wait this long after an event for the rest of a burst. Default 100 ms. */
  readonly debounceMs?: number;
}

export interface TuningWatcher extends AsyncDisposable {
  /** Re-reads the file now; resolves once it (and any re-read queued meanwhile) is done. */
  reload(): Promise<void>;
  /** Stops watching: no more events, timers or reads. Resolves after a read in flight ends. */
  close(): Promise<void>;
}

/**
 * Loads the file once (missing: the base parameters apply, which is not an error), then
 * follows it. Rejects only for a programming error: invalid `base` or interval options.
 */
export async function watchTuningFile(path: string, options: WatchTuningOptions): Promise<TuningWatcher> {
  const errors = servingParamsErrors(options.base);
  if (errors.length > 0) {
    throw new AutoGLMError('invalid_argument', `invalid base serving parameters: ${errors.join('; ')}`);
  }
  const watcher = new FileWatcher(path, options);
  watcher.start(); // before the first read, so that no change can slip between the two
  await watcher.reload();
  return watcher;
}

/** What the file was at the last read: its text, or why there was none. Equal keys mean nothing changed. */
type Observed = { kind: 'text'; text: string } | { kind: 'missing' } | { kind: 'unreadable'; code: string };

class FileWatcher implements TuningWatcher {
  readonly #path: string;
  readonly #options: WatchTuningOptions;
  readonly #intervalMs: number;
  readonly #debounceMs: number;
  #dirWatcher: FSWatcher | undefined;
  #interval: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #lastKey: string | undefined;
  #applied = false;

  constructor(path: string, options: WatchTuningOptions) {
    this.#path = path;
    this.#options = options;
    this.#intervalMs = nonNegative('intervalMs', options.intervalMs ?? 10_000);
    this.#debounceMs = nonNegative('debounceMs', options.debounceMs ?? 100);
  }

  start(): void {
    if (this.#closed) return;
    this.#watchDirectory();
    if (this.#intervalMs > 0) {
      this.#interval = setInterval(() => {
        this.#watchDirectory(); // the directory may have appeared, or its watcher died
        void this.reload();
      }, this.#intervalMs);
    }
  }

  reload(): Promise<void> {
    if (this.#closed) return this.#running ?? Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        await this.#loadOnce();
      } while (this.#rerunRequested());
    };
    this.#running = run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** A reload was asked for while one ran (its read may predate the change). */
  #rerunRequested(): boolean {
    return this.#again && !this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
    this.#dirWatcher?.close();
    this.#dirWatcher = undefined;
    await this.#running;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #watchDirectory(): void {
    if (this.#dirWatcher !== undefined || this.#closed) return;
    try {
      const watcher = watch(dirname(this.#path), () => {
        this.#schedule();
      });
      watcher.on('error', () => {
        // The directory went away (or the watch broke): drop it; the interval re-creates it.
        watcher.close();
        if (this.#dirWatcher === watcher) this.#dirWatcher = undefined;
        this.#schedule();
      });
      this.#dirWatcher = watcher;
    } catch {
      // No directory yet (not mounted, local run): the interval retries and re-reads meanwhile.
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.reload();
    }, this.#debounceMs);
  }

  async #loadOnce(): Promise<void> {
    try {
      const observed = await readObserved(this.#path);
      const key = JSON.stringify(observed);
      if (this.#closed || key === this.#lastKey) return;
      this.#lastKey = key;
      this.#handle(observed);
    } catch (err) {
      this.#report('internal', [describe(err)]);
    }
  }

  #handle(observed: Observed): void {
    const name = basename(this.#path);
    if (observed.kind === 'text') {
      const parsed = parseTuningFile(observed.text);
      if (parsed.ok) {
        const params = effectiveParams(parsed.value, this.#options.nodeName, this.#options.base);
        this.#apply({ source: 'file', params, generation: parsed.value.generation });
        return;
      }
      this.#report('invalid', parsed.errors);
    } else if (observed.kind === 'unreadable') {
      this.#report('unreadable', [`cannot read ${name}: ${observed.code}`]);
    } else if (this.#applied) {
      this.#report('missing', [`${name} is gone; keeping the last good parameters`]);
    }
    // Nothing usable yet (startup): the base parameters hold. Otherwise the last good ones stay.
    if (!this.#applied) this.#applyBase();
  }

  #applyBase(): void {
    this.#apply({ source: 'base', params: this.#options.base, generation: undefined });
  }

  #apply(applied: Omit<TuningApplied, 'changed'>): void {
    const { live, onApplied } = this.#options;
    const before = live.get();
    let listenerFailure: unknown;
    try {
      live.set(applied.params);
    } catch (err) {
      listenerFailure = err; // a subscriber threw; the parameters are applied all the same
    }
    this.#applied = true;
    onApplied?.({ ...applied, params: live.get(), changed: live.get() !== before });
    if (listenerFailure !== undefined) this.#report('internal', [describe(listenerFailure)]);
  }

  #report(reason: TuningProblem['reason'], errors: readonly string[]): void {
    try {
      this.#options.onError?.({ reason, path: this.#path, errors });
    } catch (err) {
      // The reporter itself failed: there is no one left to tell but the process.
      process.emitWarning(err instanceof Error ? err : String(err), { code: 'AUTOGLM_TUNING_REPORT' });
    }
  }
}

async function readObserved(path: string): Promise<Observed> {
  try {
    return { kind: 'text', text: await readFile(path, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
    return code === 'ENOENT' || code === 'ENOTDIR' ? { kind: 'missing' } : { kind: 'unreadable', code };
  }
}

function describe(err: unknown): string {
  if (err instanceof AggregateError) return [err.message, ...err.errors.map(describe)].join(': ');
  return err instanceof Error ? err.message : String(err);
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new AutoGLMError('invalid_argument', `${name} must be a finite number >= 0, got ${value}`);
  }
  return value;
}
