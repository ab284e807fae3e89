import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AutoGLMError } from '../errors.ts';
import { SSE_DONE, SSE_KEEPALIVE, sseData, sseError } from './sse.ts';

describe('SSE frames', () => {
  it('puts one JSON payload on one data line, even when the text has newlines', () => {
    const frame = sseData({ choices: [{ delta: { content: 'a\n\nb\r\n' } }] });
    assert.equal(frame, 'data: {"choices":[{"delta":{"content":"a\\n\\nb\\r\\n"}}]}\n\n');
    assert.equal(frame.trimEnd().split('\n').length, 1);
  });

  it('keeps non-ASCII text and escapes lone surrogates, so the frame is valid UTF-8 JSON', () => {
    const frame = sseData({ t: 'héllo 😀', broken: '\ud83d' });
    assert.equal(frame, 'data: {"t":"héllo 😀","broken":"\\ud83d"}\n\n');
    assert.deepEqual(JSON.parse(frame.slice('data: '.length)), { t: 'héllo 😀', broken: '\ud83d' });
  });

  it('ends with [DONE], and keeps alive with a comment', () => {
    assert.equal(SSE_DONE, 'data: [DONE]\n\n');
    assert.match(SSE_KEEPALIVE, /^:[^\n]*\n\n$/);
  });

  it('sends an error as OpenAI’s error body', () => {
    const frame = sseError(new AutoGLMError('unavailable', 'The server is shutting down.'));
    assert.equal(
      frame,
      'data: {"error":{"message":"The server is shutting down.","type":"server_error","param":null,"code":"unavailable"}}\n\n',
    );
  });
});
