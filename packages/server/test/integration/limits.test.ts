import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import type { DisconnectInfo } from '../../src/index.js';
import { connect, deadline, startHerald, wsUrl } from '../helpers/helpers.js';

/** A command frame of exactly `size` bytes. */
function frameOfSize(size: number, id: number): string {
  const base = JSON.stringify({ id, action: 'ping', pad: '' });
  return JSON.stringify({ id, action: 'ping', pad: 'x'.repeat(size - base.length) });
}

describe('limits', () => {
  it('accepts a frame at the size limit and closes with 1009 one byte over it', async () => {
    const herald = await startHerald({ limits: { maxFrameBytes: 1024 } });
    const [c, bystander] = await Promise.all([connect(herald), connect(herald)]);
    await bystander.request({ action: 'subscribe', topic: 'calm' });

    const atLimit = frameOfSize(1024, 77);
    assert.equal(Buffer.byteLength(atLimit), 1024);
    c.send(atLimit);
    assert.deepEqual(await c.next(), { id: 77, action: 'ping', ok: true });

    const overLimit = frameOfSize(1025, 78);
    assert.equal(Buffer.byteLength(overLimit), 1025);
    c.send(overLimit);
    const closed = await deadline(c.closed, 5000, 'the 1009 close');
    assert.equal(closed.code, 1009);

    // The other connection is untouched.
    await herald.publish('calm', 'after');
    assert.deepEqual(await bystander.next(), { action: 'publish', topic: 'calm', message: 'after' });
    await bystander.close();
    await herald.close();
  });

  it('closes a client that stops reading with 1013 while the others receive every message', async () => {
    const maxQueueBytes = 256 * 1024;
    const herald = await startHerald({ limits: { maxQueueBytes } });
    const slow = await connect(herald);
    const fast = await Promise.all([connect(herald), connect(herald), connect(herald)]);
    for (const c of [slow, ...fast]) await c.request({ action: 'subscribe', topic: 'firehose' });

    const cut = new Promise<DisconnectInfo>((resolve) => {
      herald.on('disconnect', (connection, info) => {
        if (info.code === 1013) resolve(info);
      });
    });
    let slowCut = false;
    void cut.then(() => {
      slowCut = true;
    });

    slow.ws.pause(); // stops reading: the kernel buffers fill, then Herald's queue
    const payload = 'y'.repeat(4096);
    let published = 0;
    // Publish in batches paced by the fast clients (they must have everything
    // before the next batch); the slow one never reads. Bounded: at most 256 MB.
    for (let batch = 0; batch < 1000 && !slowCut; batch++) {
      for (let i = 0; i < 64; i++) await herald.publish('firehose', { n: published++, payload });
      await Promise.all(fast.map((c) => c.collect(published)));
    }
    const info = await deadline(cut, 5000, 'the slow consumer to be cut');
    assert.equal(info.by, 'server');
    assert.ok(published * 4096 > maxQueueBytes, 'the limit was really exceeded');

    // More messages after the cut still reach the fast clients.
    for (let i = 0; i < 10; i++) await herald.publish('firehose', { n: published++, payload });
    for (const c of fast) {
      const frames = await c.collect(published);
      assert.equal(frames.length, published);
      assert.ok(frames.every((f, i) => f.message.n === i), 'every message exactly once, in order');
    }

    // Once the slow client reads again it finds the 1013 close behind what was queued for it.
    slow.ws.resume();
    const closed = await deadline(slow.closed, 10_000, 'the slow client to see its close');
    assert.equal(closed.code, 1013);
    assert.match(closed.reason, /slow consumer/);
    assert.ok(slow.received.length < published, 'the slow client got fewer messages than were published');
    assert.equal(herald.status().slowConsumerDisconnects, 1);
    assert.equal(herald.status().connections, 3);

    await Promise.all(fast.map((c) => c.close()));
    await herald.close();
  });

  it('terminates a client that does not answer pings, and keeps one that does', async () => {
    const interval = 100;
    const timeout = 200;
    const herald = await startHerald({ heartbeat: { interval, timeout } });
    const mute = new WebSocket(wsUrl(herald), { autoPong: false });
    const openedAt = Date.now();
    await once(mute, 'open');
    const healthy = await connect(herald);

    let pings = 0;
    const threePings = new Promise<void>((resolve) => {
      healthy.ws.on('ping', () => {
        if (++pings === 3) resolve();
      });
    });
    const [code] = (await deadline(once(mute, 'close'), 5000, 'the mute client to be terminated')) as [number];
    const elapsed = Date.now() - openedAt;
    assert.equal(code, 1006, 'terminated without a close frame');
    assert.ok(elapsed >= interval + timeout - 20, `not before interval + timeout (took ${elapsed} ms)`);
    assert.ok(elapsed < interval + timeout + 2000, `within the timeout (took ${elapsed} ms)`);

    await deadline(threePings, 5000, 'three pings to the healthy client');
    assert.equal(healthy.ws.readyState, WebSocket.OPEN);
    assert.deepEqual(await healthy.request({ action: 'ping' }), { id: 1, action: 'ping', ok: true });
    await healthy.close();
    await herald.close();
  });

  it('sends app-level ping frames when enabled; answering them keeps the connection alive', async () => {
    const herald = await startHerald({ heartbeat: { interval: 100, timeout: 200, appPing: true } });
    // This client does not answer WebSocket pings; it answers the app-level ones.
    const client = await connect(herald, { autoPong: false });
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(await client.next(2000), { action: 'ping' });
      client.send({ action: 'pong' });
    }
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    await client.close();
    await herald.close();
  });
});
