import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deadline, http, TestClient } from './helpers.js';
import { run, serve, type Server } from './cli-helpers.js';
import { eventually } from './servers.js';

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

describe('herald config check', () => {
  it('prints the effective configuration with secrets masked, and exits 2 with hints when invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'port: 9999\napiKeys: [super-secret-api-key-1]\nauth:\n  jwt:\n    secret: a-jwt-secret-of-at-least-32-characters\nredis:\n  url: redis://user:hunter2hunter2@10.0.0.5:6379\n');
    const ok = await run(['config', 'check', good], { HERALD_HOST: '127.0.0.9' });
    assert.equal(ok.code, 0, ok.stderr);
    const effective = JSON.parse(ok.stdout);
    assert.equal(effective.port, 9999);
    assert.equal(effective.host, '127.0.0.9', 'the environment is merged as by serve');
    assert.equal(effective.limits.maxFrameBytes, 65536, 'defaults filled in');
    for (const secret of ['super-secret-api-key-1', 'a-jwt-secret-of-at-least-32-characters', 'hunter2hunter2']) assert.ok(!ok.stdout.includes(secret), 'masked');
    assert.deepEqual(effective.apiKeys, ['supe***']);
    assert.equal(effective.redis.url, 'redis://user:***@10.0.0.5:6379');

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'prot: 1\nheartbeat:\n  intervall: 5s\n');
    const refused = await run(['config', 'check', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /prot: unknown option \(did you mean port\?\)/);
    assert.match(refused.stderr, /heartbeat\.intervall: unknown option \(did you mean heartbeat\.interval\?\)/);
  });
});

describe('herald publish and status', () => {
  let server: Server;
  before(async () => {
    server = await serve(['--api-key', 'cli-test-key-123456', '--set', 'history=[{"pattern":"kept"}]', '--set', 'presence=[{"pattern":"kept"}]']);
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });

  it('publish sends a JSON message through the HTTP API', async () => {
    const sub = await TestClient.open(server.url.replace('http', 'ws') + '/ws');
    await sub.request({ action: 'subscribe', topic: 'cli' });
    const result = await run(['publish', 'cli', '{"from":"cli"}', '--url', server.url, '--key', 'cli-test-key-123456']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { ok: true });
    assert.deepEqual(await sub.next(), { action: 'publish', topic: 'cli', message: { from: 'cli' } });
    const asString = await run(['publish', 'cli', 'plain words', '--string'], { HERALD_URL: server.url, HERALD_API_KEY: 'cli-test-key-123456' });
    assert.equal(asString.code, 0, asString.stderr);
    assert.deepEqual(await sub.next(), { action: 'publish', topic: 'cli', message: 'plain words' });
    await sub.close();
  });

  it('status prints the server status, as a table or as JSON', async () => {
    const c = await TestClient.open(server.url.replace('http', 'ws') + '/ws');
    await c.request({ action: 'subscribe', topic: 'counted' });
    const json = await run(['status', '--json', '--url', server.url, '--key', 'cli-test-key-123456']);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout);
    assert.equal(status.broker.name, 'memory');
    assert.equal(status.connections, 1);
    const table = await run(['status', '--url', server.url, '--key', 'cli-test-key-123456']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^connections\s+1$/m);
    assert.match(table.stdout, /^topics\s+1$/m);
    assert.match(table.stdout, /^broker\s+memory \(ready\)$/m);
    await c.close();
  });

  it('history and presence print a topic\'s past publications and its subscribers', async () => {
    const key = ['--url', server.url, '--key', 'cli-test-key-123456'];
    const c = await TestClient.open(server.url.replace('http', 'ws') + '/ws');
    await c.request({ action: 'subscribe', topic: 'kept' });
    for (let i = 1; i <= 3; i++) assert.equal((await run(['publish', 'kept', String(i), ...key])).code, 0);
    const all = await run(['history', 'kept', ...key]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((p) => [p.offset, p.message]), [[1, 1], [2, 2], [3, 3]]);
    const epoch = /epoch (\S+)/.exec(all.stderr)![1];
    const since = await run(['history', 'kept', '--since', `2:${epoch}`, ...key]);
    assert.deepEqual(since.stdout.trim().split('\n').map((line) => JSON.parse(line).message), [3]);
    const latest = await run(['history', 'kept', '-n', '1', '-r', ...key]);
    assert.equal(JSON.parse(latest.stdout).message, 3);
    assert.equal((await run(['history', 'not-kept', ...key])).code, 1);
    const who = await run(['presence', 'kept', ...key]);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^1 connection\(s\), 0 user\(s\)/);
    await c.close();
  });

  it('send pushes to a user', async () => {
    const result = await run(['send', 'nobody', '{"x":1}', '--url', server.url, '--key', 'cli-test-key-123456']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { ok: true, delivered: 0, nodes: 0 });
  });

  it('exits 1 on an API error, 2 on bad usage, 3 when the server is unreachable', async () => {
    const noKey = await run(['status', '--url', server.url]);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /401 unauthorized/);
    const badJson = await run(['publish', 'cli', '{oops', '--url', server.url]);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /not valid JSON/);
    const missing = await run(['publish', 'cli']);
    assert.equal(missing.code, 2);
    const unreachable = await run(['status', '--url', 'http://127.0.0.1:1']);
    assert.equal(unreachable.code, 3);
    assert.match(unreachable.stderr, /cannot reach/);
    const unknown = await run(['frobnicate']);
    assert.equal(unknown.code, 2);
  });

  it('prints help for every command', async () => {
    for (const args of [['--help'], ['serve', '--help'], ['publish', '--help'], ['send', '--help'], ['history', '--help'], ['presence', '--help'], ['status', '--help'], ['config', '--help']]) {
      const result = await run(args);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /^Usage: herald/);
    }
  });
});
