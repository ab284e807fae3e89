import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { AutoGLMError } from '../../errors.ts';
import { Logger, createLogger, parseLogLevel, type LogLevel } from './logging.ts';

/** A real stream, read back as JSON lines. */
function capture(level: LogLevel = 'debug'): { logger: Logger; lines: () => unknown[] } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  const now = () => new Date('2026-01-02T03:04:05.678Z');
  return {
    logger: new Logger({ level, sink: stream, now }),
    lines: () => {
      for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) {
        chunks.push(c.toString('utf8'));
      }
      const text = chunks.join('');
      assert.ok(text === '' || text.endsWith('\n'), 'every line ends with a newline');
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as unknown);
    },
  };
}

test('one JSON object per line with time, level and msg first', () => {
  const { logger, lines } = capture();
  logger.info('server listening', { port: 8000, host: '0.0.0.0' });
  logger.debug('detail');
  const [first, second] = lines();
  assert.deepEqual(first, {
    time: '2026-01-02T03:04:05.678Z',
    level: 'info',
    msg: 'server listening',
    port: 8000,
    host: '0.0.0.0',
  });
  assert.deepEqual(Object.keys(first as object).slice(0, 3), ['time', 'level', 'msg']);
  assert.equal((second as { level: string }).level, 'debug');
});

test('the level filters lines', () => {
  const { logger, lines } = capture('warn');
  logger.debug('no');
  logger.info('no');
  logger.warn('yes');
  logger.error('yes');
  assert.deepEqual(
    lines().map((l) => (l as { msg: string; level: string }).level),
    ['warn', 'error'],
  );
  assert.equal(logger.enabled('info'), false);
  assert.equal(logger.enabled('error'), true);

  const off = capture('silent');
  off.logger.error('nothing');
  assert.deepEqual(off.lines(), []);
});

type Line = Record<string, unknown>;

function at(lines: unknown[], i: number): Line {
  const line = lines[i];
  assert.ok(typeof line === 'object' && line !== null, `line ${i} exists`);
  return line as Line;
}

function field(line: Line, key: string): Line {
  const v = line[key];
  assert.ok(typeof v === 'object' && v !== null, `${key} is an object`);
  return v as Line;
}

test('a request logger carries request_id on every line', () => {
  const { logger, lines } = capture();
  const req = logger.forRequest('req-123', { route: '/v1/chat/completions' });
  req.info('request received', { stream: true });
  req.child({ phase: 'decode' }).warn('slow token', { seconds: 2.5 });
  logger.info('unrelated');
  const out = lines();
  const [first, second, third] = [at(out, 0), at(out, 1), at(out, 2)];
  assert.equal(first['request_id'], 'req-123');
  assert.equal(first['route'], '/v1/chat/completions');
  assert.equal(first['stream'], true);
  assert.deepEqual(Object.keys(first).slice(0, 4), ['time', 'level', 'msg', 'request_id']);
  assert.equal(second['request_id'], 'req-123');
  assert.equal(second['phase'], 'decode');
  assert.equal(third['request_id'], undefined);
});

test('fields cannot overwrite time, level or msg', () => {
  const { logger, lines } = capture();
  logger.info('real', { msg: 'fake', level: 'error', time: 'never', undefinedField: undefined });
  const line = at(lines(), 0);
  assert.equal(line['msg'], 'real');
  assert.equal(line['level'], 'info');
  assert.equal(line['time'], '2026-01-02T03:04:05.678Z');
  assert.equal('undefinedField' in line, false);
});

test('errors, bigints and cycles serialize', () => {
  const { logger, lines } = capture();
  const err = new AutoGLMError('model_not_found', 'no such model', { hint: 'pull it first' });
  logger.error('load failed', { err, big: 12n });
  const sys = Object.assign(new Error('disk gone'), { code: 'ENOSPC' });
  logger.error('write failed', { err: sys });
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  logger.forRequest('r1').warn('cyclic', { cyclic });

  const out = lines();
  const a = field(at(out, 0), 'err');
  assert.equal(a['type'], 'AutoGLMError');
  assert.equal(a['code'], 'model_not_found');
  assert.equal(a['message'], 'no such model');
  assert.equal(a['hint'], 'pull it first');
  assert.match(a['stack'] as string, /no such model/);
  assert.equal(at(out, 0)['big'], '12');
  assert.equal(field(at(out, 1), 'err')['code'], 'ENOSPC');
  const c = at(out, 2);
  assert.equal(c['msg'], 'cyclic');
  assert.equal(c['request_id'], 'r1');
  assert.match(c['fields_error'] as string, /circular/i);
});

test('LOG_LEVEL picks the level; an unknown value warns and uses info', () => {
  assert.equal(parseLogLevel(' DEBUG '), 'debug');
  assert.equal(parseLogLevel('verbose'), undefined);
  assert.equal(parseLogLevel(undefined), undefined);
  assert.equal(createLogger({ LOG_LEVEL: 'error' }, new PassThrough()).level, 'error');
  assert.equal(createLogger({}, new PassThrough()).level, 'info');

  const stream = new PassThrough();
  const logger = createLogger({ LOG_LEVEL: 'loud' }, stream);
  assert.equal(logger.level, 'info');
  const line = JSON.parse((stream.read() as Buffer).toString('utf8')) as Record<string, unknown>;
  assert.equal(line['level'], 'warn');
  assert.equal(line['value'], 'loud');
});
