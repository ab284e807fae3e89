import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeJson } from './pod-merge.ts';

test('pod overrides merge maps by key and named lists by name', () => {
  const base = {
    containers: [{ name: 'server', image: 'a', env: [{ name: 'X', value: '1' }] }],
    volumes: [{ name: 'tmp', emptyDir: {} }],
    nodeSelector: { a: '1' },
    tolerations: [{ key: 'k' }],
  };
  const merged = mergeJson(base, {
    containers: [
      { name: 'server', env: [{ name: 'Y', value: '2' }] },
      { name: 'sidecar', image: 'b' },
    ],
    nodeSelector: { b: '2' },
    tolerations: [{ key: 'other' }],
    priorityClassName: 'high',
  });
  assert.deepEqual(merged, {
    containers: [
      {
        name: 'server',
        image: 'a',
        env: [
          { name: 'X', value: '1' },
          { name: 'Y', value: '2' },
        ],
      },
      { name: 'sidecar', image: 'b' },
    ],
    volumes: [{ name: 'tmp', emptyDir: {} }],
    nodeSelector: { a: '1', b: '2' },
    tolerations: [{ key: 'other' }],
    priorityClassName: 'high',
  });
});
