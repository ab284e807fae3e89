import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GENERATED_FILES, staleFiles } from './generated.ts';

test('every generated file under crds/ matches what its source renders', async () => {
  assert.deepEqual(await staleFiles(), [], 'regenerate with: node scripts/gen-crds.ts');
});

test('the tuning JSON Schema is among the generated files', () => {
  assert.ok(GENERATED_FILES.some((f) => f.path === 'crds/tuning.schema.json'));
});
