/**
 * The batching policy: given who is running and who is waiting, decide what one engine step
 * does. Pure, so it is tested without a model. Like vLLM's scheduler, decodes go first (one
 * token each) so running sequences never stall behind a long prompt; the rest of the token
 * budget continues partial prefills and then admits waiting requests, first come first
 * served, chunking prompts that do not fit.
 */

export interface RunningSeq {
  readonly id: string;
  /** Prompt tokens not yet prefilled; 0 means the sequence is decoding. */
  readonly remainingPrompt: number;
}

export interface WaitingSeq {
  readonly id: string;
  readonly promptTokens: number;
}

export interface PolicyLimits {
  readonly maxBatchSize: number;
  readonly maxBatchedTokens: number;
  /** KV slots (or room) available for newly admitted sequences. */
  readonly freeSlots: number;
}

export interface StepPlan {
  readonly decode: readonly string[];
  readonly prefill: readonly { readonly id: string; readonly tokens: number }[];
  /** Waiting requests that become running this step (their first chunk is in `prefill`). */
  readonly admit: readonly string[];
}

export function planStep(
  running: readonly RunningSeq[],
  waiting: readonly WaitingSeq[],
  limits: PolicyLimits,
): StepPlan {
  let budget = limits.maxBatchedTokens;
  const decode: string[] = [];
  const prefill: { id: string; tokens: number }[] = [];
  for (const s of running) {
    if (s.remainingPrompt === 0 && budget > 0) {
      decode.push(s.id);
      budget--;
    }
  }
  for (const s of running) {
    if (s.remainingPrompt > 0 && budget > 0) {
      const tokens = Math.min(s.remainingPrompt, budget);
      prefill.push({ id: s.id, tokens });
      budget -= tokens;
    }
  }
  const admit: string[] = [];
  let seats = Math.min(limits.maxBatchSize - running.length, limits.freeSlots);
  for (const w of waiting) {
    if (seats <= 0 || budget <= 0) break;
    const tokens = Math.min(w.promptTokens, budget);
    admit.push(w.id);
    prefill.push({ id: w.id, tokens });
    budget -= tokens;
    seats--;
  }
  return { decode, prefill, admit };
}
