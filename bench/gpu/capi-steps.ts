/**
 * steps.ts's decode and prefill measurements through the C API binding (server/src/runtime/capi)
 * instead of onnxruntime-node: the cache stays in OrtValues bound as both past and present
 * (device memory on CUDA), and only the logits come back, into a host buffer allocated once.
 * Same shapes and feeds as steps.ts's host layout: every sequence holds `context` tokens, and
 * each slot is as long as the context plus every step the measurement takes.
 */
import type { ProviderName } from '../../server/src/runtime/providers.ts';
import { KvBinding } from '../../server/src/runtime/capi/kv-binding.ts';
import { CapiSession } from '../../server/src/runtime/capi/session.ts';
import { decodeKvBytes, median, tokenIds, WARMUP, type DecodeResult, type PrefillResult } from './steps.ts';

export const BINDINGS = ['ort', 'capi', 'capi-graph'] as const;
export type Binding = (typeof BINDINGS)[number];

export interface CapiBench {
  readonly session: CapiSession;
  release(): void;
}

export function openCapiBench(dir: string, provider: ProviderName, cudaGraph: boolean): CapiBench {
  if (provider === 'webgpu') throw new Error('the C API binding opens cpu and cuda only');
  const session = CapiSession.open(dir, { device: provider, cudaGraph });
  return {
    session,
    release: () => {
      session.dispose();
    },
  };
}

export async function capiDecodeStep(
  b: CapiBench,
  batch: number,
  context: number,
  reps: number,
): Promise<DecodeResult> {
  const steps = WARMUP + reps;
  const kv = new KvBinding(b.session, { slots: batch, slotLen: context + steps });
  try {
    const times: number[] = [];
    for (let step = 0; step < steps; step++) {
      const lengths = new Array<number>(batch).fill(context + step);
      const t = performance.now();
      const logits = await kv.step(tokenIds(batch, b.session.vocab, step), lengths);
      if (step >= WARMUP) times.push(performance.now() - t);
      if (logits.length !== batch * b.session.vocab) throw new Error('no logits for the batch');
    }
    return { batch, stepMs: median(times), kvBytes: decodeKvBytes(b.session.layout, batch, context) };
  } finally {
    kv.dispose();
  }
}

export async function capiPrefill(b: CapiBench, count: number, reps: number): Promise<PrefillResult> {
  const kv = new KvBinding(b.session, { slots: 1, slotLen: count });
  try {
    const times: number[] = [];
    for (let r = 0; r < WARMUP + reps; r++) {
      const t = performance.now();
      await kv.prefill(0, tokenIds(count, b.session.vocab, r), 0);
      if (r >= WARMUP) times.push(performance.now() - t);
    }
    return { tokens: count, ms: median(times) };
  } finally {
    kv.dispose();
  }
}
