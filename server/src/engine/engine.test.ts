/**
 * The engine on real onnxruntime and seeded random models, for both KV layouts: every
 * request in a busy, staggered batch produces exactly the tokens it produces alone.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildRandom } from '../model/build/index.ts';
import type { Profile } from '../model/build/options.ts';
import { Tokenizer } from '../model/tokenizer/tokenizer.ts';
import { DecoderSession } from '../runtime/decoder.ts';
import { openKvCache } from '../runtime/open-kv.ts';
import { Engine, type EngineParams } from './engine.ts';
import { GREEDY } from './sampler.ts';
import type { GenerationRequest, GenerationResult } from './types.ts';

const root = await mkdtemp(join(tmpdir(), 'autoglm-engine-'));
after(() => rm(root, { recursive: true, force: true }));

interface Outcome {
  readonly text: string;
  readonly tokens: number[];
  readonly result: GenerationResult;
}

async function collect(engine: Engine, req: GenerationRequest): Promise<Outcome> {
  let text = '';
  const tokens: number[] = [];
  for await (const ev of engine.submit(req)) {
    if (ev.type === 'done') return { text, tokens, result: ev.result };
    text += ev.delta.text;
    tokens.push(...ev.delta.tokenIds);
  }
  throw new Error('no done event');
}

function request(
  promptIds: number[],
  maxTokens: number,
  extra: Partial<GenerationRequest> = {},
): GenerationRequest {
  return {
    requestId: `r-${promptIds.join('-')}`,
    promptIds,
    sampling: GREEDY,
    stopping: { maxTokens, stopStrings: [], stopTokenIds: [], ignoreEos: true },
    logprobs: false,
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const profile of ['fast', 'portable'] as Profile[]) {
  describe(`engine with the ${profile === 'fast' ? 'shared-slot' : 'padded'} KV cache`, () => {
    let session: DecoderSession;
    let tokenizer: Tokenizer;
    let params: EngineParams = { maxBatchSize: 8, maxBatchedTokens: 48, maxQueueDelayMs: 0 };

    let preemptions = 0;
    const make = (capacityTokens = 8 * 128, maxSeqs = 8, maxModelLen = 128): Engine =>
      new Engine({
        observer: {
          onPreempt: () => {
            preemptions++;
          },
        },
        kv: openKvCache(session, { maxSeqs, capacityTokens, maxModelLen }),
        params: () => params,
        decoder: (ctx) => tokenizer.incrementalDecoder({ skipSpecialTokens: true, context: ctx }),
        eosTokenIds: tokenizer.eosTokenIds,
        maxModelLen,
        maxWaiting: 64,
      });

    before(async () => {
      const dir = join(root, profile);
      await buildRandom('small', dir, { profile, precision: 'fp32' }, { seed: 3 });
      session = await DecoderSession.open(dir, { device: 'cpu', intraOpThreads: 2 });
      tokenizer = await Tokenizer.load(dir);
      assert.equal(session.sharedKv, profile === 'fast');
    });
    after(() => session.dispose());

    const prompts = [
      [5, 9, 300, 42, 17],
      [100, 200, 300],
      Array.from({ length: 70 }, (_, i) => 10 + i), // longer than the token budget: chunked
      [7],
      [1000, 1001, 1002, 1003, 1004, 1005, 1006],
      [42, 42, 42, 42],
    ];
    const lengths = [12, 20, 9, 16, 5, 14];

    test('batched equals unbatched: staggered arrivals, different lengths, chunked prefill', async () => {
      params = { maxBatchSize: 8, maxBatchedTokens: 48, maxQueueDelayMs: 0 };
      const alone: number[][] = [];
      for (const [i, p] of prompts.entries())
        alone.push((await collect(make(), request(p, lengths[i] ?? 8))).tokens);
      const engine = make();
      const together = await Promise.all(
        prompts.map(async (p, i) => {
          await sleep(i * 7);
          return collect(engine, request(p, lengths[i] ?? 8));
        }),
      );
      together.forEach((o, i) => {
        assert.deepEqual(o.tokens, alone[i], `request ${i}`);
        assert.equal(o.result.finishReason, 'length');
        assert.equal(o.result.completionTokens, lengths[i]);
      });
      assert.equal(engine.kvUsage(), 0, 'every sequence freed its cache');
    });

    test('a cancelled request stops within a step and frees its cache; the others are unaffected', async () => {
      const engine = make();
      const want = (await collect(make(), request(prompts[0] ?? [], 20))).tokens;
      const abort = new AbortController();
      const cancelled = (async () => {
        const got: number[] = [];
        for await (const ev of engine.submit(request(prompts[1] ?? [], 100, { signal: abort.signal }))) {
          if (ev.type === 'done') return { got, reason: ev.result.finishReason };
          got.push(...ev.delta.tokenIds);
          if (got.length === 3) abort.abort();
        }
        throw new Error('no done');
      })();
      const other = collect(engine, request(prompts[0] ?? [], 20));
      const c = await cancelled;
      assert.equal(c.reason, 'abort');
      assert.ok(c.got.length <= 4, `stopped after ${c.got.length} tokens`);
      assert.deepEqual((await other).tokens, want);
      assert.equal(engine.kvUsage(), 0);
    });

    test('stop strings end the text before them, across token boundaries', async () => {
      const engine = make();
      const free = await collect(engine, request(prompts[4] ?? [], 24));
      const stop = free.text.slice(4, 7);
      assert.ok(stop.length === 3, `generated text too short: ${JSON.stringify(free.text)}`);
      const cut = await collect(
        engine,
        request(prompts[4] ?? [], 24, {
          stopping: { maxTokens: 24, stopStrings: [stop], stopTokenIds: [], ignoreEos: true },
        }),
      );
      assert.equal(cut.text, free.text.slice(0, free.text.indexOf(stop)));
      assert.equal(cut.result.finishReason, 'stop');
    });

    test('sequences that outgrow the cache buffers (and leave them oversized) keep their outputs', async () => {
      params = { maxBatchSize: 8, maxBatchedTokens: 256, maxQueueDelayMs: 0 };
      const long = Array.from({ length: 180 }, (_, i) => 20 + ((i * 7) % 900));
      const mix = [long, prompts[0] ?? [], prompts[1] ?? []];
      const want: number[][] = [];
      for (const p of mix) want.push((await collect(make(8 * 512, 8, 512), request(p, 40))).tokens);
      const engine = make(8 * 512, 8, 512);
      const first = await Promise.all(mix.map((p) => collect(engine, request(p, 40))));
      // The long one is gone now: short sequences run again in a cache that must shrink back.
      const second = await collect(engine, request(prompts[0] ?? [], 40));
      first.forEach((o, i) => {
        assert.deepEqual(o.tokens, want[i], `request ${i}`);
      });
      assert.deepEqual(second.tokens, want[1]);
      assert.equal(engine.kvUsage(), 0);
    });

    test('a failed model run ends its sequence with an error; the engine goes on', async () => {
      const engine = make();
      // A token id past the vocabulary makes onnxruntime's Gather fail: a real run failure.
      const bad = await collect(engine, request([5, 1_000_000, 7], 4));
      assert.equal(bad.result.finishReason, 'error');
      const good = await collect(engine, request(prompts[0] ?? [], 4));
      assert.equal(good.result.finishReason, 'length');
      assert.equal(engine.kvUsage(), 0);
    });

    test('a full cache preempts the newest sequence and recomputes it: outputs unchanged', async () => {
      params = { maxBatchSize: 4, maxBatchedTokens: 64, maxQueueDelayMs: 0 };
      const want = await Promise.all(
        prompts.slice(0, 3).map((p, i) => collect(make(), request(p, lengths[i] ?? 8))),
      );
      // Room for about two full sequences: a third must wait or be preempted and recomputed.
      const engine = make(profile === 'fast' ? 2 * 128 : 200, profile === 'fast' ? 2 : 4);
      preemptions = 0;
      const got = await Promise.all(
        prompts.slice(0, 3).map((p, i) => collect(engine, request(p, lengths[i] ?? 8))),
      );
      got.forEach((o, i) => {
        assert.deepEqual(o.tokens, want[i]?.tokens, `request ${i}`);
      });
      assert.equal(engine.kvUsage(), 0);
      // Slots never overflow (the third request waits for one); the padded batch outgrows its room.
      if (profile === 'portable') assert.ok(preemptions > 0, 'a sequence was preempted');
      else assert.equal(preemptions, 0);
    });
  });
}
