import assert from 'node:assert/strict';
import { test } from 'node:test';
import { otherCpuPercent, parsePidStat, parseProcStat, treeTicks, type PidStat } from './cpu.ts';

test('/proc/stat busy time is user + nice + system + irq + softirq + steal', () => {
  const text = 'cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 50 2 25 500 3 1 1 0 0 0\n';
  assert.equal(parseProcStat(text), 100 + 5 + 50 + 3 + 2 + 1);
});

test('a pid stat line gives its parent and its user + system ticks, even with spaces in the name', () => {
  const line = '4242 (node (main) x) S 17 4242 17 0 -1 4194560 900 0 0 0 250 40 0 0 20 0 11 0 123 0 0';
  assert.deepEqual(parsePidStat(line), { ppid: 17, ticks: 290 });
});

test('tree ticks add a process and all its descendants, no one else', () => {
  const stats = new Map<number, PidStat>([
    [1, { ppid: 0, ticks: 1000 }],
    [10, { ppid: 1, ticks: 5 }],
    [11, { ppid: 10, ticks: 7 }],
    [12, { ppid: 11, ticks: 11 }],
    [20, { ppid: 1, ticks: 13 }],
  ]);
  assert.equal(treeTicks(stats, 10), 23);
  assert.equal(treeTicks(stats, 20), 13);
  assert.equal(treeTicks(stats, 99), 0);
});

test('other CPU is the busy time not spent by our processes, as a share of all CPUs', () => {
  const a = { at: 0, busyTicks: 1000, ownTicks: 300 };
  // 2 s on 2 CPUs = 400 ticks of capacity; 200 busy, 150 ours: 50 other = 12.5 %.
  assert.equal(otherCpuPercent(a, { at: 2000, busyTicks: 1200, ownTicks: 450 }, 2), 12.5);
  assert.equal(otherCpuPercent(a, null, 2), null);
  assert.equal(otherCpuPercent(a, { at: 2000, busyTicks: 1100, ownTicks: 450 }, 2), 0);
});
