import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { pullModel } from './index.ts';

function assertCode(code: string, pattern: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof AutoGLMError, String(err));
    assert.equal(err.code, code);
    assert.match(err.toUserMessage(), pattern);
    return true;
  };
}

describe('local sources', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoglm-local-'));
    await writeFile(join(dir, 'm.gguf'), Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(16)]));
    await writeFile(join(dir, 'fake.gguf'), 'not a gguf');
    await writeFile(join(dir, 'notes.txt'), 'hello');
    for (const name of ['model', 'flat', 'partial']) {
      await mkdir(join(dir, name, 'onnx'), { recursive: true });
    }
    for (const f of ['config.json', 'tokenizer.json', 'onnx/model.onnx', 'onnx/model_q4.onnx']) {
      await writeFile(join(dir, 'model', f), '{}');
    }
    for (const f of ['config.json', 'tokenizer.json', 'model.onnx']) {
      await writeFile(join(dir, 'flat', f), '{}');
    }
    await writeFile(join(dir, 'partial', 'config.json'), '{}');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts a GGUF file by path or file: URL', async () => {
    const path = join(dir, 'm.gguf');
    assert.deepEqual(await pullModel(path), { kind: 'gguf', path });
    assert.deepEqual(await pullModel(pathToFileURL(path).href), { kind: 'gguf', path });
  });

  it('accepts an ONNX model folder, with a variant or with the graph at its root', async () => {
    const model = join(dir, 'model');
    assert.deepEqual(await pullModel(model), { kind: 'onnx', dir: model, modelFile: 'onnx/model.onnx' });
    assert.deepEqual(await pullModel(model, { variant: 'q4' }), {
      kind: 'onnx',
      dir: model,
      modelFile: 'onnx/model_q4.onnx',
    });
    const flat = join(dir, 'flat');
    assert.deepEqual(await pullModel(flat), { kind: 'onnx', dir: flat, modelFile: 'model.onnx' });
  });

  it('says what is wrong with a path that is not a model', async () => {
    await assert.rejects(
      pullModel(join(dir, 'missing.gguf')),
      assertCode('model_not_found', /no such file or folder.*missing\.gguf/),
    );
    await assert.rejects(pullModel(join(dir, 'fake.gguf')), assertCode('gguf_corrupt', /GGUF magic/));
    await assert.rejects(
      pullModel(join(dir, 'notes.txt')),
      assertCode('model_source_invalid', /neither a \.gguf file/),
    );
    await assert.rejects(
      pullModel(join(dir, 'partial')),
      assertCode('model_source_invalid', /not an ONNX model folder: no tokenizer\.json, onnx\/model\.onnx/),
    );
    await assert.rejects(
      pullModel(join(dir, 'model'), { variant: 'int3' }),
      assertCode('model_not_found', /model_int3/),
    );
  });
});
