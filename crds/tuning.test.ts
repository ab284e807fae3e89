import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  SERVING_PARAMS_DEFAULTS,
  effectiveParams,
  parseTuningFile,
  servingParamsErrors,
  tuningJsonSchema,
  type ServingParams,
  type TuningFile,
} from './tuning.ts';

const HEAD = 'apiVersion: serving.autoglm.io/v1alpha1\nkind: ServingTuning\n';

function parseOk(text: string): TuningFile {
  const result = parseTuningFile(text);
  if (!result.ok) assert.fail(`expected a valid file, got:\n${result.errors.join('\n')}`);
  return result.value;
}

function parseErrors(text: string): string[] {
  const result = parseTuningFile(text);
  if (result.ok) assert.fail('expected the file to be refused');
  return result.errors;
}

describe('parseTuningFile', () => {
  test('reads YAML and the same document as JSON alike', () => {
    const yaml = `${HEAD}generation: 4
defaults:
  maxBatchSize: 16
  maxQueueDelayMs: 0.5
nodes:
  ip-10-0-1-7.ec2.internal:
    compression: { algorithm: br, level: 11 }
`;
    const json = JSON.stringify({
      apiVersion: 'serving.autoglm.io/v1alpha1',
      kind: 'ServingTuning',
      generation: 4,
      defaults: { maxBatchSize: 16, maxQueueDelayMs: 0.5 },
      nodes: { 'ip-10-0-1-7.ec2.internal': { compression: { algorithm: 'br', level: 11 } } },
    });
    assert.deepEqual(parseOk(yaml), parseOk(json));
    assert.equal(parseOk(yaml).generation, 4);
  });

  test('a file with only apiVersion and kind is valid, and the value is frozen', () => {
    const value = parseOk(`${HEAD}defaults: { compression: { algorithm: gzip, level: 6 } }\n`);
    assert.ok(Object.isFrozen(value));
    assert.ok(Object.isFrozen(value.defaults?.compression));
  });

  test('reports every problem at once, each with its path', () => {
    const errors = parseErrors(`${HEAD}generation: -1
defaults:
  maxBatchsize: 8
  maxBatchedTokens: 8
  maxQueueDelayMs: 20000
  streamChunkTokens: 1.5
nodes:
  node-a:
    maxBatchSize: 2048
    compression: { algorithm: gzip, level: 10 }
  node-b:
    compression: { algorithm: zstd, level: 3 }
  Node_C: {}
surprise: true
`);
    assert.deepEqual(errors, [
      'defaults.maxBatchedTokens: must be >= 16',
      'defaults.maxBatchsize: unknown key (did you mean maxBatchSize?)',
      'defaults.maxQueueDelayMs: must be <= 10000',
      'defaults.streamChunkTokens: must be integer',
      'generation: must be >= 0',
      "nodes.Node_C: is not a valid key; expected a Kubernetes node name (lowercase letters, digits, '-' and '.', at most 253)",
      'nodes["node-a"].compression.level: must be <= 9',
      'nodes["node-a"].maxBatchSize: must be <= 1024',
      'nodes["node-b"].compression.algorithm: must be one of "none", "gzip", "br"',
      'surprise: unknown key',
    ]);
  });

  test('checks apiVersion and kind', () => {
    assert.deepEqual(parseErrors('apiVersion: v1\nkind: ConfigMap\n'), [
      'apiVersion: must be "serving.autoglm.io/v1alpha1"',
      'kind: must be "ServingTuning"',
    ]);
    assert.deepEqual(parseErrors('defaults: {}\n'), ['apiVersion: is required', 'kind: is required']);
  });

  test('compression levels depend on the algorithm', () => {
    const compression = (c: string): string[] => {
      const result = parseTuningFile(`${HEAD}defaults: { compression: ${c} }\n`);
      return result.ok ? [] : result.errors;
    };
    assert.deepEqual(compression('{ algorithm: gzip, level: 1 }'), []);
    assert.deepEqual(compression('{ algorithm: gzip, level: 9 }'), []);
    assert.deepEqual(compression('{ algorithm: br, level: 0 }'), []);
    assert.deepEqual(compression('{ algorithm: br, level: 11 }'), []);
    assert.deepEqual(compression('{ algorithm: none }'), []);
    assert.deepEqual(compression('{ algorithm: none, level: 42 }'), [], 'none ignores level');
    assert.deepEqual(compression('{ algorithm: gzip, level: 0 }'), [
      'defaults.compression.level: must be >= 1',
    ]);
    assert.deepEqual(compression('{ algorithm: br, level: 12 }'), [
      'defaults.compression.level: must be <= 11',
    ]);
    assert.deepEqual(compression('{ algorithm: gzip }'), ['defaults.compression.level: is required']);
    assert.deepEqual(compression('{ level: 3 }'), ['defaults.compression.algorithm: is required']);
    assert.deepEqual(compression('gzip'), ['defaults.compression: must be object']);
    assert.deepEqual(compression('{ algorithm: br, level: 4, window: 22 }'), [
      'defaults.compression.window: unknown key',
    ]);
  });

  test('refuses broken YAML, several documents, duplicate keys and an empty file', () => {
    assert.match(parseErrors(`${HEAD}defaults: { maxBatchSize: [1\n`)[0] ?? '', /line \d+, column \d+/);
    assert.match(parseErrors(`${HEAD}---\n${HEAD}`)[0] ?? '', /multiple documents/);
    assert.match(parseErrors(`${HEAD}kind: ServingTuning\n`)[0] ?? '', /unique/);
    assert.deepEqual(parseErrors(''), ['file: is empty; expected a ServingTuning object']);
    assert.deepEqual(parseErrors('- 1\n- 2\n'), ['file: must be object']);
    assert.deepEqual(parseErrors(`${HEAD}defaults: { maxBatchSize: "32" }\n`), [
      'defaults.maxBatchSize: must be integer',
    ]);
  });
});

