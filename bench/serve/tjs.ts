/**
 * The in-process baseline: transformers.js generating from the same ONNX model folder, with
 * its own batching: one model.generate call over a batch of B prompts, B matching a
 * concurrency level. The prompts all have the same length, so the batch needs no padding
 * (the attention mask is all ones). EOS is held off with min_new_tokens = max_new_tokens, as
 * the servers are told to ignore it. A streamer stamps every decoding step: the first is
 * the batch's time to first token, the gaps between them its inter-token latency.
 */
import { basename, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  AutoModelForCausalLM,
  BaseStreamer,
  env,
  InterruptableStoppingCriteria,
  Tensor,
  type TextStreamer,
} from '@huggingface/transformers';
import { otherCpuPercent, sampleCpu } from './cpu.ts';
import { summarize, type Summary } from './stats.ts';

export interface TjsLevel {
  readonly batch: number;
  readonly status: 'ok' | 'cut' | 'skipped' | 'failed';
  readonly note?: string;
  readonly steps: number;
  readonly totalSec: number;
  readonly outputTokensPerSec: number;
  /** Time to the first generated token of the batch: the prefill of all B prompts. */
  readonly ttftMs: number | null;
  /** The gaps between decoding steps (one token for each sequence per step). */
  readonly itlMs: Summary;
  /** (total − ttft) / (steps − 1), what each sequence sees per token. */
  readonly tpotMs: number | null;
  /** Share of all CPUs that other processes used meanwhile (cpu.ts). */
  readonly otherCpuPct?: number | null;
}

export interface TjsResult {
  readonly loadSec: number;
  readonly levels: readonly TjsLevel[];
}

export interface TjsOptions {
  readonly batches: readonly number[];
  readonly maxTokens: number;
  readonly levelTimeoutMs: number;
  /** performance.now() after which no batch starts and a running one stops. */
  readonly deadline: number;
}

class StepClock extends BaseStreamer {
  readonly times: number[] = [];
  #prompt = true;
  readonly #stopper: InterruptableStoppingCriteria;
  readonly #until: number;

  constructor(stopper: InterruptableStoppingCriteria, until: number) {
    super();
    this.#stopper = stopper;
    this.#until = until;
  }

  // generate() first puts the prompt ids, then the tokens of each step.
  override put(): void {
    const now = performance.now();
    if (this.#prompt) {
      this.#prompt = false;
      return;
    }
    this.times.push(now);
    if (now > this.#until) this.#stopper.interrupt();
  }

  override end(): void {
    // Nothing to flush.
  }
}

function idsTensor(prompts: readonly (readonly number[])[]): { ids: Tensor; mask: Tensor } {
  const len = prompts[0]?.length ?? 0;
  if (prompts.some((p) => p.length !== len))
    throw new Error('transformers.js batches need prompts of one length');
  const flat = BigInt64Array.from(prompts.flatMap((p) => p.map(BigInt)));
  return {
    ids: new Tensor('int64', flat, [prompts.length, len]),
    mask: new Tensor('int64', new BigInt64Array(flat.length).fill(1n), [prompts.length, len]),
  };
}

type Model = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

async function runBatch(
  model: Model,
  prompts: readonly (readonly number[])[],
  maxTokens: number,
  until: number,
): Promise<TjsLevel> {
  const stopper = new InterruptableStoppingCriteria();
  const clock = new StepClock(stopper, until);
  const { ids, mask } = idsTensor(prompts);
  const t0 = performance.now();
  await model.generate({
    input_ids: ids,
    attention_mask: mask,
    max_new_tokens: maxTokens,
    min_new_tokens: maxTokens,
    do_sample: false,
    // generate() takes any BaseStreamer; its GenerationConfig typing narrows it to TextStreamer.
    streamer: clock as unknown as TextStreamer,
    stopping_criteria: [stopper],
  });
  const totalMs = performance.now() - t0;
  const steps = clock.times.length;
  const first = clock.times[0];
  const ttft = first === undefined ? null : first - t0;
  return {
    batch: prompts.length,
    status: steps < maxTokens ? 'cut' : 'ok',
    ...(steps < maxTokens ? { note: `time limit after ${steps} of ${maxTokens} steps` } : {}),
    steps,
    totalSec: totalMs / 1000,
    outputTokensPerSec: (prompts.length * steps) / (totalMs / 1000),
    ttftMs: ttft,
    itlMs: summarize(clock.times.slice(1).map((t, i) => t - (clock.times[i] ?? t))),
    tpotMs: ttft !== null && steps > 1 ? (totalMs - ttft) / (steps - 1) : null,
  };
}

const skipped = (batch: number, note: string): TjsLevel => ({
  batch,
  status: 'skipped',
  note,
  steps: 0,
  totalSec: 0,
  outputTokensPerSec: 0,
  ttftMs: null,
  itlMs: summarize([]),
  tpotMs: null,
});

/** Loads the folder with transformers.js and generates one batch per size, ascending. */
export async function benchTransformersJs(
  modelDir: string,
  prompts: readonly (readonly number[])[],
  opts: TjsOptions,
): Promise<TjsResult> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(modelDir)}/`;
  const t0 = performance.now();
  const model = await AutoModelForCausalLM.from_pretrained(basename(modelDir), {
    dtype: 'fp32',
    device: 'cpu',
  });
  const loadSec = (performance.now() - t0) / 1000;
  const levels: TjsLevel[] = [];
  try {
    await runBatch(model, prompts.slice(0, 1), 4, Infinity); // warm-up, not measured
    const batches = [...opts.batches].sort((a, b) => a - b);
    for (const [i, batch] of batches.entries()) {
      const now = performance.now();
      const share = (opts.deadline - now) / (batches.length - i);
      // A batch that hits its limit is cut, not lost: steps done ÷ time is still its rate.
      if (opts.deadline - now < 2000) {
        levels.push(skipped(batch, 'over the run budget'));
        continue;
      }
      if (prompts.length < batch) throw new Error(`${prompts.length} prompts for a batch of ${batch}`);
      const before = sampleCpu();
      const until = now + Math.min(opts.levelTimeoutMs, share);
      const measured = await runBatch(model, prompts.slice(0, batch), opts.maxTokens, until);
      const last = { ...measured, otherCpuPct: otherCpuPercent(before, sampleCpu()) };
      levels.push(last);
      console.error(`  transformers.js batch ${batch}: ${last.outputTokensPerSec.toFixed(1)} tok/s`);
    }
  } finally {
    await model.dispose();
  }
  return { loadSec, levels };
}
