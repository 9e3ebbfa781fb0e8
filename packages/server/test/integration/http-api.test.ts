import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { isLoopback } from '../../src/http/auth.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';

describe('HTTP API', () => {
  let herald: Herald;
  let sub: TestClient;

  before(async () => {
    herald = await startHerald({ limits: { maxHttpBodyBytes: 4096, maxMessageBytes: 1024, maxBatchSize: 50 } });
    sub = await connect(herald);
    await sub.request({ action: 'subscribe', topics: ['news', 'alerts', 'order'] });
  });
  after(async () => {
    await sub.close();
    await herald.close();
  });

  it('POST /api/publish reaches WebSocket subscribers', async () => {
    const answer = await http(herald, 'POST', '/api/publish', { topic: 'news', message: { title: 'from http' } });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { ok: true });
    assert.deepEqual(await sub.next(), { action: 'publish', topic: 'news', message: { title: 'from http' } });
  });

  it('publishes one message to several topics', async () => {
    const answer = await http(herald, 'POST', '/api/publish', { topics: ['news', 'alerts'], message: 'both' });
    assert.deepEqual(answer.body, { ok: true, count: 2 });
    const frames = await Promise.all([sub.next(), sub.next()]);
    assert.deepEqual(frames.map((f) => f.topic).sort(), ['alerts', 'news']);
    assert.ok(frames.every((f) => f.message === 'both'));
  });

  it('a batch is published in order', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => ({ topic: i % 2 ? 'order' : 'news', message: i }));
    const answer = await http(herald, 'POST', '/api/publish', batch);
    assert.deepEqual(answer.body, { ok: true, count: 50 });
    const frames = [];
    for (let i = 0; i < 50; i++) frames.push(await sub.next());
    assert.deepEqual(frames.map((f) => f.message), Array.from({ length: 50 }, (_, i) => i));
  });

  it('a batch with one bad item publishes nothing', async () => {
    const answer = await http(herald, 'POST', '/api/publish', [
      { topic: 'news', message: 'never' },
      { topic: 'bad topic', message: 'x' },
    ]);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'invalid_topic');
    assert.match(answer.body.error.message, /^item 1: /);
    // The next publication is the first frame the subscriber sees.
    await http(herald, 'POST', '/api/publish', { topic: 'news', message: 'marker' });
    assert.equal((await sub.next()).message, 'marker');
  });

  const bad: Array<[string, unknown, number, string, RegExp?]> = [
    ['invalid JSON', '{"topic":', 400, 'bad_request'],
    ['a string body', '"hello"', 400, 'bad_request'],
    ['a missing message', { topic: 'news' }, 400, 'bad_request', /needs a "message"/],
    ['a numeric topic', { topic: 5, message: 1 }, 400, 'bad_request', /field "topic"/],
    ['an unknown field', { topic: 'news', message: 1, mesage: 2 }, 400, 'bad_request', /mesage/],
    ['topic and topics together', { topic: 'news', topics: ['a'], message: 1 }, 400, 'bad_request'],
    ['an invalid topic', { topic: 'a b', message: 1 }, 400, 'invalid_topic'],
    ['an empty batch', [], 400, 'bad_request'],
    ['a batch over the limit', Array.from({ length: 51 }, () => ({ topic: 'news', message: 1 })), 413, 'too_large'],
    ['a message over the limit', { topic: 'news', message: 'z'.repeat(1100) }, 413, 'too_large'],
    ['a body over the limit', { topic: 'news', message: 'z'.repeat(5000) }, 413, 'too_large'],
  ];
  for (const [name, body, status, code, message] of bad) {
    it(`answers ${name} with ${status} ${code}`, async () => {
      const answer = await http(herald, 'POST', '/api/publish', body);
      assert.equal(answer.status, status);
      assert.equal(answer.body.ok, false);
      assert.equal(answer.body.error.code, code);
      if (message) assert.match(answer.body.error.message, message);
    });
  }

  it('answers a wrong content type with 415', async () => {
    const answer = await http(herald, 'POST', '/api/publish', 'topic=news', { 'content-type': 'text/csv' });
    assert.equal(answer.status, 415);
    assert.equal(answer.body.error.code, 'bad_request');
  });

  it('answers an unknown route with 404 not_found', async () => {
    const answer = await http(herald, 'GET', '/api/nothing');
    assert.equal(answer.status, 404);
    assert.deepEqual(answer.body, { ok: false, error: { code: 'not_found', message: 'no route GET /api/nothing' } });
  });

  it('GET /api/status counts connections, topics, subscriptions and messages', async () => {
    const before = (await http(herald, 'GET', '/api/status')).body;
    const extra = await connect(herald);
    await extra.request({ action: 'subscribe', topic: 'status-topic' });
    await extra.request({ action: 'publish', topic: 'status-topic', message: 1 });
    await extra.next();
    const now = (await http(herald, 'GET', '/api/status')).body;
    assert.equal(now.connections, before.connections + 1);
    assert.equal(now.topics, before.topics + 1);
    assert.equal(now.subscriptions, before.subscriptions + 1);
    assert.equal(now.messagesIn, before.messagesIn + 2);
    assert.equal(now.publications, before.publications + 1);
    assert.equal(now.deliveries, before.deliveries + 1);
    assert.ok(now.messagesOut >= before.messagesOut + 3);
    assert.equal(typeof now.version, 'string');
    assert.equal(typeof now.uptime, 'number');
    assert.deepEqual(now.broker, { name: 'memory', state: 'ready' });
    await extra.close();
  });

  it('GET /healthz and /readyz answer without credentials', async () => {
    assert.deepEqual((await http(herald, 'GET', '/healthz')).body, { ok: true });
    const ready = await http(herald, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ok, true);
  });

  it('without API keys, a proxied request is refused even from loopback', async () => {
    const answer = await http(herald, 'POST', '/api/publish', { topic: 'news', message: 1 }, { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error.code, 'forbidden');
    assert.match(answer.body.error.message, /loopback/);
  });
});

