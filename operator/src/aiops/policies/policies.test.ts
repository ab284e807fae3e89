import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aimd, nextBatchSize } from './batching.ts';
import { armsWithin, chooseArm, type Arm, type ArmStats } from './compression.ts';
import { decideReplicas, type ReplicaSignals } from './replicas.ts';
import { nextChunkTokens } from './transport.ts';

const B = { min: 1, max: 8, queueThreshold: 5, kvThreshold: 0.8 };
const idle: ReplicaSignals = {
  current: 2,
  ready: 2,
  peakQueue: 0,
  peakKvUsage: 0.1,
  windowQueueSum: 0,
  windowKvSum: 0.2,
  windowQueueMax: 0,
  windowKvMax: 0.1,
};

describe('replicas', () => {
  it('scales up at once when saturated, at most doubling, within max', () => {
    assert.equal(decideReplicas({ ...idle, peakQueue: 6 }, B).replicas, 3);
    assert.equal(decideReplicas({ ...idle, peakQueue: 50 }, B).replicas, 4, 'at most ×2');
    assert.equal(decideReplicas({ ...idle, current: 6, ready: 6, peakQueue: 50 }, B).replicas, 8, 'max');
    assert.equal(decideReplicas({ ...idle, peakKvUsage: 0.85 }, B).replicas, 3, 'KV saturation counts too');
  });

  it('counts starting replicas as capacity', () => {
    assert.equal(decideReplicas({ ...idle, ready: 1, peakQueue: 50 }, B).replicas, 2);
  });

  it('scales down one at a time, only if one fewer would stay unsaturated over the window', () => {
    assert.equal(decideReplicas(idle, B).replicas, 1);
    assert.equal(
      decideReplicas({ ...idle, current: 3, ready: 3, windowQueueSum: 10 }, B).replicas,
      3,
      '10 over 2 = 5 ≥ 0.9 × 5',
    );
    assert.equal(
      decideReplicas({ ...idle, current: 3, ready: 3, windowQueueSum: 6, windowQueueMax: 2 }, B).replicas,
      2,
    );
    assert.equal(decideReplicas({ ...idle, current: 1, ready: 1 }, B).replicas, 1, 'never below min');
  });

  it('does not scale down when the busiest replica would saturate with its share of one fewer', () => {
    // Peaks of 3.5, 2, 2, 2: 9.5 over 3 replicas is 3.2, but the busiest would take 3.5 × 4/3.
    const uneven = { ...idle, current: 4, ready: 4, windowQueueSum: 3.5 + 2 + 2 + 2, windowQueueMax: 3.5 };
    assert.equal(decideReplicas(uneven, B).replicas, 4, '4.7 ≥ 0.9 × 5');
    const even = { ...uneven, windowQueueSum: 3 + 3 + 3 + 3, windowQueueMax: 3 };
    assert.equal(decideReplicas(even, B).replicas, 3, '12 / 3 = 3 × 4/3 = 4 < 4.5');
    // Never more than the whole load: from 2 replicas to 1, the one left takes the sum.
    const two = { ...idle, current: 2, ready: 2, windowKvSum: 0.6, windowKvMax: 0.4 };
    assert.equal(decideReplicas(two, B).replicas, 1, 'KV 0.6 on one < 0.72, though 0.4 × 2 is not');
    const kvUneven = { ...idle, current: 3, ready: 3, windowKvSum: 0.9, windowKvMax: 0.5 };
    assert.equal(decideReplicas(kvUneven, B).replicas, 3, 'KV: 0.5 × 3/2 = 0.75 ≥ 0.72');
  });

  it('a square wave between idle and saturated does not flap down while the window holds the peak', () => {
    // The window's peak sum stays at the saturated level for the whole stabilization window.
    const burst = { ...idle, current: 4, ready: 4, windowQueueSum: 4 * 6 };
    assert.equal(decideReplicas({ ...burst, peakQueue: 0 }, B).replicas, 4);
  });

  it('brings a count outside the bounds back inside', () => {
    assert.equal(decideReplicas({ ...idle, current: 12, ready: 12 }, B).replicas, 8);
  });
});

