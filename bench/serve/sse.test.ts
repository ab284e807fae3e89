import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseReader } from './sse.ts';

const STREAM =
  'data: {"a":1}\n\n: ping\n\ndata: {"b":2}\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n';

test('events come out whole however the stream is cut', () => {
  const whole = new SseReader().push(STREAM);
  assert.deepEqual(whole, ['{"a":1}', '{"b":2}', 'one\ntwo', '[DONE]']);
  for (let cut = 1; cut < STREAM.length; cut++) {
    const r = new SseReader();
    const got = [...r.push(STREAM.slice(0, cut)), ...r.push(STREAM.slice(cut)), ...r.end()];
    assert.deepEqual(got, whole, `cut at ${cut}`);
  }
});

test('multi-byte characters split across chunks decode once whole', () => {
  const bytes = new TextEncoder().encode('data: {"t":"héllo ☃"}\n\n');
  const r = new SseReader();
  const got: string[] = [];
  for (const b of bytes) got.push(...r.push(new Uint8Array([b])));
  assert.deepEqual(got, ['{"t":"héllo ☃"}']);
});

test('a stream that ends without a blank line still yields its last event', () => {
  const r = new SseReader();
  assert.deepEqual(r.push('data: x\n\ndata: y'), ['x']);
  assert.deepEqual(r.end(), ['y']);
});

test('a bare CR ends a line; a CR at the end of a chunk waits to see whether LF follows', () => {
  const r = new SseReader();
  assert.deepEqual(r.push('data: a\r\rdata:b\r\r'), ['a']);
  assert.deepEqual(r.end(), ['b']);
});
