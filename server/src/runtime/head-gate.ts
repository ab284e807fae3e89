/**
 * Per-sequence attention-head gating for models built with head gating. Every `interval`
 * tokens a sequence runs one step with every head and reads each head's attention entropy
 * (normalized to 0..1); until the next measurement it computes only the heads at or above
 * `threshold`. The heads skipped are the most focused ones: on the default model that cost
 * less perplexity per head skipped than skipping the most diffuse ones (docs/sparsity.md has
 * the numbers); many focused heads only watch the first token, an attention sink.
 * A sequence is first measured once it holds `interval` tokens, since a query that sees
 * few keys has low entropy in every head. At least one head per layer stays on, the most
 * diffuse one.
 */
import ort from 'onnxruntime-node';
import { headEntropyOutput, headIndexInput } from '../model/build/gated-attention.ts';

export interface GateParams {
  /** Normalized entropy below which a head is skipped; 0 skips none. */
  readonly threshold: number;
  /** Tokens between two measurements. */
  readonly interval: number;
}

interface SeqGate {
  /** Active query heads per layer. */
  active: (readonly number[])[];
  /** Tokens since the last measurement; Infinity before the first. */
  since: number;
  /** Tokens the sequence has run. */
  seen: number;
}

/** What one run computes: each row's head lists, and which rows measure. */
export interface GatePlan {
  readonly feeds: Record<string, ort.Tensor>;
  readonly measuring: readonly boolean[];
  readonly fetchEntropy: boolean;
}

export class HeadGate {
  readonly layers: number;
  readonly heads: number;
  readonly #params: () => GateParams;
  /** Every query head, shared by all sequences that compute them all. */
  readonly #all: readonly number[];
  readonly #seqs = new Map<string, SeqGate>();
  /** Head-layer units of attention computed and the units an ungated model computes, per query token. */
  computed = 0;
  total = 0;

  constructor(layers: number, heads: number, params: () => GateParams) {
    this.layers = layers;
    this.heads = heads;
    this.#params = params;
    this.#all = Array.from({ length: heads }, (_, h) => h);
  }

  #state(seqId: string): SeqGate {
    let st = this.#seqs.get(seqId);
    if (st === undefined) {
      st = { active: new Array<readonly number[]>(this.layers).fill(this.#all), since: Infinity, seen: 0 };
      this.#seqs.set(seqId, st);
    }
    return st;
  }

  /** Feeds for one run over `seqIds` (the batch rows, in order), each adding `tokens` query tokens. */
  plan(seqIds: readonly string[], tokens: number): GatePlan {
    const { threshold, interval } = this.#params();
    const on = threshold > 0;
    const states = seqIds.map((id) => this.#state(id));
    const measuring = states.map((st) => on && st.since >= interval && st.seen + tokens >= interval);
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      const lists = states.map((st, r) =>
        !on || measuring[r] === true ? this.#all : (st.active[l] ?? this.#all),
      );
      const width = Math.max(...lists.map((x) => x.length));
      const data = new BigInt64Array(seqIds.length * width);
      lists.forEach((list, r) => {
        for (let j = 0; j < width; j++) data[r * width + j] = BigInt(list[j] ?? list[0] ?? 0);
      });
      feeds[headIndexInput(l)] = new ort.Tensor('int64', data, [seqIds.length, width]);
      this.computed += seqIds.length * width * tokens;
      this.total += seqIds.length * this.heads * tokens;
    }
    return { feeds, measuring, fetchEntropy: measuring.some(Boolean) };
  }

  /** Output names a run must fetch besides logits and presents. */
  fetches(plan: GatePlan): string[] {
    return plan.fetchEntropy ? Array.from({ length: this.layers }, (_, l) => headEntropyOutput(l)) : [];
  }

  /** Takes a run's entropies: rows that measured get their new active heads. */
  observe(
    seqIds: readonly string[],
    tokens: number,
    plan: GatePlan,
    outputs: Record<string, ort.Tensor>,
  ): void {
    const { threshold } = this.#params();
    seqIds.forEach((id, r) => {
      const st = this.#state(id);
      st.seen += tokens;
      if (plan.measuring[r] !== true) {
        st.since += tokens;
        return;
      }
      for (let l = 0; l < this.layers; l++) {
        const t = outputs[headEntropyOutput(l)];
        if (t === undefined) throw new Error(`model produced no ${headEntropyOutput(l)}`);
        const width = t.dims[1] ?? 0;
        const e = (t.data as Float32Array).subarray(r * width, r * width + this.heads);
        const keep = this.#all.filter((h) => (e[h] ?? 0) >= threshold);
        st.active[l] = keep.length > 0 ? keep : [argmax(e)];
      }
      st.since = tokens;
    });
  }

  free(seqId: string): void {
    this.#seqs.delete(seqId);
  }
}

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if ((xs[i] ?? -Infinity) > (xs[best] ?? -Infinity)) best = i;
  return best;
}