describe('batching', () => {
  const slo = { ttftP99Ms: 1000, itlP99Ms: 100 };
  const ok = { ttftP99Ms: 200, itlP99Ms: 50, peakQueue: 3, batchP90: 16 };
  it('grows additively while comfortably inside the SLOs with demand', () => {
    assert.equal(aimd(16, ok, slo, { min: 1, max: 64 }, 2).value, 18);
    assert.equal(aimd(64, ok, slo, { min: 1, max: 64 }, 2).value, 64, 'bounded');
    assert.equal(aimd(16, { ...ok, peakQueue: 0 }, slo, { min: 1, max: 64 }, 2).value, 16, 'no demand');
  });
  it('cuts by 10 % on a breach, holds in the dead band', () => {
    assert.equal(aimd(20, { ...ok, itlP99Ms: 120 }, slo, { min: 1, max: 64 }, 2).value, 18);
    assert.equal(aimd(5, { ...ok, itlP99Ms: 120 }, slo, { min: 1, max: 64 }, 2).value, 4, 'always moves');
    assert.equal(aimd(20, { ...ok, itlP99Ms: 95 }, slo, { min: 1, max: 64 }, 2).value, 20);
  });
  it('does not grow a batch cap that batches do not reach', () => {
    assert.equal(nextBatchSize(32, { ...ok, batchP90: 8 }, slo, { min: 1, max: 64 }).value, 32);
    assert.equal(nextBatchSize(16, ok, slo, { min: 1, max: 64 }).value, 18);
  });
});

