/**
 * The C API binding against onnxruntime-node on a tiny random GroupQueryAttention model:
 * the same prompts and tokens, fed through onnxruntime-node with host buffers bound as both
 * past and present (as SlotKvCache feeds it), give the same logits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ort from 'onnxruntime-node';
import { buildRandom } from '../../model/build/index.ts';
import { DecoderSession } from '../decoder.ts';
import { ortBinaryDir } from '../providers.ts';
import { KvBinding } from './kv-binding.ts';
import { OrtError, ortLibrary } from './library.ts';
import { CapiSession } from './session.ts';

const SLOT_LEN = 32;
const TOLERANCE = 1e-4;

const root = await mkdtemp(join(tmpdir(), 'autoglm-capi-'));
const dir = join(root, 'tiny-fast-fp32');

interface Pair {
  readonly reference: DecoderSession;
  readonly capi: CapiSession;
}

async function openPair(modelDir: string): Promise<Pair> {
  return {
    reference: await DecoderSession.open(modelDir, { device: 'cpu', intraOpThreads: 1 }),
    capi: CapiSession.open(modelDir, { device: 'cpu', intraOpThreads: 1 }),
  };
}

async function closePair(p: Pair): Promise<void> {
  p.capi.dispose();
  await p.reference.dispose();
}

let fp32: Pair;

before(async () => {
  await buildRandom('tiny', dir, { profile: 'fast', precision: 'fp32' }, { seed: 11 });
  fp32 = await openPair(dir);
});

after(async () => {
  await closePair(fp32);
  await rm(root, { recursive: true, force: true });
});

const int64 = (xs: readonly number[]): BigInt64Array => BigInt64Array.from(xs, (x) => BigInt(x));

/** onnxruntime-node over one host buffer per layer, [slots, kvHeads, SLOT_LEN, headDim]. */
class OrtNodeKv {
  readonly #session: DecoderSession;
  readonly #buffers = new Map<string, Float32Array | Uint16Array>();
  readonly #rowElems: number;

  constructor(session: DecoderSession, slots: number) {
    const { layers, kvHeads, headDim, dtype } = session.layout;
    this.#session = session;
    this.#rowElems = kvHeads * SLOT_LEN * headDim;
    const n = slots * this.#rowElems;
    for (let i = 0; i < layers; i++) {
      for (const kv of ['key', 'value']) {
        // onnxruntime-node reads float16 from a Uint16Array only (decoder.ts says why).
        this.#buffers.set(`${i}.${kv}`, dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n));
      }
    }
  }

  async #run(
    first: number,
    rows: number,
    feeds: Record<string, ort.Tensor>,
  ): Promise<{ data: Float32Array; vocab: number }> {
    const { kvHeads, headDim } = this.#session.layout;
    const fetches: Record<string, ort.Tensor | null> = { logits: null };
    const dims = [rows, kvHeads, SLOT_LEN, headDim];
    for (const [key, buf] of this.#buffers) {
      const view = buf.subarray(first * this.#rowElems, (first + rows) * this.#rowElems);
      const t =
        view instanceof Uint16Array
          ? new ort.Tensor('float16', view, dims)
          : new ort.Tensor('float32', view, dims);
      feeds[`past_key_values.${key}`] = t;
      fetches[`present.${key}`] = t;
    }
    const logits = (await this.#session.run(feeds, fetches))['logits'];
    assert.ok(logits !== undefined);
    return { data: logits.data as Float32Array, vocab: logits.dims[2] ?? 0 };
  }

  async prefill(slot: number, tokens: readonly number[], past: number): Promise<Float32Array> {
    const n = tokens.length;
    const { data, vocab } = await this.#run(slot, 1, {
      input_ids: new ort.Tensor('int64', int64(tokens), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(past + n).fill(1n), [1, past + n]),
      position_ids: new ort.Tensor('int64', int64(tokens.map((_, i) => past + i)), [1, n]),
    });
    return data.slice((n - 1) * vocab, n * vocab);
  }

  async step(tokens: readonly number[], lengths: readonly number[]): Promise<Float32Array> {
    const n = tokens.length;
    const width = Math.max(...lengths) + 1;
    const mask = new BigInt64Array(n * width);
    lengths.forEach((len, r) => mask.fill(1n, r * width, r * width + len + 1));
    const { data } = await this.#run(0, n, {
      input_ids: new ort.Tensor('int64', int64(tokens), [n, 1]),
      attention_mask: new ort.Tensor('int64', mask, [n, width]),
      position_ids: new ort.Tensor('int64', int64(lengths), [n, 1]),
    });
    return data.slice();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'same number of logits');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
  return Number.isNaN(worst) ? Infinity : worst;
}

