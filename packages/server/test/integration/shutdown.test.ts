import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { deadline, http, startHerald, TestClient, wsUrl } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';

describe('graceful shutdown', () => {
  it('answers /readyz with 503 and refuses upgrades while it drains, then stops listening', async () => {
    const herald = await startHerald({ shutdown: { drainWindow: 1500, timeout: 2000 } });
    const base = herald.url;
    const clients = await Promise.all(Array.from({ length: 3 }, () => TestClient.open(wsUrl(herald))));
    assert.equal((await http(base, 'GET', '/readyz')).status, 200);
    const closing = herald.close();
    const ready = await http(base, 'GET', '/readyz');
    assert.equal(ready.status, 503, 'the listener is still open during the drain and says it is not ready');
    assert.deepEqual(ready.body, { ok: false, error: { code: 'unavailable', message: 'shutting down' } });
    const late = new WebSocket(wsUrl(herald));
    late.on('error', () => {});
    const refused = await deadline(new Promise<number>((resolve) => late.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))), 5000, 'the refused upgrade');
    late.terminate();
    assert.equal(refused, 503);
    // Some clients are still open: the drain is spread over the window.
    assert.ok(clients.some((c) => c.ws.readyState === WebSocket.OPEN), 'not every client is closed yet');
    await closing;
    for (const c of clients) assert.equal((await c.closed).code, 1001);
    await assert.rejects(fetch(`${base}/readyz`), 'after the drain the listener is closed');
  });

  it('spreads the closes of 20 connections over a 3 s drain window', async () => {
    const herald = await startHerald({ shutdown: { drainWindow: 3000, timeout: 2000 } });
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.open(wsUrl(herald))));
    const closedAt: number[] = [];
    const start = Date.now();
    const closing = herald.close();
    await Promise.all(
      clients.map(async (c) => {
        const closed = await c.closed;
        closedAt.push(Date.now() - start);
        assert.equal(closed.code, 1001);
      }),
    );
    await closing;
    closedAt.sort((a, b) => a - b);
    const inFirstSecond = closedAt.filter((ms) => ms < 1000).length;
    assert.ok(inFirstSecond <= 8, `about a third close in the first second of three, got ${inFirstSecond}: ${closedAt.join(', ')}`);
    assert.ok(closedAt.at(-1)! >= 2500, `the last close comes near the end of the window (${closedAt.join(', ')} ms)`);
    assert.ok(closedAt.at(-1)! < 3000 + 1000, `and not much after it (${closedAt.at(-1)} ms)`);
  });

  it('a connection whose reading is paused (a command holding 64 frames back) completes its close handshake at once', async () => {
    const herald = await startHerald({ shutdown: { drainWindow: 0, timeout: 10_000 } });
    herald.handle('stall', () => new Promise(() => undefined));
    const client = await TestClient.open(wsUrl(herald));
    client.ws.send(JSON.stringify({ id: 1, action: 'stall' }));
    for (let i = 0; i < 70; i++) client.ws.send(JSON.stringify({ id: i + 2, action: 'ping' }));
    // The 65th frame (64 waiting behind the stalled command) pauses the connection's reading.
    const [session] = internals(herald).sessions.values();
    await deadline(
      (async () => {
        while (session!.framesIn < 65) await new Promise((resolve) => setImmediate(resolve));
      })(),
      5000,
      'the frames to arrive',
    );
    const start = Date.now();
    await herald.close();
    assert.equal((await client.closed).code, 1001);
    assert.ok(Date.now() - start < 5000, `closed by the handshake, not cut after shutdown.timeout (${Date.now() - start} ms)`);
  });

  it('closes every connection with 1001 when the drain window is 0', async () => {
    const herald = await startHerald({ shutdown: { drainWindow: 0 } });
    const clients = await Promise.all(Array.from({ length: 5 }, () => TestClient.open(wsUrl(herald))));
    await herald.close();
    for (const c of clients) assert.equal((await c.closed).code, 1001);
  });
});
