/**
 * What the engine takes and gives, shared with the HTTP layer and the metrics. The engine
 * works in token ids and text deltas; OpenAI wire shapes live in protocol/.
 */

export interface SamplingOptions {
  /** 0 is greedy. */
  readonly temperature: number;
  /** 0 disables. */
  readonly topK: number;
  readonly topP: number;
  /** 0 disables. */
  readonly minP: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  /** 1 disables. */
  readonly repetitionPenalty: number;
  readonly seed?: number;
}

export interface StoppingOptions {
  readonly maxTokens: number;
  readonly stopStrings: readonly string[];
  readonly stopTokenIds: readonly number[];
  readonly ignoreEos: boolean;
}

export interface GenerationRequest {
  /** The x-request-id, carried into logs and traces. */
  readonly requestId: string;
  readonly promptIds: readonly number[];
  readonly sampling: SamplingOptions;
  readonly stopping: StoppingOptions;
  /** Top log-probabilities per generated token; undefined for none. */
  readonly topLogprobs?: number;
  readonly logprobs: boolean;
  /** Added to the logits of these tokens before sampling (OpenAI's logit_bias). */
  readonly logitBias?: readonly { readonly tokenId: number; readonly bias: number }[];
  /** Aborting frees the sequence's cache within one step. */
  readonly signal?: AbortSignal;
}

export interface TokenLogprob {
  readonly id: number;
  readonly logprob: number;
}

/** One emitted piece of a generation. Text is final: stop strings never appear in it. */
export interface GenerationDelta {
  readonly text: string;
  readonly tokenIds: readonly number[];
  readonly logprobs?: readonly { readonly chosen: TokenLogprob; readonly top: readonly TokenLogprob[] }[];
}

export const FINISH_REASONS = ['stop', 'length', 'abort', 'error'] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

export interface GenerationResult {
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Seconds from arrival to the first token, or undefined if none was produced. */
  readonly timeToFirstToken: number | undefined;
  readonly queueSeconds: number;
  readonly totalSeconds: number;
}

/** Snapshot of the engine after each step, for metrics and the tuning loop. */
export interface StepStats {
  readonly running: number;
  readonly waiting: number;
  /** 0..1 share of the KV cache's token capacity in use. */
  readonly kvUsage: number;
  readonly batchSize: number;
  readonly prefillTokens: number;
  readonly decodeTokens: number;
  readonly stepSeconds: number;
}

/** Hooks the metrics and tracing modules implement; the engine calls them synchronously. */
export interface EngineObserver {
  onStep?(stats: StepStats): void;
  onFirstToken?(requestId: string, secondsSinceArrival: number): void;
  onToken?(requestId: string, secondsSinceLastToken: number): void;
  onPreempt?(requestId: string): void;
  onFinish?(requestId: string, result: GenerationResult): void;
  /** A model run failed; the sequences in it finish with `error`. */
  onError?(err: unknown): void;
}
