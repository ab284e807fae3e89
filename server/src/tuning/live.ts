/**
 * The serving parameters in force right now. The engine calls `get()` once at the start of
 * each step and uses that snapshot for the whole step, so a change lands on the next step,
 * never halfway through one. Snapshots are frozen; a change replaces the object.
 */
import { SERVING_PARAMS_DEFAULTS, servingParamsErrors, type ServingParams } from '../../../crds/tuning.ts';
import { AutoGLMError } from '../errors.ts';

export interface ParamsChange {
  readonly previous: ServingParams;
  readonly next: ServingParams;
}

export type ParamsListener = (change: ParamsChange) => void;

export class LiveParams {
  #current: ServingParams;
  readonly #listeners = new Set<ParamsListener>();

  constructor(initial: ServingParams = SERVING_PARAMS_DEFAULTS) {
    this.#current = validated(initial);
  }

  /** The current snapshot; read it once per step. */
  get(): ServingParams {
    return this.#current;
  }

  /**
   * Makes `next` current and tells every listener, if it differs from the current value.
   * Returns whether it did. Invalid parameters are refused (AutoGLMError `invalid_argument`)
   * and change nothing. Listeners all run even if one throws; their errors are rethrown
   * together afterwards, with the change already made.
   */
  set(next: ServingParams): boolean {
    const candidate = validated(next);
    if (sameParams(candidate, this.#current)) return false;
    const change: ParamsChange = { previous: this.#current, next: candidate };
    this.#current = candidate;
    const failures: unknown[] = [];
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, 'a serving-parameters listener failed');
    return true;
  }

  /** Calls `listener` on every change from now on; the returned function unsubscribes. */
  subscribe(listener: ParamsListener): () => void {
    const entry: ParamsListener = (change) => {
      listener(change);
    };
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }
}

/** Equal in effect: `level` does not count when compression is off. */
export function sameParams(a: ServingParams, b: ServingParams): boolean {
  return (
    a.maxBatchSize === b.maxBatchSize &&
    a.maxBatchedTokens === b.maxBatchedTokens &&
    a.maxQueueDelayMs === b.maxQueueDelayMs &&
    a.streamChunkTokens === b.streamChunkTokens &&
    a.kvWindowTokens === b.kvWindowTokens &&
    a.kvSinkTokens === b.kvSinkTokens &&
    a.headEntropyThreshold === b.headEntropyThreshold &&
    a.headUpdateInterval === b.headUpdateInterval &&
    a.compression.algorithm === b.compression.algorithm &&
    (a.compression.algorithm === 'none' || a.compression.level === b.compression.level) &&
    sameProbe(a.compressionProbe, b.compressionProbe)
  );
}

function validated(params: ServingParams): ServingParams {
  const errors = servingParamsErrors(params);
  if (errors.length > 0) {
    throw new AutoGLMError('invalid_argument', `invalid serving parameters: ${errors.join('; ')}`);
  }
  if (
    Object.isFrozen(params) &&
    Object.isFrozen(params.compression) &&
    Object.isFrozen(params.compressionProbe)
  )
    return params;
  const probe = params.compressionProbe;
  return Object.freeze({
    ...params,
    compression: Object.freeze({ ...params.compression }),
    compressionProbe: Object.freeze({
      ...probe,
      settings: Object.freeze(probe.settings.map((x) => Object.freeze({ ...x }))) as typeof probe.settings,
    }),
  });
}

function sameProbe(a: ServingParams['compressionProbe'], b: ServingParams['compressionProbe']): boolean {
  return (
    a.cpuShare === b.cpuShare &&
    a.settings.length === b.settings.length &&
    a.settings.every((x, i) => x.algorithm === b.settings[i]?.algorithm && x.level === b.settings[i].level)
  );
}
