import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { connect, deadline, http, startHerald } from '../helpers/helpers.js';
import { eventually, NatsServer, RedisServer, requireBinary } from '../helpers/servers.js';
import { internals } from '../helpers/internals.js';

const PUBLISH_TIMEOUT = 1000;

interface Answer {
  ok: boolean;
  code?: string;
  message?: string;
}

/** Every publish settles: ok, or the error's code. */
function answers(promises: Array<Promise<unknown>>): Promise<Answer[]> {
  return Promise.all(
    promises.map((promise) =>
      promise.then(
        () => ({ ok: true }),
        (err: { code?: string; message?: string }) => ({ ok: false, code: err.code, message: err.message }),
      ),
    ),
  );
}

async function ready(herald: Herald): Promise<Herald> {
  await eventually(() => internals(herald).broker.state === 'ready', 'broker ready', 15_000);
  return herald;
}

describe('a publish in flight when the Redis connection drops or stalls', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  const options = () => ({ broker: 'redis' as const, redis: { url: redis.url, prefix: 'pa:' }, publishTimeout: PUBLISH_TIMEOUT, history: [{ pattern: 'h:*', size: 100 }] });

  it('is answered unavailable within publishTimeout when Redis stops answering, and not sent again', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await ready(await startHerald(options()));
    assert.equal((await herald.publish('h:stall', 'before')).offset, 1);
    await redis.pause();
    const started = Date.now();
    const pending = [];
    for (let i = 0; i < 10; i++) pending.push(i % 2 ? herald.publish('h:stall', i) : http(herald, 'POST', '/api/publish', { topic: 'plain', message: i }).then((r) => (r.status === 200 ? r : Promise.reject(r.body.error))));
    const settled = await deadline(answers(pending), PUBLISH_TIMEOUT + 2000, 'every publish answered while Redis is stalled');
    assert.ok(Date.now() - started < PUBLISH_TIMEOUT + 2000);
    assert.deepEqual(settled.map((answer) => answer.code), Array(10).fill('unavailable'));
    redis.resume();
    await ready(herald);
    // Redis got the stalled commands once (it had them before it froze): they ran once, none twice.
    const next = await herald.publish('h:stall', 'after');
    assert.equal(next.offset, 7, 'offset 1, the five stalled appends once each, then this one');
    await herald.close();
  });

  it('is answered unavailable when the connection drops, and never resent after Redis is back', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await ready(await startHerald(options()));
    const watcher = await connect(herald);
    await watcher.request({ action: 'subscribe', topic: 'plain' });
    await redis.pause();
    const pending = [];
    for (let i = 0; i < 30; i++) pending.push(herald.publish(i % 2 ? 'h:drop' : 'plain', i));
    const answered = answers(pending);
    // Every command is on the socket (Redis reads none): then Redis dies with them.
    await new Promise((resolve) => setImmediate(resolve));
    await redis.stop();
    const settled = await deadline(answered, PUBLISH_TIMEOUT + 2000, 'every publish answered while Redis is down');
    assert.deepEqual(settled.map((answer) => answer.code), Array(30).fill('unavailable'));
    assert.match(settled[0]!.message!, /not to other nodes/);
    // Redis comes back empty: nothing Herald was told failed reaches it.
    await redis.start();
    await ready(herald);
    const marker = await herald.publish('h:drop', 'marker');
    assert.equal(marker.offset, 1, 'no append of the failed publishes was resent');
    await herald.close();
  });
});

describe('NATS: a 200 means the server has the publication', () => {
  const skip = requireBinary('nats-server');
  const nats = new NatsServer();
  before(async () => {
    if (!skip) await nats.start();
  });
  after(() => nats.stop());

  it('publications the server never read are answered unavailable, not 200, when it dies; those answered 200 were delivered', async (t) => {
    if (skip) return t.skip(skip);
    const options = { broker: 'nats' as const, nats: { url: nats.url, prefix: 'pa.' }, publishTimeout: PUBLISH_TIMEOUT, cluster: { heartbeatInterval: 200 } };
    const [a, b] = await Promise.all([startHerald(options).then(ready), startHerald(options).then(ready)]);
    const watcher = await connect(b);
    assert.equal((await watcher.request({ action: 'subscribe', topic: 'news' })).ok, true);

    // Up: many publications in one turn share a flush, and every 200 was delivered on the other node.
    const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => http(a, 'POST', '/api/publish', { topic: 'news', message: i })));
    assert.deepEqual(new Set(burst.map((answer) => answer.status)), new Set([200]));
    const frames = await watcher.collect(50);
    assert.deepEqual(frames.map((frame) => frame.message).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));

    // The server freezes, then dies with what it had not read.
    await nats.pause();
    const answered = answers(Array.from({ length: 20 }, (_, i) => a.publish('news', 100 + i)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await nats.stop();
    const settled = await deadline(answered, PUBLISH_TIMEOUT + 2000, 'every publish answered');
    assert.deepEqual(settled.map((answer) => answer.code), Array(20).fill('unavailable'), 'none of the lost publications was answered as published');

    // Stalled without dying: answered unavailable within publishTimeout.
    await nats.start();
    await Promise.all([ready(a), ready(b)]);
    await nats.pause();
    const stalled = await deadline(answers([a.publish('news', 'stalled')]), PUBLISH_TIMEOUT + 2000, 'the stalled publish answered');
    assert.equal(stalled[0]!.code, 'unavailable');
    assert.match(stalled[0]!.message!, /did not confirm the publication within 1000 ms/);
    nats.resume();
    await watcher.close();
    await Promise.all([a.close(), b.close()]);
  });
});
