import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode, HeraldError, type ConnectionInfo, type DisconnectInfo } from '../../src/index.js';
import { connect, deadline, startHerald } from '../helpers/helpers.js';

describe('library API', () => {
  it('publish() goes through the same path as clients and validates its input', async () => {
    const herald = await startHerald({ limits: { maxMessageBytes: 100 } });
    const c = await connect(herald);
    await c.request({ action: 'subscribe', topic: 'lib' });
    assert.deepEqual(await herald.publish('lib', { from: 'library' }), {});
    assert.deepEqual(await c.next(), { action: 'publish', topic: 'lib', message: { from: 'library' } });

    await assert.rejects(herald.publish('bad topic', 1), (err: HeraldError) => err.code === 'invalid_topic');
    await assert.rejects(herald.publish('lib', undefined), (err: HeraldError) => err.code === 'bad_request');
    await assert.rejects(herald.publish('lib', 10n), (err: HeraldError) => err.code === 'bad_request');
    await assert.rejects(herald.publish('lib', 'x'.repeat(200)), (err: HeraldError) => err.code === 'too_large');
    await c.close();
    await herald.close();
    await assert.rejects(herald.publish('lib', 1), (err: HeraldError) => err.code === 'unavailable');
  });

  it('routes unknown actions to registered handlers; their result is the reply', async () => {
    const herald = await startHerald();
    herald.handle('echo', (command, { connection }) => ({ said: command.text, conn: connection.id }));
    herald.handle('slow-sum', async (command) => {
      await new Promise((resolve) => setImmediate(resolve));
      return (command.a as number) + (command.b as number);
    });
    herald.handle('refuse', () => {
      throw new HeraldError('forbidden', 'not for you');
    });
    herald.handle('crash', () => {
      throw new Error('a bug with a secret in it');
    });
    herald.handle('nothing', () => undefined);
    for (const reserved of ['subscribe', 'gap', 'stream']) assert.throws(() => herald.handle(reserved, () => 1), /built-in action/, reserved);

    const c = await connect(herald);
    const echo = await c.request({ action: 'echo', text: 'hello' });
    assert.equal(echo.ok, true);
    assert.equal(echo.result.said, 'hello');
    assert.equal(typeof echo.result.conn, 'string');
    assert.deepEqual(await c.request({ action: 'slow-sum', a: 2, b: 3 }), { id: 2, action: 'slow-sum', ok: true, result: 5 });
    assert.deepEqual(await c.request({ action: 'refuse' }), { id: 3, action: 'refuse', ok: false, error: { code: 'forbidden', message: 'not for you' } });
    assert.deepEqual(await c.request({ action: 'crash' }), { id: 4, action: 'crash', ok: false, error: { code: 'internal', message: 'internal error' } });
    assert.deepEqual(await c.request({ action: 'nothing' }), { id: 5, action: 'nothing', ok: true });

    // Replies keep command order even when an earlier handler is asynchronous.
    c.send([
      { id: 'x', action: 'slow-sum', a: 1, b: 1 },
      { id: 'y', action: 'echo', text: 'after' },
    ]);
    const [first, second] = await c.collect(2);
    assert.equal(first.id, 'x');
    assert.equal(second.id, 'y');
    await c.close();
    await herald.close();
  });

  it('emits connect and disconnect events with the close code', async () => {
    const herald = await startHerald();
    const connected: ConnectionInfo[] = [];
    const disconnected = new Promise<[ConnectionInfo, DisconnectInfo]>((resolve) => {
      herald.on('disconnect', (connection, info) => resolve([connection, info]));
    });
    herald.on('connect', (connection) => connected.push(connection));
    const c = await connect(herald);
    await c.request({ action: 'ping' });
    assert.equal(connected.length, 1);
    c.ws.close(4321, 'bye');
    const [connection, info] = await deadline(disconnected, 5000, 'the disconnect event');
    assert.equal(connection.id, connected[0]!.id);
    assert.deepEqual(info, { code: 4321, reason: 'bye', by: 'client' });
    await herald.close();
  });

  it('the connect hook can refuse a connection with a close code, and sees the request', async () => {
    const herald = await startHerald({
      onConnect: async (connection) => {
        if (!connection.url.includes('pass=yes')) throw new HeraldError('unauthorized', 'no pass');
        if (connection.headers['x-role'] === 'guest') throw new HeraldError('forbidden', 'guests stay out');
      },
    });
    const refused = await connect(herald, { path: '/ws?pass=no' });
    assert.deepEqual(await refused.closed, { code: CloseCode.UNAUTHORIZED, reason: 'no pass' });
    const guest = await connect(herald, { path: '/ws?pass=yes', headers: { 'x-role': 'guest' } });
    assert.deepEqual(await guest.closed, { code: CloseCode.FORBIDDEN, reason: 'guests stay out' });
    // Frames sent before the hook resolved are handled once it accepts, in order.
    const ok = await connect(herald, { path: '/ws?pass=yes' });
    assert.equal((await ok.request({ action: 'ping' })).ok, true);
    assert.equal(herald.status().connections, 1);
    await ok.close();
    await herald.close();
  });

  it('answers upgrades on other paths and with unknown subprotocols with HTTP errors', async () => {
    const herald = await startHerald();
    const { default: WebSocket } = await import('ws');
    const status = (url: string, protocols?: string[]): Promise<number> =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, protocols);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
    const base = herald.url.replace('http', 'ws');
    assert.equal(await status(`${base}/elsewhere`), 404);
    assert.equal(await status(`${base}/ws`, ['mqtt']), 400);
    assert.equal(await status(`${base}/ws`, ['json']), 101);
    await herald.close();
  });
});
