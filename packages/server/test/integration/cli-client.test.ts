import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, TestClient } from '../helpers/helpers.js';
import { run, serve, type Server } from '../helpers/cli-helpers.js';

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