describe('HTTP API with API keys', () => {
  const key = 'test-key-0123456789';
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ apiKeys: [key, 'another-key-987654321'] });
  });
  after(() => herald.close());

  it('answers 401 without a key, with a wrong key and with a malformed header', async () => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-key-000000000' }, { authorization: key }, { authorization: 'Basic abc' }];
    for (const headers of attempts) {
      const answer = await http(herald, 'POST', '/api/publish', { topic: 'news', message: 1 }, headers);
      assert.equal(answer.status, 401, JSON.stringify(headers));
      assert.equal(answer.body.error.code, 'unauthorized');
    }
    assert.equal((await http(herald, 'GET', '/api/status')).status, 401);
  });

  it('accepts each configured key', async () => {
    const sub = await connect(herald);
    await sub.request({ action: 'subscribe', topic: 'keyed' });
    for (const k of [key, 'another-key-987654321']) {
      const answer = await http(herald, 'POST', '/api/publish', { topic: 'keyed', message: k }, { authorization: `Bearer ${k}` });
      assert.equal(answer.status, 200);
      assert.equal((await sub.next()).message, k);
    }
    assert.equal((await http(herald, 'GET', '/api/status', undefined, { authorization: `Bearer ${key}` })).status, 200);
    await sub.close();
  });

  it('keeps health endpoints open', async () => {
    assert.equal((await http(herald, 'GET', '/healthz')).status, 200);
    assert.equal((await http(herald, 'GET', '/readyz')).status, 200);
  });
});

describe('loopback detection (the rule behind the key-less API)', () => {
  it('counts only 127.0.0.0/8 and ::1, in IPv4 and IPv4-mapped form', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(address), true, address);
    for (const address of ['10.0.0.1', '192.168.1.5', '::ffff:10.1.2.3', '2001:db8::1', '0.0.0.0', '::', undefined]) {
      assert.equal(isLoopback(address), false, String(address));
    }
  });
});
