import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, validateConfig } from '../../src/index.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration', () => {
  it('has safe defaults', () => {
    const config = validateConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.limits.maxFrameBytes, 65536);
    assert.equal(config.limits.maxTopicsPerConnection, 128);
    assert.equal(config.limits.maxQueueBytes, 1048576);
    assert.equal(config.heartbeat.interval, 25_000);
    assert.equal(config.heartbeat.appPing, false);
    assert.deepEqual(config.apiKeys, []);
    assert.equal(config.broker, 'memory');
  });

  it('merges flags over env over file over defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    const file = join(dir, 'herald.yaml');
    writeFileSync(file, 'port: 7000\nhost: 127.0.0.1\nlimits:\n  maxFrameBytes: 32KiB\n  maxTopicsPerConnection: 10\nheartbeat:\n  interval: 30s\n');
    const fromFile = loadConfig({ file });
    assert.equal(fromFile.port, 7000);
    assert.equal(fromFile.limits.maxFrameBytes, 32 * 1024);
    assert.equal(fromFile.heartbeat.interval, 30_000);

    const env = { HERALD_PORT: '7001', HERALD_LIMITS__MAX_TOPICS_PER_CONNECTION: '20', HERALD_API_KEYS: 'key-aaaaaaaaaaaa, key-bbbbbbbbbbbb', HERALD_URL: 'ignored by the server' };
    const withEnv = loadConfig({ file, env });
    assert.equal(withEnv.port, 7001);
    assert.equal(withEnv.host, '127.0.0.1');
    assert.equal(withEnv.limits.maxTopicsPerConnection, 20);
    assert.equal(withEnv.limits.maxFrameBytes, 32 * 1024);
    assert.deepEqual(withEnv.apiKeys, ['key-aaaaaaaaaaaa', 'key-bbbbbbbbbbbb']);

    const withFlags = loadConfig({ file, env, flags: { port: 7002, limits: { maxTopicsPerConnection: 30 } } });
    assert.equal(withFlags.port, 7002);
    assert.equal(withFlags.limits.maxTopicsPerConnection, 30);
    assert.equal(withFlags.limits.maxFrameBytes, 32 * 1024);
  });

  it('reads JSON config files too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    const file = join(dir, 'herald.json');
    writeFileSync(file, JSON.stringify({ port: 9000, heartbeat: { appPing: true } }));
    const config = loadConfig({ file });
    assert.equal(config.port, 9000);
    assert.equal(config.heartbeat.appPing, true);
  });

  it('names every bad option, with a hint for misspelt ones', () => {
    const found = problems(() =>
      validateConfig({ prot: 80, port: 'eighty', limits: { maxFrameByte: 10, maxQueueBytes: 'lots' }, heartbeat: { interval: 'soon' }, apiKeys: ['short'] }),
    );
    assert.ok(found.includes('prot: unknown option (did you mean port?)'), found.join('\n'));
    assert.ok(found.includes('limits.maxFrameByte: unknown option (did you mean limits.maxFrameBytes?)'), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('port: ')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('limits.maxQueueBytes: "lots" is not a size')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('heartbeat.interval: "soon" is not a duration')), found.join('\n'));
    assert.ok(found.some((p) => p.startsWith('apiKeys.0: an API key must be at least 12 characters')), found.join('\n'));
  });

  it('warns about HERALD_* variables that are not options and uses the rest', () => {
    const warnings: string[] = [];
    const config = loadConfig({ env: { HERALD_PROT: '1', HERALD_DIR: '/opt/herald', HERALD_LIMITS__MAX_FRAME_BYTE: '9', HERALD_PORT__X: '1', HERALD_HOST: '127.0.0.2' }, warn: (m) => warnings.push(m) });
    assert.equal(config.host, '127.0.0.2');
    assert.equal(config.port, 8080);
    assert.equal(config.limits.maxFrameBytes, 65536);
    assert.deepEqual(warnings.sort(), [
      'HERALD_DIR is not a Herald option: ignored',
      'HERALD_LIMITS__MAX_FRAME_BYTE is not a Herald option: ignored (did you mean HERALD_LIMITS__MAX_FRAME_BYTES?)',
      'HERALD_PORT__X is not a Herald option: ignored',
      'HERALD_PROT is not a Herald option: ignored (did you mean HERALD_PORT?)',
    ]);
  });

  it('still rejects unknown keys in a file and in flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    const file = join(dir, 'herald.yaml');
    writeFileSync(file, 'prot: 1\n');
    assert.deepEqual(problems(() => loadConfig({ file })), ['prot: unknown option (did you mean port?)']);
    assert.deepEqual(problems(() => loadConfig({ flags: { limits: { maxFrameByte: 1 } } })), ['limits.maxFrameByte: unknown option (did you mean limits.maxFrameBytes?)']);
  });

  it('reports unreadable and malformed files', () => {
    assert.match(problems(() => loadConfig({ file: '/nonexistent/herald.yaml' }))[0]!, /cannot read config file/);
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'port: [1,\n');
    assert.match(problems(() => loadConfig({ file }))[0]!, /does not parse/);
    writeFileSync(file, '- a list\n');
    assert.match(problems(() => loadConfig({ file }))[0]!, /must hold a mapping/);
  });

  it('lifecycle events: off by default, every kind, a webhook secret checked (whsec_ base64 or 24 characters), secrets masked', async () => {
    const config = validateConfig({});
    assert.deepEqual([config.events.topics, config.events.webhooks, config.events.topic.name], [[], [], undefined]);
    assert.equal(config.events.kinds.length, 9);
    const hook = validateConfig({ events: { kinds: 'user_online,user_offline', webhooks: [{ url: 'https://backend.example/hooks', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }] } });
    assert.deepEqual(hook.events.kinds, ['user_online', 'user_offline']);
    assert.deepEqual([hook.events.webhooks[0]!.batchWindow, hook.events.webhooks[0]!.maxBatch, hook.events.webhooks[0]!.maxAge], [200, 100, 3_600_000]);
    assert.deepEqual(problems(() => validateConfig({ events: { webhooks: [{ url: 'https://b.example', secret: 'short' }] } })), ['events.webhooks.0.secret: a webhook secret is at least 24 characters long (or whsec_<base64>)']);
    assert.deepEqual(problems(() => validateConfig({ events: { webhooks: [{ url: 'https://b.example', secret: 'whsec_c2hvcnQ=' }] } })), ['events.webhooks.0.secret: a whsec_ secret is whsec_ followed by the base64 of at least 16 bytes']);
    assert.match(problems(() => validateConfig({ events: { kinds: ['user_online', 'channel_occupied'] } }))[0]!, /^events\.kinds\.1: /);
    assert.match(problems(() => validateConfig({ events: { webhooks: [{ url: 'ftp://b.example', secret: 'x'.repeat(24) }] } }))[0]!, /http:\/\/ or https:\/\//);
    const { maskSecrets } = await import('../../src/config.js');
    assert.equal(maskSecrets(hook).events.webhooks[0]!.secret, '***');
  });

  it('refuses a URL with credentials (no request could be made with it): webhooks, proxies, the connect hook, pointing to headers', () => {
    const secret = 'x'.repeat(24);
    for (const input of [
      { events: { webhooks: [{ url: 'http://user:pw@b.example/hooks', secret }] } },
      { proxy: { subscribe: [{ pattern: 'a*', url: 'https://user:pw@b.example/sub' }] } },
      { auth: { connectHook: { url: 'https://user@b.example/connect' } } },
    ]) {
      const found = problems(() => validateConfig(input));
      assert.equal(found.length, 1, JSON.stringify(input));
      assert.match(found[0]!, /credentials .* refused.*headers/);
      assert.doesNotMatch(found[0]!, /pw/, 'the password is not repeated');
    }
  });

  it("lifecycle events: options that make no sense together are refused, each with what to do", () => {
    const secret = 'x'.repeat(24);
    const refused = (input: unknown, expected: RegExp) => {
      const found = problems(() => validateConfig(input));
      assert.equal(found.length, 1, `${JSON.stringify(input)}: ${found.join('; ')}`);
      assert.match(found[0]!, expected);
    };
    refused({ events: { topics: ['a*b'] } }, /^events\.topics\.0: a topic pattern is an exact topic or a prefix ending in '\*'/);
    refused({ events: { webhooks: [{ url: 'https://b.example', secret, topics: ['ro*om'] }] } }, /^events\.webhooks\.0\.topics\.0: a topic pattern/);
    refused({ events: { topic: { size: 50 } } }, /^events\.topic: size or ttl given without a name/);
    refused({ events: { webhooks: [{ url: 'https://b.example', secret, retryDelay: 5_000, maxRetryDelay: 1_000 }] } }, /^events\.webhooks\.0\.retryDelay: 5000 ms is more than maxRetryDelay \(1000 ms\)/);
    for (const name of ['Content-Type', 'webhook-signature', 'Webhook-Id', 'webhook-timestamp']) {
      refused({ events: { webhooks: [{ url: 'https://b.example', secret, headers: { [name]: 'x' } }] } }, /^events\.webhooks\.0\.headers: headers may not set content-type, webhook-id/);
    }
    refused({ events: { topics: ['herald.*'], topic: { name: 'herald.events' } } }, /^events\.topics: "herald\.\*" covers the events topic "herald\.events"/);
    refused({ events: { topic: { name: 'herald.events' } }, raw: [{ path: '/raw', topics: ['herald.events'] }] }, /^raw\.0\.topics: the events topic/);
    refused({ events: { topic: { name: 'herald.events' } }, raw: [{ path: '/raw', publish: 'herald.events' }] }, /^raw\.0\.publish: the events topic/);
    refused({ events: { topic: { name: 'pusher:app1:events' } }, pusher: { enabled: true, apps: [{ id: 'app1', key: 'key1', secret: 'a secret of app1' }] } }, /^pusher\.apps\.0\.topicPrefix: "pusher:app1:" makes the events topic/);
    // What stays accepted: the same options, consistent.
    const fine = validateConfig({
      events: { topics: ['room:*', 'lobby'], topic: { name: 'herald.events', size: 50 }, webhooks: [{ url: 'https://b.example', secret, topics: ['room:*'], retryDelay: 1_000, maxRetryDelay: 1_000, headers: { authorization: 'Basic dTpw' } }] },
      raw: [{ path: '/raw', topics: ['feed'], publish: 'feed' }],
      pusher: { enabled: true, apps: [{ id: 'app1', key: 'key1', secret: 'a secret of app1' }] },
    });
    assert.equal(fine.events.topic.size, 50);
    assert.deepEqual(validateConfig(fine), fine, 'a validated configuration validates again, unchanged (the CLI hands one to createHerald)');
    assert.deepEqual(validateConfig(validateConfig({})).events.topic, {}, 'no events topic: no size or ttl either');
  });
});
