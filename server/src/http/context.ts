/** Everything a request handler needs, built once at startup. */
import type { Engine } from '../engine/engine.ts';
import type { Tokenizer } from '../model/tokenizer/tokenizer.ts';
import type { LiveParams } from '../tuning/live.ts';
import type { CompressionProbe } from './compression-probe.ts';
import type { Logger } from './observability/logging.ts';
import type { ServerMetrics } from './observability/metrics.ts';
import type { PathMeter } from './path-meter.ts';

export type Phase = 'loading' | 'ready' | 'draining';

export interface LoadedModel {
  readonly name: string;
  readonly dir: string;
  readonly tokenizer: Tokenizer;
  readonly engine: Engine;
  readonly device: string;
  readonly maxModelLen: number;
  readonly vocabSize: number;
  readonly created: number;
  /** Releases the session and its cache. */
  dispose(): Promise<void>;
}

export interface ServerContext {
  phase: Phase;
  /** HTTP requests not yet finished; shutdown waits for them after the engine drains. */
  inFlight: number;
  /** Set when loading is done; undefined while loading. */
  model: LoadedModel | undefined;
  /** Why loading failed, shown by /health. */
  loadError: string | undefined;
  readonly servedName: string;
  readonly live: LiveParams;
  readonly metrics: ServerMetrics;
  /** Measures compression settings not in force, as the live tuning asks. */
  readonly probe: CompressionProbe;
  /** Times every wait of a response on its client's path, for the path's bandwidth. */
  readonly path: PathMeter;
  readonly logger: Logger;
  /** Accepted API keys; empty means no authentication. */
  readonly apiKeys: ReadonlySet<string>;
  readonly version: string;
}
