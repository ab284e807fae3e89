/**
 * The serving engine: iteration-level (continuous) batching over a KV cache. Each step
 * decodes every running sequence by one token in one batched run, prefills prompt chunks
 * within the remaining token budget, and lets finished sequences leave at once. Parameters
 * are read at every step, so live tuning applies on the next one.
 */
import { AutoGLMError } from '../errors.ts';
import type { KvCache } from '../runtime/kv.ts';
import { planStep } from './policy.ts';
import { applyPenalties, logprobs, sample } from './sampler.ts';
import { Sequence, type EngineEvent } from './sequence.ts';
import type { TextDecoder } from './stopping.ts';
import type { EngineObserver, FinishReason, GenerationRequest } from './types.ts';

export interface EngineParams {
  readonly maxBatchSize: number;
  readonly maxBatchedTokens: number;
  readonly maxQueueDelayMs: number;
}

export interface EngineOptions {
  readonly kv: KvCache;
  readonly params: () => EngineParams;
  /** A fresh streaming detokenizer for a sequence, given its prompt as context. */
  readonly decoder: (promptIds: readonly number[]) => TextDecoder;
  readonly eosTokenIds: readonly number[];
  /** Longest sequence (prompt + output) one request may reach. */
  readonly maxModelLen: number;
  /** Waiting requests beyond this are refused with queue_full (429). */
  readonly maxWaiting: number;
  readonly observer?: EngineObserver;
}

export class Engine {
  readonly #o: EngineOptions;
  readonly #waiting: Sequence[] = [];
  readonly #running: Sequence[] = [];
  #nextId = 0;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #stopped = false;

  constructor(options: EngineOptions) {
    this.#o = options;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  get running(): number {
    return this.#running.length;
  }

  kvUsage(): number {
    return this.#o.kv.usedTokens() / this.#o.kv.capacityTokens;
  }

  /** Queues a request; its events end with one `done`. */
  submit(request: GenerationRequest): AsyncIterable<EngineEvent> {
    if (this.#stopped) throw new AutoGLMError('unavailable', 'the server is shutting down');
    if (this.#waiting.length >= this.#o.maxWaiting) {
      throw new AutoGLMError(
        'queue_full',
        `the queue is full (${this.#o.maxWaiting} waiting requests); retry shortly`,
      );
    }
    const seq = new Sequence(`seq-${this.#nextId++}`, request, this.#o.decoder(request.promptIds));
    this.#waiting.push(seq);
    request.signal?.addEventListener(
      'abort',
      () => {
        this.#kick();
      },
      { once: true },
    );
    this.#kick();
    return seq.events;
  }

  /** Stops taking work; resolves when running and waiting sequences are done. */
  async drain(): Promise<void> {
    this.#stopped = true;
    this.#kick();
    await this.#loop;
  }

  /** Ends every sequence now (a shutdown past its deadline); they report `abort`. */
  abortAll(): void {
    for (const seq of [...this.#running, ...this.#waiting]) this.#finish(seq, 'abort');
  }

  #kick(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
    this.#loop ??= this.#run().finally(() => {
      this.#loop = undefined;
      if (this.#waiting.length + this.#running.length > 0) this.#kick();
    });
  }

  async #run(): Promise<void> {
    while (this.#waiting.length + this.#running.length > 0) {
      await this.#gather();
      try {
        await this.#step();
      } catch (err) {
        // A failed run must not strand its sequences: they end with `error` and free their
        // cache; waiting requests still get their turn.
        this.#o.observer?.onError?.(err);
        for (const seq of [...this.#running]) this.#finish(seq, 'error');
      }
    }
  }

  /** With nothing running, wait up to maxQueueDelayMs for more requests to fill the batch. */
  async #gather(): Promise<void> {
    const { maxQueueDelayMs, maxBatchSize } = this.#o.params();
    const oldest = this.#waiting[0];
    if (this.#running.length > 0 || oldest === undefined || this.#waiting.length >= maxBatchSize) return;
    const left = maxQueueDelayMs - (performance.now() - oldest.arrival);
    if (left <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #finish(seq: Sequence, reason: FinishReason): void {
    if (seq.finished) return;
    seq.finished = true;
    this.#o.kv.free(seq.id);
    for (const list of [this.#running, this.#waiting]) {
      const i = list.indexOf(seq);
      if (i >= 0) list.splice(i, 1);
    }
    const rest = reason === 'stop' || reason === 'length' ? seq.text.finish() : '';
    if (rest !== '') seq.events.push({ type: 'delta', delta: { text: rest, tokenIds: [] } });
    const result = seq.result(reason);
    seq.events.push({ type: 'done', result });
    seq.events.end();
    this.#o.observer?.onFinish?.(seq.request.requestId, result);
  }

  async #step(): Promise<void> {
    const started = performance.now();
    for (const seq of [...this.#running, ...this.#waiting]) {
      if (seq.request.signal?.aborted === true) this.#finish(seq, 'abort');
    }
    const p = this.#o.params();
    const plan = planStep(
      this.#running.map((s) => ({ id: s.id, remainingPrompt: s.remainingPrompt })),
      this.#waiting.map((s) => ({ id: s.id, promptTokens: s.remainingPrompt })),
      {
        maxBatchSize: p.maxBatchSize,
        maxBatchedTokens: p.maxBatchedTokens,
        freeSlots: this.#o.kv.freeSlots(),
      },
    );
    const byId = new Map([...this.#running, ...this.#waiting].map((s) => [s.id, s]));
    const decodeTokens = await this.#decode(
      plan.decode.map((id) => byId.get(id)).filter((s) => s !== undefined),
    );
    for (const id of plan.admit) this.#admit(byId.get(id));
    let prefillTokens = 0;
    for (const chunk of plan.prefill) {
      const seq = byId.get(chunk.id);
      if (seq !== undefined && !seq.finished) prefillTokens += await this.#prefill(seq, chunk.tokens);
    }
    this.#o.observer?.onStep?.({
      running: this.#running.length,
      waiting: this.#waiting.length,
      kvUsage: this.kvUsage(),
      batchSize: decodeTokens,
      prefillTokens,
      decodeTokens,
      stepSeconds: (performance.now() - started) / 1000,
    });
  }

  #admit(seq: Sequence | undefined): void {
    if (seq === undefined) return;
    this.#waiting.splice(this.#waiting.indexOf(seq), 1);
    this.#running.push(seq);
    seq.admittedAt ??= performance.now();
    this.#o.kv.allocate(seq.id);
  }

  /** Frees the newest running sequences until `batch` fits; they recompute later. */
  #preemptUntilFits(batch: Sequence[]): Sequence[] {
    let fits = batch;
    while (fits.length > 1 && !this.#o.kv.canDecode(fits.map((s) => s.id))) {
      const victim = fits.reduce((a, b) => (b.arrival > a.arrival ? b : a));
      fits = fits.filter((s) => s !== victim);
      this.#o.kv.free(victim.id);
      this.#running.splice(this.#running.indexOf(victim), 1);
      victim.resetForRecompute();
      this.#waiting.unshift(victim);
      this.#o.observer?.onPreempt?.(victim.request.requestId);
    }
    return fits;
  }

  async #decode(batch: Sequence[]): Promise<number> {
    const live = batch.filter((s) => !s.finished);
    if (live.length === 0) return 0;
    const fits = this.#preemptUntilFits(live);
    const rows = await this.#o.kv.decode(fits.map((s) => ({ seqId: s.id, token: s.lastToken })));
    fits.forEach((s, i) => {
      this.#emit(s, rows[i] as Float32Array);
    });
    return fits.length;
  }

  async #prefill(seq: Sequence, tokens: number): Promise<number> {
    const chunk = seq.context.slice(seq.prefilled, seq.prefilled + tokens);
    const logits = await this.#o.kv.prefill(seq.id, chunk);
    seq.prefilled += chunk.length;
    if (seq.remainingPrompt === 0) this.#emit(seq, logits);
    return chunk.length;
  }

