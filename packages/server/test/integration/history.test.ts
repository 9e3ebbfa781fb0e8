import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';

const historyConfig = { history: [{ pattern: 'room:*', size: 1000, ttl: '5m' }, { pattern: 'short', size: 5 }, { pattern: 'brief', ttl: 150 }] };

describe('history', () => {
  it('gives every publication the next offset, also under concurrent publishers', async () => {
    const herald = await startHerald(historyConfig);
    const publishers = await Promise.all(Array.from({ length: 5 }, () => connect(herald)));
    const replies = await Promise.all(
      publishers.flatMap((p, n) => Array.from({ length: 40 }, (_, i) => p.request({ action: 'publish', topic: 'room:1', message: { n, i } }))),
    );
    const offsets = replies.map((r) => r.offset).sort((a: number, b: number) => a - b);
    assert.deepEqual(offsets, Array.from({ length: 200 }, (_, i) => i + 1), 'no duplicate and no skipped offset');
    assert.equal(new Set(replies.map((r) => r.epoch)).size, 1);
    const http1 = await http(herald, 'POST', '/api/publish', { topic: 'room:1', message: 'x' });
    assert.equal(http1.body.offset, 201);
    assert.equal(http1.body.epoch, replies[0].epoch);
    await herald.close();
  });

  it('deliveries carry offset and epoch; topics without a rule have none', async () => {
    const herald = await startHerald(historyConfig);
    const c = await connect(herald);
    await c.request({ action: 'subscribe', topics: ['room:2', 'plain'] });
    await herald.publish('room:2', 'kept');
    await herald.publish('plain', 'not kept');
    const kept = await c.next();
    assert.equal(kept.offset, 1);
    assert.equal(typeof kept.epoch, 'string');
    assert.deepEqual(await c.next(), { action: 'publish', topic: 'plain', message: 'not kept' });
    await herald.close();
  });

  it('keeps at most size publications and none older than the TTL; history command, HTTP and library agree', async () => {
    const herald = await startHerald(historyConfig);
    for (let i = 1; i <= 8; i++) await herald.publish('short', i);
    const page = await herald.historyOf('short');
    assert.deepEqual(page.publications.map((p) => p.message), [4, 5, 6, 7, 8]);
    assert.equal(page.offset, 8);
    const latest = await http(herald, 'GET', '/api/history?topic=short&limit=2&reverse=true');
    assert.deepEqual(latest.body.publications.map((p: { message: number }) => p.message), [8, 7]);
    const after = await http(herald, 'GET', `/api/history?topic=short&since=6&epoch=${page.epoch}`);
    assert.deepEqual(after.body.publications.map((p: { offset: number }) => p.offset), [7, 8]);
    const wrongEpoch = await http(herald, 'GET', '/api/history?topic=short&since=6&epoch=nope');
    assert.equal(wrongEpoch.status, 400);
    assert.equal((await http(herald, 'GET', '/api/history?topic=plain')).status, 404);
    const c = await connect(herald);
    const viaCommand = await c.request({ action: 'history', topic: 'short', limit: 3 });
    assert.deepEqual(viaCommand.publications.map((p: { message: number }) => p.message), [4, 5, 6]);

    await herald.publish('brief', 'soon gone');
    assert.equal((await herald.historyOf('brief')).publications.length, 1);
    await new Promise((resolve) => setTimeout(resolve, 200)); // let the 150 ms TTL pass
    assert.equal((await herald.historyOf('brief')).publications.length, 0);
    await herald.close();
  });

  it('recovers exactly the missed publications, in order, then continues live, with publishers running at about 1,000 msg/s', async () => {
    const herald = await startHerald(historyConfig);
    let published = 0;
    let running = true;
    // A steady publisher: 10 publications every 10 ms, on the library path.
    const publisher = (async () => {
      while (running) {
        for (let i = 0; i < 10; i++) await herald.publish('room:live', { n: ++published });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const first = await connect(herald);
    await first.request({ action: 'subscribe', topic: 'room:live' });
    const seen = await first.collect(20);
    const last = seen.at(-1);
    await first.close();
    // 500 publications happen while the client is away.
    const resumeAt = last.offset + 500;
    while (published < resumeAt) await new Promise((resolve) => setTimeout(resolve, 5));
    const again: TestClient = await connect(herald);
    const reply = await again.request({ action: 'subscribe', topic: 'room:live', since: { offset: last.offset, epoch: last.epoch } });
    assert.equal(reply.recovered, true);
    assert.equal(reply.epoch, last.epoch);
    // Everything after the old offset arrives: the 500+ missed ones, then live ones, no gap, no duplicate.
    const frames = await again.collect(800, 20_000);
    running = false;
    await publisher;
    const offsets = frames.map((f) => f.offset);
    assert.deepEqual(offsets, Array.from({ length: 800 }, (_, i) => last.offset + 1 + i));
    assert.deepEqual(frames.map((f) => f.message.n), offsets, 'the messages match their offsets');
    await again.close();
    await herald.close();
  });

  it('says recovered: false with the reason when it cannot recover', async () => {
    const herald = await startHerald(historyConfig);
    for (let i = 0; i < 12; i++) await herald.publish('short', i);
    const { epoch } = await herald.historyOf('short');
    const c = await connect(herald);
    const wrongEpoch = await c.request({ action: 'subscribe', topic: 'short', since: { offset: 10, epoch: 'old-epoch' } });
    assert.deepEqual(wrongEpoch, { id: 1, action: 'subscribe', ok: true, recovered: false, reason: 'epoch_changed', offset: 12, epoch });
    await c.request({ action: 'unsubscribe', topic: 'short' });
    const tooFar = await c.request({ action: 'subscribe', topic: 'short', since: { offset: 2, epoch } });
    assert.equal(tooFar.recovered, false);
    assert.equal(tooFar.reason, 'too_far_behind');
    await c.request({ action: 'unsubscribe', topic: 'short' });
    const off = await c.request({ action: 'subscribe', topic: 'plain', since: { offset: 2, epoch } });
    assert.equal(off.reason, 'history_off');
    assert.equal(c.received.length, 0, 'nothing replayed when recovery failed');
    await herald.close();
  });

  it('the epoch changes when the history is lost (a restarted node)', async () => {
    const before: Herald = await startHerald(historyConfig);
    const { epoch } = await before.publish('room:3', 1);
    await before.close();
    const after = await startHerald(historyConfig);
    const { epoch: newEpoch } = await after.publish('room:3', 1);
    assert.notEqual(newEpoch, epoch);
    const c = await connect(after);
    assert.equal((await c.request({ action: 'subscribe', topic: 'room:3', since: { offset: 1, epoch: epoch! } })).reason, 'epoch_changed');
    await after.close();
  });

  it('idempotent publish: a retried key publishes once and answers the first offset', async () => {
    const herald = await startHerald(historyConfig);
    const c = await connect(herald);
    await c.request({ action: 'subscribe', topic: 'room:idem' });
    const first = await http(herald, 'POST', '/api/publish', { topic: 'room:idem', message: 'pay 10', idempotencyKey: 'order-1' });
    const retry = await http(herald, 'POST', '/api/publish', { topic: 'room:idem', message: 'pay 10', idempotencyKey: 'order-1' });
    const other = await http(herald, 'POST', '/api/publish', { topic: 'room:idem', message: 'pay 20', idempotencyKey: 'order-2' });
    assert.deepEqual(retry.body, first.body);
    assert.equal(other.body.offset, first.body.offset + 1);
    assert.deepEqual((await herald.publish('room:idem', 'lib', 'library', { idempotencyKey: 'order-2' })).offset, other.body.offset);
    const frames = await c.collect(2);
    assert.deepEqual(frames.map((f) => f.message), ['pay 10', 'pay 20']);
    await c.request({ action: 'ping' });
    assert.equal(c.received.length, 2, 'the retries published nothing');
    await herald.close();
  });
});