/** Prefills each row's prompt into its slot, then decodes `steps` tokens for all rows at once. */
async function compare(pair: Pair, prompts: readonly (readonly number[])[], steps: number): Promise<void> {
  const { reference, capi } = pair;
  const ref = new OrtNodeKv(reference, prompts.length);
  const kv = new KvBinding(capi, { slots: prompts.length, slotLen: SLOT_LEN });
  try {
    const lengths = prompts.map(() => 0);
    for (const [slot, prompt] of prompts.entries()) {
      const want = await ref.prefill(slot, prompt, 0);
      const all = await kv.prefill(slot, prompt, 0);
      assert.equal(all.length, prompt.length * capi.vocab, 'every position');
      const got = all.subarray(-capi.vocab);
      assert.ok(maxDiff(got, want) <= TOLERANCE, `prefill of slot ${slot}: ${maxDiff(got, want)}`);
      lengths[slot] = prompt.length;
    }
    for (let s = 0; s < steps; s++) {
      const tokens = prompts.map((_, r) => (s * 37 + r * 101 + 5) % capi.vocab);
      const want = await ref.step(tokens, lengths);
      const got = await kv.step(tokens, lengths);
      assert.equal(got.length, prompts.length * capi.vocab);
      assert.ok(
        maxDiff(got, want) <= TOLERANCE,
        `step ${s}, lengths ${lengths.join(',')}: ${maxDiff(got, want)}`,
      );
      if (prompts.length > 1) {
        // Rows with different histories must differ, or the comparison proves little.
        const row = (i: number) => got.subarray(i * capi.vocab, (i + 1) * capi.vocab);
        assert.ok(maxDiff(row(0), row(1)) > 1e-3, 'rows differ');
      }
      lengths.forEach((_, r) => (lengths[r] = (lengths[r] ?? 0) + 1));
    }
  } finally {
    kv.dispose();
  }
}

const THREE_ROWS = [
  [1, 5, 9, 14, 3],
  [1, 7],
  [1, 40, 2, 8, 77, 300, 12, 9, 4],
];

test('the C API table matches the runtime onnxruntime-node loads', () => {
  assert.equal(ortLibrary().version, ort.env.versions.common);
  assert.deepEqual(fp32.capi.layout, fp32.reference.layout);
  assert.equal(fp32.capi.kvOnDevice, false);
});

test('batch 1: prefill and decode steps match onnxruntime-node', async () => {
  await compare(fp32, [[1, 5, 9, 14, 3]], 5);
});

test('batch 3 with different lengths: every row matches onnxruntime-node', async () => {
  await compare(fp32, THREE_ROWS, 5);
});

test('a float16 cache matches onnxruntime-node too', async () => {
  const fp16Dir = join(root, 'tiny-fast-fp16');
  await buildRandom('tiny', fp16Dir, { profile: 'fast', precision: 'fp16' }, { seed: 11 });
  const fp16 = await openPair(fp16Dir);
  try {
    assert.equal(fp16.capi.layout.dtype, 'float16');
    await compare(fp16, THREE_ROWS, 3);
  } finally {
    await closePair(fp16);
  }
});

test('a step may run fewer rows than there are slots', async () => {
  const ref = new OrtNodeKv(fp32.reference, 3);
  const kv = new KvBinding(fp32.capi, { slots: 3, slotLen: SLOT_LEN });
  try {
    for (const [slot, prompt] of [
      [1, 2, 3],
      [4, 5],
    ].entries()) {
      await ref.prefill(slot, prompt, 0);
      await kv.prefill(slot, prompt, 0);
    }
    for (const [tokens, lengths] of [
      [
        [7, 8],
        [3, 2],
      ],
      [[9], [4]],
      [
        [10, 11],
        [5, 3],
      ],
    ] as const) {
      const want = await ref.step(tokens, lengths);
      assert.ok(maxDiff(await kv.step(tokens, lengths), want) <= TOLERANCE);
    }
  } finally {
    kv.dispose();
  }
});

test('errors from ONNX Runtime and misuse are thrown, not swallowed', async () => {
  assert.throws(() => CapiSession.open(join(root, 'missing'), { device: 'cpu' }), OrtError);
  const kv = new KvBinding(fp32.capi, { slots: 2, slotLen: 4 });
  try {
    await assert.rejects(kv.step([1], [4]), /no room/);
    await assert.rejects(kv.step([1, 2, 3], [0, 0, 0]), /1 to 2 rows/);
    await assert.rejects(kv.prefill(0, [1, 2, 3], 2), /do not fit/);
    const first = kv.step([1], [0]);
    await assert.rejects(kv.step([1], [1]), /already running/);
    await first;
  } finally {
    kv.dispose();
  }
  await assert.rejects(kv.step([1], [0]), /disposed/);
});

test('a session disposed before its binding keeps its native objects until the binding goes', async () => {
  const session = CapiSession.open(dir, { device: 'cpu', intraOpThreads: 1 });
  const kv = new KvBinding(session, { slots: 1, slotLen: 8 });
  await kv.prefill(0, [1, 2], 0);
  session.dispose();
  await assert.rejects(kv.step([3], [2]), /session is disposed/);
  kv.dispose();
});

test('collected sessions and bindings are released, and the library stays loaded', () => {
  // A process of its own, without onnxruntime-node holding the library open.
  const url = (f: string): string => JSON.stringify(new URL(f, import.meta.url).href);
  const script = `
    const { ortLibrary } = await import(${url('./library.ts')});
    const { CapiSession } = await import(${url('./session.ts')});
    const { KvBinding } = await import(${url('./kv-binding.ts')});
    const collect = async () => {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    };
    ortLibrary();
    await collect();
    for (let i = 0; i < 3; i++) {
      await (async () => {
        const kv = new KvBinding(CapiSession.open(${JSON.stringify(dir)}, { device: 'cpu' }), { slots: 1, slotLen: 8 });
        await kv.prefill(0, [1, 2], 0);
        await kv.step([3], [2]);
      })();
      await collect();
    }`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
});

test('opening on CUDA without its provider library fails with the runtime reason', (t) => {
  if (existsSync(join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so'))) {
    t.skip('the CUDA provider is installed here');
    return;
  }
  assert.throws(() => CapiSession.open(dir, { device: 'cuda' }), /UpdateCUDAProviderOptions|CUDA/);
});
