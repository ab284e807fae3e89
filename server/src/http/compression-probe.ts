/**
 * Measures compression settings other than the one in force, on a sample of the whole JSON bodies
 * this server sends, and throws the output away. The tuning loop so learns each setting's ratio
 * and CPU cost on this node's own responses without serving it, and can answer a path that slows
 * with the right level at once rather than trying the levels one by one on responses that are
 * already late.
 *
 * It spends at most `cpuShare` of one core on average: each measurement's time is paid from a
 * credit that grows with wall time, so one costly setting holds the next measurement back.
 * Measurements run after the response has been handed to the socket, never in its way.
 */
import { performance } from 'node:perf_hooks';
import type { CompressionProbe as ProbeParams } from '../../../crds/tuning.ts';
import { compressBody } from './transport.ts';

export interface ProbeSample {
  readonly encoding: 'gzip' | 'br';
  readonly level: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly seconds: number;
}

/** Credit that idle time may bank: a quiet minute does not buy a burst of measurements. */
const MAX_CREDIT_S = 0.1;

export class CompressionProbe {
  readonly #onSample: (s: ProbeSample) => void;
  readonly #now: () => number;
  #params: ProbeParams = { settings: [], cpuShare: 0 };
  #next = 0;
  #credit = 0;
  #at: number;
  #pending = false;

  /** `now` is in milliseconds, performance.now() by default. */
  constructor(onSample: (s: ProbeSample) => void, now: () => number = () => performance.now()) {
    this.#onSample = onSample;
    this.#now = now;
    this.#at = now();
  }

  configure(params: ProbeParams): void {
    if (params === this.#params) return;
    this.#accrue();
    this.#params = params;
    this.#next = 0;
  }

  /** A body just sent: it is measured on the next turn of the event loop if the budget allows. */
  offer(body: Buffer): void {
    if (this.#params.settings.length === 0 || this.#pending) return;
    this.#accrue();
    if (this.#credit < 0) return;
    this.#pending = true;
    setImmediate(() => {
      this.#pending = false;
      this.measure(body);
    });
  }

  /** Measures `body` with the next setting in turn, whatever the budget; returns the sample. */
  measure(body: Buffer): ProbeSample | undefined {
    const { settings } = this.#params;
    const setting = settings[this.#next % settings.length];
    if (setting === undefined) return undefined;
    this.#next = (this.#next + 1) % settings.length;
    const t = performance.now();
    const out = compressBody(body, setting.algorithm, setting.level);
    const seconds = (performance.now() - t) / 1000;
    this.#accrue();
    this.#credit -= seconds;
    const sample = {
      encoding: setting.algorithm,
      level: setting.level,
      bytesIn: body.byteLength,
      bytesOut: out.byteLength,
      seconds,
    };
    this.#onSample(sample);
    return sample;
  }

  #accrue(): void {
    const now = this.#now();
    this.#credit = Math.min(MAX_CREDIT_S, this.#credit + ((now - this.#at) / 1000) * this.#params.cpuShare);
    this.#at = now;
  }
}
