import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { CompressionProbe, type ProbeSample } from './compression-probe.ts';
import { compressBody } from './transport.ts';

const BODY = Buffer.from(
  JSON.stringify({ choices: Array.from({ length: 2000 }, (_, i) => ({ i, t: 'tok' })) }),
);
const SETTINGS = [
  { algorithm: 'gzip', level: 1 },
  { algorithm: 'br', level: 5 },
] as const;

function probe(cpuShare: number) {
  const samples: ProbeSample[] = [];
  const clock = { ms: 0 };
  const p = new CompressionProbe(
    (s) => samples.push(s),
    () => clock.ms,
  );
  p.configure({ settings: [...SETTINGS], cpuShare });
  return { p, samples, clock };
}

describe('compression probe', () => {
  it('measures the settings in turn, on the body as it would be compressed', () => {
    const { p, samples } = probe(0.02);
    for (let i = 0; i < 3; i++) p.measure(BODY);
    assert.deepEqual(
      samples.map((s) => `${s.encoding}:${String(s.level)}`),
      ['gzip:1', 'br:5', 'gzip:1'],
    );
    const [gz, br] = samples;
    assert.ok(gz !== undefined && br !== undefined);
    assert.equal(gz.bytesIn, BODY.byteLength);
    assert.equal(gz.bytesOut, compressBody(BODY, 'gzip', 1).byteLength);
    assert.equal(br.bytesOut, compressBody(BODY, 'br', 5).byteLength);
    assert.ok(gz.bytesOut < gz.bytesIn && gz.seconds > 0);
    // What the server would send decodes back to the body.
    assert.deepEqual(gunzipSync(compressBody(BODY, 'gzip', 1)), BODY);
    assert.deepEqual(brotliDecompressSync(compressBody(BODY, 'br', 5)), BODY);
  });

  it('spends no more than its share of the CPU: a measurement holds the next back', async () => {
    const { p, samples, clock } = probe(0.01);
    p.offer(BODY);
    await turn();
    assert.equal(samples.length, 1, 'the first body is measured');
    const spent = samples[0]?.seconds ?? 0;
    // Not enough time has passed to pay for what the first measurement took.
    clock.ms += (spent / 0.01) * 1000 * 0.5;
    p.offer(BODY);
    await turn();
    assert.equal(samples.length, 1, 'held back at half the time it must wait');
    clock.ms += (spent / 0.01) * 1000 * 0.6;
    p.offer(BODY);
    await turn();
    assert.equal(samples.length, 2, 'measured once the share has paid for it');
  });

  it('measures nothing without settings, and only one body per turn of the event loop', async () => {
    const { p, samples, clock } = probe(0.5);
    clock.ms += 60_000;
    p.offer(BODY);
    p.offer(BODY);
    await turn();
    assert.equal(samples.length, 1);
    p.configure({ settings: [], cpuShare: 0.5 });
    clock.ms += 60_000;
    p.offer(BODY);
    await turn();
    assert.equal(samples.length, 1);
  });
});
