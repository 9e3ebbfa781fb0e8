import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, http, startHerald } from '../helpers/helpers.js';

describe('POST /api/publish batches are all or nothing', () => {
  it('a batch with an oversize item publishes nothing, not even the items before it', async () => {
    const herald = await startHerald({ history: [{ pattern: 'h:*', size: 100 }] });
    const watcher = await connect(herald);
    await watcher.request({ action: 'subscribe', topics: ['h:batch', 'plain'] });
    const big = 'x'.repeat(70 * 1024);
    const batch = await http(herald, 'POST', '/api/publish', [{ topic: 'h:batch', message: 'small' }, { topic: 'plain', message: 'small too' }, { topic: 'h:batch', message: big }]);
    assert.equal(batch.status, 413);
    assert.equal(batch.body.error.code, 'too_large');
    assert.match(batch.body.error.message, /^item 2: message is \d+ bytes/);
    // A multi-topic item with a topic the rule refuses: nothing either.
    const multi = await http(herald, 'POST', '/api/publish', { topics: ['plain', 'a b'], message: 1 });
    assert.equal(multi.status, 400);
    assert.equal(multi.body.error.code, 'invalid_topic');
    const nested = await http(herald, 'POST', '/api/publish', [{ topic: 'plain', message: 1 }, { topics: ['plain', 'h:batch'], message: big }]);
    assert.equal(nested.status, 413);
    assert.match(nested.body.error.message, /^item 1 \(plain\): /);
    assert.equal((await herald.historyOf('h:batch')).offset, 0, 'nothing stored');
    // The next frame the watcher gets is the corrected batch's first publication: nothing came before it.
    const fixed = await http(herald, 'POST', '/api/publish', [{ topic: 'h:batch', message: 'small' }, { topic: 'plain', message: 'small too' }]);
    assert.deepEqual(fixed.body, { ok: true, count: 2 });
    assert.deepEqual([(await watcher.next()).message, (await watcher.next()).message], ['small', 'small too']);
    assert.equal((await herald.historyOf('h:batch')).offset, 1);
    await herald.close();
  });

  it('the library publishMany checks every item first too', async () => {
    const herald = await startHerald();
    const watcher = await connect(herald);
    await watcher.request({ action: 'subscribe', topic: 'lib' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await assert.rejects(herald.publishMany([{ topic: 'lib', message: 1 }, { topic: 'lib', message: circular }]), /item 1: message is not serialisable/);
    await herald.publishMany([{ topic: 'lib', message: 2 }]);
    assert.equal((await watcher.next()).message, 2);
    await herald.close();
  });

  it('a WebSocket batch is not atomic: each element takes effect or fails on its own, in order', async () => {
    const herald = await startHerald();
    const watcher = await connect(herald);
    await watcher.request({ action: 'subscribe', topic: 'ws' });
    const client = await connect(herald);
    client.send([
      { id: 1, action: 'publish', topic: 'ws', message: 1 },
      { id: 2, action: 'publish', topic: 'a b', message: 2 },
      { id: 3, action: 'publish', topic: 'ws', message: 3 },
    ]);
    const replies = await client.collect(3);
    assert.deepEqual(replies.map((reply) => [reply.id, reply.ok]), [[1, true], [2, false], [3, true]]);
    assert.deepEqual([(await watcher.next()).message, (await watcher.next()).message], [1, 3]);
    await herald.close();
  });
});