describe('compression', () => {
  const arms = armsWithin(['none', 'gzip'], 1, 3);
  const none: Arm = { algorithm: 'none', level: 0 };
  const gz = (level: number): Arm => ({ algorithm: 'gzip', level });
  const MB = 1e6;
  /**
   * 50 responses of 1 MB with `ratio` of the bytes sent, `cpuMBps` of compression speed,
   * over a path of `pathMBps`.
   */
  const stat = (arm: Arm, ratio: number, cpuMBps: number, pathMBps: number): ArmStats => ({
    arm,
    responses: 50,
    uncompressedBytes: 50 * MB,
    sentBytes: 50 * MB * ratio,
    compressSeconds: arm.algorithm === 'none' ? 0 : 50 / cpuMBps,
    drainSeconds: (50 * ratio) / pathMBps,
  });
  // Higher levels send less and spend more CPU per byte.
  const levels = (pathMBps: number) => [
    stat(none, 1, Infinity, pathMBps),
    stat(gz(1), 0.3, 100, pathMBps),
    stat(gz(2), 0.25, 40, pathMBps),
    stat(gz(3), 0.22, 10, pathMBps),
  ];

  it('lists the settings inside the bounds', () => {
    assert.deepEqual(
      arms.map((a) => `${a.algorithm}:${String(a.level)}`),
      ['none:0', 'gzip:1', 'gzip:2', 'gzip:3'],
    );
    assert.equal(armsWithin(['br'], 0, 11).length, 12);
  });
  it('measures the current setting first, and never serves a setting to measure it', () => {
    assert.match(chooseArm(arms, [], none).reason, /measuring the current setting/);
    assert.deepEqual(chooseArm(arms, [stat(none, 1, Infinity, 1)], none).arm, none, 'nothing else known');
    const fast = levels(500).slice(0, 2);
    assert.deepEqual(chooseArm(arms, fast, none).arm, none, 'gzip:1 costs more than it saves at 500 MB/s');
    const slow = levels(1).slice(0, 2);
    assert.deepEqual(chooseArm(arms, slow, none).arm, gz(1), 'at 1 MB/s it pays; gzip:2 is not known');
  });
  it('settles where CPU plus transfer time per byte is least', () => {
    // 1 MB/s: gzip:1 0.31 s/MB, gzip:2 0.275, gzip:3 0.32 (its CPU outweighs its saving).
    assert.deepEqual(chooseArm(arms, levels(1), none).arm, gz(2));
    assert.deepEqual(
      chooseArm(arms, levels(500), gz(2)).arm,
      none,
      'compression does not pay on a fast path',
    );
  });
  it('judges every setting on the recent path, not on the path it was measured on', () => {
    // Measured while the path was fast; the path has since slowed to 1 MB/s.
    const reason = chooseArm(arms, levels(500), none, { pathBytesPerS: 1 * MB });
    assert.deepEqual(reason.arm, gz(2));
    assert.match(reason.reason, /path 1\.00 MB\/s/);
  });
  it('moves to the best probed setting in one step, without serving the others first', () => {
    const probed = levels(500).slice(1);
    const pick = chooseArm(arms, [stat(none, 1, Infinity, 500)], none, { probes: probed, pathBytesPerS: MB });
    assert.deepEqual(pick.arm, gz(2), 'at 1 MB/s gzip:2 is cheapest, as measured by the probe');
    assert.deepEqual(
      chooseArm(arms, [], none, { probes: probed, pathBytesPerS: 500 * MB }).arm,
      none,
      'and on a fast path the probe shows compression does not pay',
    );
  });
  it('waits for the probe instead of serving unmeasured settings', () => {
    const served = [stat(none, 1, Infinity, 1)];
    const waiting = chooseArm(arms, served, none, { probes: [], pathBytesPerS: MB });
    assert.deepEqual(waiting.arm, none, 'nothing compressed is measured yet');
    const probed = chooseArm(arms, served, none, { probes: levels(1).slice(1), pathBytesPerS: MB });
    assert.deepEqual(probed.arm, gz(2), 'and the best probed setting once the probe has them');
  });
  it('leaves a setting outside the bounds for the best measured one within them', () => {
    const gzipOnly = armsWithin(['gzip'], 1, 3);
    const fast = { probes: levels(500).slice(1), pathBytesPerS: 500 * MB };
    const pick = chooseArm(gzipOnly, [stat(none, 1, Infinity, 500)], none, fast);
    assert.deepEqual(pick.arm, gz(1), 'none is cheaper on a fast path, but the bounds leave it out');
    assert.match(pick.reason, /outside the bounds/);
    const narrowed = chooseArm(armsWithin(['gzip'], 2, 3), [], gz(6));
    assert.deepEqual(narrowed.arm, gz(2), 'nothing within measured yet: the first they allow, at once');
  });
  it('takes probes only once there are a few of them, and served responses over probes', () => {
    const once = levels(1)
      .slice(1)
      .map((s) => ({ ...s, responses: 1 }));
    const single = chooseArm(arms, [], none, { probes: once, pathBytesPerS: MB });
    assert.deepEqual(single.arm, none, 'one measurement each is not enough to move on');
    // Served gzip:2 turned out worse than its probe said: served wins.
    const served = { ...stat(gz(2), 0.29, 40, 1), responses: 6 };
    const pick = chooseArm(arms, [served], none, { probes: levels(1).slice(1), pathBytesPerS: MB });
    assert.deepEqual(pick.arm, gz(1));
  });
  it('does not leave the current setting for a gain within the hysteresis', () => {
    // gzip:1 at 0.31 s/MB vs gzip:2 at 0.3 s/MB: 3 % apart.
    const close = [
      stat(none, 1, Infinity, 1),
      stat(gz(1), 0.3, 100, 1),
      stat(gz(2), 0.28, 50, 1),
      stat(gz(3), 0.27, 5, 1),
    ];
    assert.deepEqual(chooseArm(arms, close, gz(1)).arm, gz(1));
    assert.deepEqual(chooseArm(arms, close, none).arm, gz(2));
  });
});

describe('transport', () => {
  it('sends more tokens per event when draining outlasts the gap between tokens', () => {
    assert.equal(
      nextChunkTokens(1, { drainSecondsMean: 0.05, itlP50Seconds: 0.02 }, { min: 1, max: 16 }).value,
      2,
    );
    assert.equal(
      nextChunkTokens(8, { drainSecondsMean: 0.001, itlP50Seconds: 0.02 }, { min: 1, max: 16 }).value,
      4,
    );
    assert.equal(
      nextChunkTokens(2, { drainSecondsMean: 0.02, itlP50Seconds: 0.02 }, { min: 1, max: 16 }).value,
      2,
    );
  });
});
