/** Picks the KV cache layout a model supports and sizes it. */
import { join } from 'node:path';
import { CapiSession } from './capi/session.ts';
import { CapiSlotStore } from './capi/kv-store.ts';
import { DecoderSession, usesGroupQueryAttention, type Device, type Provider } from './decoder.ts';
import { HeadGate } from './head-gate.ts';
import type { KvCache, KvWindow } from './kv.ts';
import { PaddedKvCache } from './kv-padded.ts';
import { MIN_LEN, SlotKvCache } from './kv-slots.ts';
import { NodeSlotStore } from './kv-store-node.ts';
import { providerAvailable } from './providers.ts';

export interface KvSizing {
  /** Most sequences at once. */
  readonly maxSeqs: number;
  /** Total tokens of cache. */
  readonly capacityTokens: number;
  /** Longest sequence: the slot length of the shared layout. */
  readonly maxModelLen: number;
}

/** The sparsity knobs, as the live serving parameters carry them. */
export interface SparsityParams {
  readonly kvWindowTokens: number;
  readonly kvSinkTokens: number;
  readonly headEntropyThreshold: number;
  readonly headUpdateInterval: number;
}

function slotCount(s: KvSizing): number {
  return Math.max(1, Math.min(s.maxSeqs, Math.floor(s.capacityTokens / s.maxModelLen)));
}

function windowOf(sparsity: () => SparsityParams): () => KvWindow {
  return () => {
    const p = sparsity();
    return { sinks: p.kvSinkTokens, window: p.kvWindowTokens };
  };
}

const DENSE: SparsityParams = {
  kvWindowTokens: 0,
  kvSinkTokens: 0,
  headEntropyThreshold: 0,
  headUpdateInterval: 1,
};

/**
 * `sparsity` is read at every step, so a live change applies on the next one. The KV window
 * needs the shared-slot layout (the padded layout keeps every token); head gating needs a
 * model built with it.
 */
export function openKvCache(
  session: DecoderSession,
  s: KvSizing,
  sparsity: () => SparsityParams = () => DENSE,
): KvCache {
  if (session.sharedKv) {
    const store = new NodeSlotStore(session, slotCount(s), s.maxModelLen, Math.min(MIN_LEN, s.maxModelLen));
    return new SlotKvCache(store, windowOf(sparsity));
  }
  const heads = session.gatedHeads;
  const gate =
    heads === undefined
      ? undefined
      : new HeadGate(session.layout.layers, heads, () => {
          const p = sparsity();
          return { threshold: p.headEntropyThreshold, interval: p.headUpdateInterval };
        });
  return new PaddedKvCache(session, s.capacityTokens, s.maxSeqs, gate);
}

/**
 * How steps reach ONNX Runtime: `capi` through its C API (the cache stays where attention
 * reads it and only logits come back), `node` through onnxruntime-node (which copies every
 * output after each run), `auto` the C API wherever it applies: GroupQueryAttention models on
 * the CPU or CUDA.
 */
export const BINDINGS = ['auto', 'capi', 'node'] as const;
export type Binding = (typeof BINDINGS)[number];

export interface ServingModelOptions {
  readonly device: Device;
  readonly binding: Binding;
  readonly threads: number;
  readonly fileName?: string;
}

export interface ServingModel {
  readonly kv: KvCache;
  readonly provider: Provider;
  readonly binding: 'capi' | 'node';
  /** Providers tried before the one used, and why each was not. */
  readonly skipped: readonly string[];
  readonly layout: 'shared-slots' | 'padded';
  dispose(): Promise<void>;
}

/** The C API's device for a request, or undefined where onnxruntime-node must serve it. */
function capiDevice(device: Device, skipped: string[]): 'cpu' | 'cuda' | undefined {
  if (device === 'cpu' || device === 'cuda') return device;
  if (device === 'webgpu') return undefined;
  const cuda = providerAvailable('cuda');
  if (cuda.ok) return 'cuda';
  skipped.push(`cuda: ${cuda.reason}`);
  // WebGPU, where it loads, is the next choice, and only onnxruntime-node has it.
  return providerAvailable('webgpu').ok ? undefined : 'cpu';
}

function firstLine(err: unknown): string {
  return err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
}

function openCapi(
  dir: string,
  o: ServingModelOptions,
  device: 'cpu' | 'cuda',
  sizing: KvSizing,
  sparsity: () => SparsityParams,
): Omit<ServingModel, 'skipped'> {
  const session = CapiSession.open(dir, {
    device,
    intraOpThreads: o.threads,
    ...(o.fileName === undefined ? {} : { fileName: o.fileName }),
  });
  try {
    const maxLen = sizing.maxModelLen;
    const store = new CapiSlotStore(session, slotCount(sizing), maxLen, Math.min(MIN_LEN, maxLen));
    const kv = new SlotKvCache(store, windowOf(sparsity));
    return {
      kv,
      provider: device,
      binding: 'capi',
      layout: 'shared-slots',
      dispose: () => {
        kv.dispose();
        session.dispose();
        return Promise.resolve();
      },
    };
  } catch (err) {
    session.dispose();
    throw err;
  }
}

async function openNode(
  dir: string,
  o: ServingModelOptions,
  sizing: KvSizing,
  sparsity: () => SparsityParams,
): Promise<ServingModel> {
  const session = await DecoderSession.open(dir, {
    device: o.device,
    intraOpThreads: o.threads,
    ...(o.fileName === undefined ? {} : { fileName: o.fileName }),
  });
  const kv = openKvCache(session, sizing, sparsity);
  return {
    kv,
    provider: session.provider,
    binding: 'node',
    skipped: session.skipped,
    layout: session.sharedKv ? 'shared-slots' : 'padded',
    dispose: async () => {
      kv.dispose();
      await session.dispose();
    },
  };
}

/** Opens the model on the best provider and binding it can get, with its KV cache. */
export async function openServingModel(
  dir: string,
  o: ServingModelOptions,
  sizing: KvSizing,
  sparsity: () => SparsityParams = () => DENSE,
): Promise<ServingModel> {
  const skipped: string[] = [];
  const device = o.binding === 'node' ? undefined : capiDevice(o.device, skipped);
  const gqa =
    device !== undefined && (await usesGroupQueryAttention(join(dir, 'onnx', o.fileName ?? 'model.onnx')));
  if (device !== undefined && gqa) {
    try {
      return { ...openCapi(dir, o, device, sizing, sparsity), skipped };
    } catch (err) {
      if (o.binding === 'capi') throw err;
      skipped.push(`${device} (C API): ${firstLine(err)}`);
    }
  } else if (o.binding === 'capi') {
    throw new Error(
      device === undefined
        ? `the C API binding runs on cpu or cuda, not ${o.device}`
        : 'the C API binding needs a model with GroupQueryAttention (the fast profile)',
    );
  }
  const model = await openNode(dir, o, sizing, sparsity);
  // Both checked CUDA under auto: one line per reason.
  return { ...model, skipped: [...new Set([...skipped, ...model.skipped])] };
}
