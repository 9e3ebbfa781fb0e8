import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deadline, http, TestClient } from '../helpers/helpers.js';
import { run, serve } from '../helpers/cli-helpers.js';
import { eventually } from '../helpers/servers.js';

describe('herald serve', () => {
  it('on SIGTERM delivers what is queued, closes every client with 1001 and exits 0', async () => {
    const server = await serve();
    const ws = server.url.replace('http', 'ws') + '/ws';
    const clients = await Promise.all([TestClient.open(ws), TestClient.open(ws), TestClient.open(ws)]);
    await Promise.all(clients.map((c) => c.request({ action: 'subscribe', topic: 'last-words' })));
    const batch = Array.from({ length: 20 }, (_, i) => ({ topic: 'last-words', message: i }));
    assert.equal((await http(server.url, 'POST', '/api/publish', batch)).status, 200);
    server.child.kill('SIGTERM');
    for (const c of clients) {
      const closed = await deadline(c.closed, 10_000, 'the 1001 close');
      assert.equal(closed.code, 1001);
      assert.deepEqual(
        c.received.map((f: any) => f.message),
        Array.from({ length: 20 }, (_, i) => i),
      );
    }
    assert.equal(await server.exited, 0);
    const closes = server.logs.filter((l) => l.msg === 'connection closed');
    assert.equal(closes.length, 3);
    assert.ok(closes.every((l) => l.code === 1001 && l.by === 'server'));
    assert.ok(server.logs.some((l) => l.msg === 'herald stopped'));
  });

  it('drains 500 clients over the drain window, each after its queued messages, and exits 0', async () => {
    const server = await serve(['--set', 'shutdown.drainWindow=1s', '--set', 'limits.connectionsPerSecondPerIp=1000']);
    const ws = server.url.replace('http', 'ws') + '/ws';
    const clients: TestClient[] = [];
    for (let batch = 0; batch < 5; batch++) clients.push(...(await Promise.all(Array.from({ length: 100 }, () => TestClient.open(ws)))));
    await Promise.all(clients.map((c) => c.request({ action: 'subscribe', topic: 'drain' })));
    const batch = Array.from({ length: 5 }, (_, i) => ({ topic: 'drain', message: i }));
    assert.equal((await http(server.url, 'POST', '/api/publish', batch)).status, 200);
    const closedAt: number[] = [];
    const sigterm = Date.now();
    server.child.kill('SIGTERM');
    await Promise.all(
      clients.map(async (c) => {
        const closed = await deadline(c.closed, 15_000, 'the drain close');
        closedAt.push(Date.now() - sigterm);
        assert.equal(closed.code, 1001);
        assert.match(closed.reason, /reconnect/);
        assert.deepEqual(c.received.map((f: any) => f.message), [0, 1, 2, 3, 4], 'queued messages first');
      }),
    );
    assert.equal(await server.exited, 0);
    closedAt.sort((a, b) => a - b);
    const early = closedAt.filter((ms) => ms < 100).length;
    assert.ok(early < 250, `not all at once: ${early} of 500 closed in the first 100 ms`);
    assert.ok(closedAt[closedAt.length - 1]! >= 700, `spread over the window (last close after ${closedAt.at(-1)} ms)`);
  });

  it('logs one line per connection open and close, none per message', async () => {
    const server = await serve();
    const c = await TestClient.open(server.url.replace('http', 'ws') + '/ws');
    await c.request({ action: 'subscribe', topic: 'quiet' });
    for (let i = 0; i < 50; i++) await c.request({ action: 'publish', topic: 'quiet', message: i });
    await c.close();
    server.child.kill('SIGINT');
    assert.equal(await server.exited, 0);
    const messages = server.logs.map((l) => l.msg);
    assert.equal(messages.filter((m) => m === 'connection opened').length, 1);
    assert.equal(messages.filter((m) => m === 'connection closed').length, 1);
    assert.ok(server.logs.length < 15, `few log lines, got ${server.logs.length}: ${messages.join(', ')}`);
  });

  it('--workers 2: processes share the port; a publish on the HTTP API reaches subscribers on either worker', async () => {
    const server = await serve(['--workers', '2', '--set', 'cluster.heartbeatInterval=200'], 2);
    const ws = server.url.replace('http', 'ws') + '/ws';
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.open(ws)));
    await Promise.all(clients.map((c) => c.request({ action: 'subscribe', topic: 'everywhere' })));
    // Both workers hold connections, and any worker's status adds them up.
    await eventually(async () => {
      const status = (await http(server.url, 'GET', '/api/status')).body;
      const cluster = (await http(server.url, 'GET', '/api/cluster')).body;
      return status.cluster.nodes === 2 && status.cluster.connections === 20 && cluster.nodes.every((n: { connections: number }) => n.connections > 0);
    }, 'both workers to hold connections and know each other');
    // Separate calls may be served by different workers: each arrives exactly once (order is per publishing worker).
    for (let i = 0; i < 10; i++) assert.equal((await http(server.url, 'POST', '/api/publish', { topic: 'everywhere', message: i })).status, 200);
    for (const c of clients) assert.deepEqual((await c.collect(10)).map((f) => f.message).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i));
    // One batch is published by one worker: every client gets it in order.
    const batch = Array.from({ length: 10 }, (_, i) => ({ topic: 'everywhere', message: 10 + i }));
    assert.equal((await http(server.url, 'POST', '/api/publish', batch)).status, 200);
    for (const c of clients) assert.deepEqual((await c.collect(20)).slice(10).map((f) => f.message), Array.from({ length: 10 }, (_, i) => 10 + i));
    server.child.kill('SIGTERM');
    await Promise.all(clients.map((c) => c.closed));
    assert.equal(await server.exited, 0);
  });

  it('refuses a bad option naming it, with exit code 2', async () => {
    const result = await run(['serve', '--set', 'limits.maxFrameByte=10']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /limits\.maxFrameByte: unknown option \(did you mean limits\.maxFrameBytes\?\)/);
    const env = await run(['serve'], { HERALD_PORT: 'eighty' });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /port: /);
    const flag = await run(['serve', '--port', 'x']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--port/);
  });
});
