import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { hasQuantization, isSafeRepoPath, onnxVariantPath, planHubPull, type HubFile } from './hub-plan.ts';

const files = (...paths: string[]): HubFile[] => paths.map((path) => ({ path, size: 1 }));
const paths = (plan: { files: readonly HubFile[] }): string[] => plan.files.map((f) => f.path);

describe('choosing what to pull from a Hub repository', () => {
  it('recognises quantization tags in GGUF names', () => {
    assert.ok(hasQuantization('SmolLM2-135M-Instruct.Q4_1.gguf', 'Q4_1'));
    assert.ok(hasQuantization('qwen2.5-0.5b-instruct-q4_k_m.gguf', 'Q4_K_M'));
    assert.ok(hasQuantization('dir/model_Q8_0.gguf', 'q8_0'));
    assert.ok(!hasQuantization('model-Q4_0_4_4.gguf', 'Q4_0'));
    assert.ok(!hasQuantization('model-Q4_K_M.gguf', 'Q4_K'));
  });

  it('prefers Q4_1 > Q4_0 > Q8_0 > Q4_K_M, skipping projectors and split files', () => {
    const repo = files(
      'a-Q4_K_M.gguf',
      'a-Q8_0.gguf',
      'a-Q4_0.gguf',
      'mmproj-Q4_1.gguf',
      'a-Q4_1-00001-of-00002.gguf',
    );
    const plan = planHubPull(repo, {});
    assert.equal(plan.kind, 'gguf');
    assert.deepEqual(paths(plan), ['a-Q4_0.gguf']);
    assert.match(plan.note ?? '', /picked a-Q4_0\.gguf \(Q4_0/);
    const none = planHubPull(files('b-IQ2_XS.gguf', 'a-F16.gguf'), {});
    assert.deepEqual(paths(none), ['a-F16.gguf']);
    assert.match(none.note ?? '', /none of Q4_1, Q4_0, Q8_0, Q4_K_M/);
  });

  it('refuses a split GGUF named outright', () => {
    assert.throws(
      () => planHubPull(files('a-00001-of-00002.gguf'), { path: 'a-00001-of-00002.gguf' }),
      (err) => err instanceof AutoGLMError && err.code === 'unsupported_quantization',
    );
  });

  it('takes an ONNX folder over GGUF files when the repository has one', () => {
    const repo = files(
      'config.json',
      'tokenizer.json',
      'chat_template.jinja',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'onnx/model.onnx_data_1',
      'onnx/model_fp16.onnx',
      'x.Q4_1.gguf',
    );
    const plan = planHubPull(repo, {});
    assert.equal(plan.kind, 'onnx');
    assert.deepEqual(paths(plan), [
      'config.json',
      'tokenizer.json',
      'chat_template.jinja',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'onnx/model.onnx_data_1',
    ]);
  });

  it('falls back to another graph when there is no onnx/model.onnx, and says so', () => {
    const plan = planHubPull(
      files('config.json', 'tokenizer.json', 'onnx/model_q4f16.onnx', 'onnx/model_quantized.onnx'),
      {},
    );
    assert.ok(plan.kind === 'onnx');
    assert.equal(plan.modelFile, 'onnx/model_quantized.onnx');
    assert.match(plan.note ?? '', /no onnx\/model\.onnx/);
  });

  it('maps variant names to graph files', () => {
    assert.equal(onnxVariantPath('q4f16'), 'onnx/model_q4f16.onnx');
    assert.equal(onnxVariantPath('model_int8.onnx'), 'onnx/model_int8.onnx');
    assert.equal(onnxVariantPath('fp32'), 'onnx/model.onnx');
    assert.equal(onnxVariantPath('onnx/decoder.onnx'), 'onnx/decoder.onnx');
  });

  it('names what is there when nothing fits', () => {
    assert.throws(
      () => planHubPull(files('README.md', 'model.safetensors'), {}),
      (err) =>
        err instanceof AutoGLMError &&
        err.code === 'model_not_found' &&
        /neither an ONNX model/.test(err.message),
    );
    assert.throws(
      () => planHubPull(files('config.json', 'onnx/model.onnx'), { path: 'onnx/model.onnx' }),
      (err) =>
        err instanceof AutoGLMError &&
        err.code === 'model_source_invalid' &&
        /tokenizer\.json/.test(err.message),
    );
  });

  it('ignores listed paths that would escape the cache folder', () => {
    for (const bad of ['../x.gguf', '/etc/x.gguf', 'a//b.gguf', 'a/./b.gguf', 'a\\b.gguf', '']) {
      assert.ok(!isSafeRepoPath(bad), bad);
    }
    assert.ok(isSafeRepoPath('onnx/model.onnx_data'));
    const plan = planHubPull(files('../../evil.Q4_1.gguf', 'ok.Q8_0.gguf'), {});
    assert.deepEqual(paths(plan), ['ok.Q8_0.gguf']);
  });
});
