/** One request's life inside the engine: what is left to prefill, what was generated. */
import { AsyncQueue } from './queue.ts';
import { seededRandom } from '../util/seeded-random.ts';
import { OutputText, type TextDecoder } from './stopping.ts';
import type { FinishReason, GenerationDelta, GenerationRequest, GenerationResult } from './types.ts';

export type EngineEvent =
  | { readonly type: 'delta'; readonly delta: GenerationDelta }
  | { readonly type: 'done'; readonly result: GenerationResult };

export class Sequence {
  readonly id: string;
  readonly request: GenerationRequest;
  readonly arrival = performance.now();
  readonly events = new AsyncQueue<EngineEvent>();
  readonly random: () => number;
  readonly text: OutputText;
  /** Tokens to run through the model before decoding: the prompt, or after a preemption the prompt plus what was generated. */
  context: number[];
  prefilled = 0;
  readonly generated: number[] = [];
  readonly counts = new Map<number, number>();
  admittedAt: number | undefined;
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
  finished = false;

  constructor(id: string, request: GenerationRequest, decoder: TextDecoder) {
    this.id = id;
    this.request = request;
    this.context = [...request.promptIds];
    this.random = seededRandom(request.sampling.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.text = new OutputText(decoder, request.stopping.stopStrings);
  }

  get remainingPrompt(): number {
    return this.context.length - this.prefilled;
  }

  get lastToken(): number {
    return this.generated[this.generated.length - 1] ?? this.context[this.context.length - 1] ?? 0;
  }

  /** After a preemption its cache is gone: recompute everything it has seen so far. */
  resetForRecompute(): void {
    this.context = [...this.request.promptIds, ...this.generated];
    this.prefilled = 0;
  }

  record(token: number): void {
    this.generated.push(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  result(reason: FinishReason): GenerationResult {
    const now = performance.now();
    return {
      finishReason: reason,
      promptTokens: this.request.promptIds.length,
      completionTokens: this.generated.length,
      timeToFirstToken:
        this.firstTokenAt === undefined ? undefined : (this.firstTokenAt - this.arrival) / 1000,
      queueSeconds: ((this.admittedAt ?? now) - this.arrival) / 1000,
      totalSeconds: (now - this.arrival) / 1000,
    };
  }
}