describe('effectiveParams', () => {
  const base: ServingParams = { ...SERVING_PARAMS_DEFAULTS, maxBatchSize: 8 };
  const file = parseOk(`${HEAD}defaults:
  maxBatchSize: 16
  compression: { algorithm: gzip, level: 6 }
nodes:
  node-a:
    maxBatchSize: 64
    compression: { algorithm: br, level: 4 }
  node-b:
    streamChunkTokens: 4
`);

  test('layers base, then defaults, then the node section', () => {
    assert.deepEqual(effectiveParams(file, 'node-a', base), {
      ...base,
      maxBatchSize: 64,
      compression: { algorithm: 'br', level: 4 },
    });
    assert.deepEqual(effectiveParams(file, 'node-b', base), {
      ...base,
      maxBatchSize: 16,
      streamChunkTokens: 4,
      compression: { algorithm: 'gzip', level: 6 },
    });
  });

  test('an unknown node, no node name or no file falls back', () => {
    const defaults = { ...base, maxBatchSize: 16, compression: { algorithm: 'gzip', level: 6 } };
    assert.deepEqual(effectiveParams(file, 'node-z', base), defaults);
    assert.deepEqual(effectiveParams(file, undefined, base), defaults);
    assert.deepEqual(effectiveParams(undefined, 'node-a', base), base);
  });

  test('the result is frozen and valid', () => {
    const params = effectiveParams(file, 'node-a', base);
    assert.ok(Object.isFrozen(params));
    assert.deepEqual(servingParamsErrors(params), []);
  });
});

describe('SERVING_PARAMS_DEFAULTS', () => {
  test('are valid, frozen CPU defaults', () => {
    assert.deepEqual(servingParamsErrors(SERVING_PARAMS_DEFAULTS), []);
    assert.ok(Object.isFrozen(SERVING_PARAMS_DEFAULTS));
    assert.ok(Object.isFrozen(SERVING_PARAMS_DEFAULTS.compression));
    assert.equal(SERVING_PARAMS_DEFAULTS.maxBatchSize, 32);
    assert.equal(SERVING_PARAMS_DEFAULTS.compression.algorithm, 'none');
  });

  test('a missing parameter is an error', () => {
    const partial: Partial<ServingParams> = { ...SERVING_PARAMS_DEFAULTS };
    delete partial.streamChunkTokens;
    assert.deepEqual(servingParamsErrors(partial), ['streamChunkTokens: is required']);
  });
});

describe('tuningJsonSchema', () => {
  test('is plain JSON Schema 2020-12 that closes every object', () => {
    const schema = tuningJsonSchema();
    assert.equal(schema['$schema'], 'https://json-schema.org/draft/2020-12/schema');
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
    assert.equal(schema['additionalProperties'], false);
    const text = JSON.stringify(schema);
    assert.ok(!/"additionalProperties":true/.test(text));
  });

  test('returns a fresh copy each time', () => {
    const a = tuningJsonSchema();
    a['title'] = 'changed';
    assert.equal(tuningJsonSchema()['title'], 'ServingTuning');
  });
});
