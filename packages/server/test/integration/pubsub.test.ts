import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { connect, startHerald, type TestClient } from '../helpers/helpers.js';

describe('JSON protocol: publish and subscribe', () => {
  let herald: Herald;
  const clients: TestClient[] = [];
  const open = async (): Promise<TestClient> => {
    const client = await connect(herald);
    clients.push(client);
    return client;
  };

  before(async () => {
    herald = await startHerald();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await herald.close();
  });

  it('delivers to every subscriber, the subscribed publisher included, and to nobody else', async () => {
    const [a, b, outsider] = await Promise.all([open(), open(), open()]);
    assert.deepEqual(await a.request({ action: 'subscribe', topic: 'news' }), { id: 1, action: 'subscribe', ok: true });
    assert.deepEqual(await b.request({ action: 'subscribe', topic: 'news' }), { id: 1, action: 'subscribe', ok: true });
    await outsider.request({ action: 'subscribe', topic: 'sport' });

    assert.deepEqual(await a.request({ action: 'publish', topic: 'news', message: { headline: 'hi' } }), { id: 2, action: 'publish', ok: true });
    const expected = { action: 'publish', topic: 'news', message: { headline: 'hi' } };
    assert.deepEqual(await a.next(), expected);
    assert.deepEqual(await b.next(), expected);

    // The outsider gets only what is published on its own topic, proving the news frame never reached it.
    await outsider.request({ action: 'publish', topic: 'sport', message: 1 });
    assert.deepEqual(await outsider.next(), { action: 'publish', topic: 'sport', message: 1 });
    assert.equal(outsider.received.length, 1);
  });

  it('a publisher that is not subscribed does not receive its own message', async () => {
    const [publisher, reader] = await Promise.all([open(), open()]);
    await reader.request({ action: 'subscribe', topic: 'solo' });
    await publisher.request({ action: 'publish', topic: 'solo', message: 'x' });
    assert.deepEqual(await reader.next(), { action: 'publish', topic: 'solo', message: 'x' });
    assert.deepEqual(await publisher.request({ action: 'ping' }), { id: 2, action: 'ping', ok: true });
    assert.equal(publisher.received.length, 0);
  });

  it('unsubscribe stops delivery', async () => {
    const [c, publisher] = await Promise.all([open(), open()]);
    await c.request({ action: 'subscribe', topics: ['t1', 't2'] });
    assert.deepEqual(await c.request({ action: 'unsubscribe', topic: 't1' }), { id: 2, action: 'unsubscribe', ok: true });
    await publisher.request({ action: 'publish', topic: 't1', message: 'gone' });
    await publisher.request({ action: 'publish', topic: 't2', message: 'kept' });
    assert.deepEqual(await c.next(), { action: 'publish', topic: 't2', message: 'kept' });
    assert.equal(c.received.length, 1);
  });

  it('subscribes to several topics at once and delivers each in publish order', async () => {
    const [c, publisher] = await Promise.all([open(), open()]);
    await c.request({ action: 'subscribe', topics: ['m1', 'm2', 'm3'] });
    for (let i = 0; i < 30; i++) publisher.send({ action: 'publish', topic: `m${(i % 3) + 1}`, message: i });
    const frames = await c.collect(30);
    assert.deepEqual(
      frames.map((f) => f.message),
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.deepEqual(
      frames.map((f) => f.topic),
      Array.from({ length: 30 }, (_, i) => `m${(i % 3) + 1}`),
    );
  });

  it('subscribing twice is idempotent: one delivery per publication', async () => {
    const [c, publisher] = await Promise.all([open(), open()]);
    await c.request({ action: 'subscribe', topic: 'twice' });
    assert.equal((await c.request({ action: 'subscribe', topics: ['twice', 'twice'] })).ok, true);
    await publisher.request({ action: 'publish', topic: 'twice', message: 1 });
    await publisher.request({ action: 'publish', topic: 'twice', message: 2 });
    const frames = await c.collect(2);
    assert.deepEqual(frames.map((f) => f.message), [1, 2]);
    await c.request({ action: 'ping' });
    assert.equal(c.received.length, 2);
  });

  it('handles a batch (JSON array) in order, one reply per id', async () => {
    const c = await open();
    c.send([
      { id: 'a', action: 'subscribe', topic: 'batch' },
      { action: 'publish', topic: 'batch', message: 'no id' },
      { id: 'b', action: 'publish', topic: 'batch', message: 'with id' },
      { id: 'c', action: 'unsubscribe', topic: 'batch' },
      { id: 'd', action: 'unsubscribe', topic: 'batch' },
    ]);
    const frames = await c.collect(6);
    assert.deepEqual(frames, [
      { id: 'a', action: 'subscribe', ok: true },
      { action: 'publish', topic: 'batch', message: 'no id' },
      { action: 'publish', topic: 'batch', message: 'with id' },
      { id: 'b', action: 'publish', ok: true },
      { id: 'c', action: 'unsubscribe', ok: true },
      { id: 'd', action: 'unsubscribe', ok: false, error: { code: 'not_subscribed', message: 'not subscribed to batch' } },
    ]);
  });

  it('gives no reply to a successful command without id', async () => {
    const c = await open();
    c.send({ action: 'subscribe', topic: 'quiet' });
    c.send({ action: 'ping' });
    c.send({ action: 'unsubscribe', topic: 'quiet' });
    // The reply to this ping is the first frame: nothing was sent for the three before it.
    assert.deepEqual(await c.request({ action: 'ping' }), { id: 1, action: 'ping', ok: true });
    assert.equal(c.received.length, 0);
  });

  it('delivers messages of every JSON type unchanged', async () => {
    const c = await open();
    await c.request({ action: 'subscribe', topic: 'types' });
    const messages = [null, true, 0, -1.5, 'text with "quotes" and ünïcode ✓', [], [1, [2]], {}, { nested: { deep: [null] } }];
    for (const message of messages) c.send({ action: 'publish', topic: 'types', message });
    const frames = await c.collect(messages.length);
    assert.deepEqual(frames.map((f) => f.message), messages);
  });
});