  /** Picks the next token from `raw` logits, streams its text, and finishes the sequence when it should stop. */
  #emit(seq: Sequence, raw: Float32Array): void {
    if (seq.finished) return;
    const r = seq.request;
    const row = Float32Array.from(raw);
    for (const b of r.logitBias ?? []) row[b.tokenId] = (row[b.tokenId] ?? 0) + b.bias;
    applyPenalties(row, r.sampling, r.promptIds, seq.counts);
    const token = sample(row, r.sampling, seq.random);
    this.#timeToken(seq);
    seq.record(token);
    const reason = this.#stream(seq, token, raw);
    if (reason !== undefined) this.#finish(seq, reason);
  }

  #timeToken(seq: Sequence): void {
    const now = performance.now();
    const id = seq.request.requestId;
    if (seq.firstTokenAt === undefined) {
      seq.firstTokenAt = now;
      this.#o.observer?.onFirstToken?.(id, (now - seq.arrival) / 1000);
    } else {
      this.#o.observer?.onToken?.(id, (now - (seq.lastTokenAt ?? now)) / 1000);
    }
    seq.lastTokenAt = now;
  }

  /** Emits the token's text; returns why the sequence is done, if it is. */
  #stream(seq: Sequence, token: number, raw: Float32Array): FinishReason | undefined {
    const r = seq.request;
    const eos = !r.stopping.ignoreEos && this.#o.eosTokenIds.includes(token);
    // Stop tokens end the sequence and, as in OpenAI's API, are not part of the text.
    if (eos || r.stopping.stopTokenIds.includes(token)) return 'stop';
    const lp = r.logprobs ? { logprobs: [logprobs(raw, token, r.topLogprobs ?? 0)] } : {};
    const out = seq.text.push(token);
    seq.events.push({ type: 'delta', delta: { text: out.text, tokenIds: [token], ...lp } });
    if (out.stopped) return 'stop';
    const total = r.promptIds.length + seq.generated.length;
    return seq.generated.length >= r.stopping.maxTokens || total >= this.#o.maxModelLen
      ? 'length'
      : undefined;
  }
}
