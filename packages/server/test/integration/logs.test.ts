import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';
import { connect, http, startHerald } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** A pino logger at trace level whose lines are kept for inspection. */
function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, stream) as Logger, lines };
}

describe('logs', () => {
  it('never contain a token, an API key or a JWT secret, even at trace level', async () => {
    const apiKey = 'api-key-that-must-not-leak-0001';
    const { logger, lines } = capture();
    const herald = await startHerald({ logger, apiKeys: [apiKey], auth: { jwt: { secret: SECRET } } });
    const token = await signToken({ sub: 'leaky' });
    const viaUrl = await connect(herald, { path: `/ws?token=${token}` });
    await viaUrl.request({ action: 'login', token });
    await viaUrl.request({ action: 'login', token: `${token}x` }); // a refused one too
    const bad = await connect(herald, { path: `/ws?token=${token}broken` });
    await bad.closed;
    const auth = { authorization: `Bearer ${apiKey}` };
    await http(herald, 'POST', '/api/publish', { topic: 't', message: 1 }, auth);
    await http(herald, 'POST', '/api/publish', { topic: 'bad topic', message: 1 }, auth);
    await http(herald, 'GET', '/api/status', undefined, { authorization: 'Bearer wrong-key-but-still-secret' });
    await viaUrl.close();
    await herald.close();
    const all = lines.join('\n');
    assert.ok(lines.length > 5, 'something was logged');
    for (const secret of [apiKey, SECRET, token, token.split('.')[2]!, 'wrong-key-but-still-secret']) {
      assert.ok(!all.includes(secret), `a secret leaked into the logs: ${secret.slice(0, 12)}...`);
    }
  });

  it('gives every HTTP request an id (the caller\'s X-Request-Id when given) and every connection one', async () => {
    const { logger, lines } = capture();
    const herald = await startHerald({ logger });
    const given = await http(herald, 'GET', '/healthz', undefined, { 'x-request-id': 'trace-me-42' });
    assert.equal(given.headers.get('x-request-id'), 'trace-me-42');
    const generated = await http(herald, 'GET', '/api/status');
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const c = await connect(herald);
    await c.close();
    await herald.close();
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(entries.some((e) => e.reqId === 'trace-me-42' && e.msg === 'request'), 'the request line carries the id');
    const opened = entries.find((e) => e.msg === 'connection opened')!;
    const closed = entries.find((e) => e.msg === 'connection closed')!;
    assert.equal(typeof opened.conn, 'string');
    assert.equal(closed.conn, opened.conn);
  });
});
