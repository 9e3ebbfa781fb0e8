import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { HeraldClient, RequestError, type ClientOptions } from '@herald/client';
import WebSocket, { WebSocketServer } from 'ws';
import type { Herald } from '../../src/index.js';
import { connect, deadline, startHerald, wsUrl } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';

/** The SDK against a real Herald, over real sockets (ws stands in for the browser's WebSocket on Node 20). */
function sdk(herald: Herald, options: Partial<ClientOptions> = {}): HeraldClient {
  return new HeraldClient({ url: wsUrl(herald), WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, ...options });
}

function until<T>(client: HeraldClient, event: 'connected' | 'disconnected' | 'closed', what: string = event): Promise<T> {
  return deadline(new Promise<T>((resolve) => client.once(event, resolve as never)), 10_000, what);
}

/** Cuts every connection of the server without a close handshake, as a network loss would. */
function dropAll(herald: Herald): number {
  let dropped = 0;
  for (const session of internals(herald).sessions.values()) {
    session.terminate(1006, 'test drops the connection');
    dropped++;
  }
  return dropped;
}

describe('@herald/client against a real Herald', () => {
  it('reconnects after the server drops the connection, resubscribes, and gets new publications', async () => {
    const herald = await startHerald();
    const client = sdk(herald);
    const subscription = client.subscribe('news');
    const messages: unknown[] = [];
    subscription.on('message', ({ message }) => messages.push(message));
    client.connect();
    await deadline(subscription.ready, 5000, 'first subscribe');
    await herald.publish('news', 'one');
    await deadline(new Promise<void>((resolve) => subscription.once('message', () => resolve())), 5000, 'one');

    const lost = until<{ code: number }>(client, 'disconnected');
    const back = until<{ reconnected: boolean }>(client, 'connected', 'reconnect');
    const resubscribed = deadline(new Promise<{ resubscribed: boolean }>((resolve) => subscription.once('subscribed', resolve)), 10_000, 'resubscribe');
    assert.equal(dropAll(herald), 1);
    assert.equal((await lost).code, 1006);
    assert.equal((await back).reconnected, true);
    assert.equal((await resubscribed).resubscribed, true);
    await herald.publish('news', 'two');
    await deadline(new Promise<void>((resolve) => subscription.once('message', () => resolve())), 5000, 'two');
    assert.deepEqual(messages, ['one', 'two']);

    // A clean server-side close with a "reconnect" code behaves the same.
    const again = until(client, 'connected', 'reconnect after 1012');
    for (const session of internals(herald).sessions.values()) session.close(1012, 'restart');
    await again;
    await deadline(new Promise<void>((resolve) => subscription.once('subscribed', () => resolve())), 5000, 'resubscribe after 1012');
    assert.equal(internals(herald).sessions.size, 1);
    client.close();
    await herald.close();
  });

  it('recovers every publication missed while disconnected, in order and once, while a publisher keeps going', async () => {
    const herald = await startHerald({ history: [{ pattern: 'feed', size: 10_000, ttl: 600_000 }] });
    const client = sdk(herald);
    const subscription = client.subscribe('feed');
    const received: number[] = [];
    const recoveries: boolean[] = [];
    subscription.on('message', ({ message }) => received.push(message as number));
    subscription.on('subscribed', (event) => {
      if (event.resubscribed) recoveries.push(event.recovered === true);
    });
    subscription.on('recoveryFailed', ({ reason }) => assert.fail(`recovery failed: ${reason}`));
    client.connect();
    await deadline(subscription.ready, 5000, 'subscribe');

    const total = 3000;
    const drops = new Set([400, 1200, 2000, 2600]);
    const done = deadline(
      new Promise<void>((resolve) => subscription.on('message', ({ message }) => message === total && resolve())),
      60_000,
      `message ${total}`,
    );
    for (let i = 1; i <= total; i++) {
      await herald.publish('feed', i);
      if (drops.has(i)) dropAll(herald);
      if (i % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await done;
    assert.equal(received.length, total, 'no gap and no duplicate');
    assert.ok(received.every((value, index) => value === index + 1), 'in order');
    assert.ok(recoveries.length >= drops.size, `resubscribed after each drop (${recoveries.length})`);
    assert.ok(recoveries.every(Boolean), 'every resubscription recovered');
    client.close();
    await herald.close();
  });

  it('tells the app to reload when what it missed is gone', async () => {
    const herald = await startHerald({ history: [{ pattern: 'small', size: 5, ttl: 600_000 }] });
    const client = sdk(herald);
    const subscription = client.subscribe('small');
    client.connect();
    await subscription.ready;
    const failed = deadline(new Promise<{ reason: string }>((resolve) => subscription.once('recoveryFailed', resolve)), 10_000, 'recoveryFailed');
    // Disconnected, then more is published than the history keeps.
    client.close();
    for (let i = 0; i < 20; i++) await herald.publish('small', i);
    client.connect();
    assert.equal((await failed).reason, 'too_far_behind');
    client.close();
    await herald.close();
  });

  it('refreshes its token before it expires, on the same connection', async () => {
    const herald = await startHerald({ auth: { anonymous: false, expiryGrace: 100, jwt: { secret: SECRET, clockTolerance: 0 } } });
    const expiries: number[] = [];
    const client = sdk(herald, {
      getToken: async () => {
        const exp = Math.floor(Date.now() / 1000) + 3;
        expiries.push(exp * 1000);
        return signToken({ sub: 'carol' }, { exp });
      },
    });
    let drops = 0;
    client.on('disconnected', () => drops++);
    client.connect();
    assert.equal((await until<{ uid: string }>(client, 'connected')).uid, 'carol');
    const session = [...internals(herald).sessions.values()][0]!;
    assert.equal(session.identity.expiresAt, expiries[0]);
    // The refresh comes a fifth of the lifetime before expiry: the server then holds the new expiry.
    await deadline(
      new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (expiries.length >= 2 && session.identity.expiresAt === expiries[1]) {
            clearInterval(check);
            resolve();
          }
        }, 20);
      }),
      5000,
      'token refresh',
    );
    assert.ok(Date.now() < expiries[0]!, 'refreshed before the first token expired');
    assert.equal(drops, 0);
    assert.equal(session.state, 'open');
    await assert.rejects(client.request('no-such-action'), (err: unknown) => err instanceof RequestError && err.code === 'unknown_action');
    client.close();
    await herald.close();
  });

  it('is served as one ES module at /client.js that a page can import', async () => {
    const herald = await startHerald();
    const response = await fetch(`${herald.url}/client.js`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /javascript/);
    const text = await response.text();
    assert.match(text, /export\s*\{/);
    assert.ok(!/from\s*["']/.test(text), 'no imports left: one file');
    assert.ok(text.length < 20_000, `a few KB minified (${text.length} bytes)`);
    // A plain client sees the SDK's publications: interop with the raw protocol.
    const raw = await connect(herald);
    await raw.request({ action: 'subscribe', topic: 'sdk' });
    const client = sdk(herald);
    client.connect();
    const published = await client.publish('sdk', { from: 'sdk' });
    assert.deepEqual(published, {});
    assert.deepEqual(await raw.next(), { action: 'publish', topic: 'sdk', message: { from: 'sdk' } });
    client.close();
    await raw.close();
    await herald.close();
  });

  it('never drops a publication it has not handed to the application, even one at the position a subscribe reply reported', async () => {
    // A scripted peer over a real socket: it answers the subscribe with offset 5, then sends 5, 6 and 6 again.
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    server.on('connection', (ws) => {
      ws.on('message', (data) => {
        const command = JSON.parse(data.toString());
        if (command.action !== 'subscribe') return;
        ws.send(JSON.stringify({ id: command.id, action: 'subscribe', ok: true, offset: 5, epoch: 'e1' }));
        for (const offset of [5, 6, 6, 4, 7]) ws.send(JSON.stringify({ action: 'publish', topic: 't', message: offset, offset, epoch: 'e1' }));
        ws.send(JSON.stringify({ action: 'gap', topic: 't', reason: 'interrupted' }));
      });
    });
    const { port } = server.address() as { port: number };
    const client = new HeraldClient({ url: `ws://127.0.0.1:${port}`, WebSocket });
    const subscription = client.subscribe('t');
    const emitted: number[] = [];
    subscription.on('message', ({ context }) => emitted.push(context.offset!));
    const seven = new Promise<void>((resolve) => subscription.on('message', ({ context }) => context.offset === 7 && resolve()));
    const gap = new Promise<{ reason: string }>((resolve) => subscription.once('gap', resolve));
    client.connect();
    await deadline(seven, 5000, 'offset 7');
    // 5 was never handed over: emitted. The second 6 was: dropped. 4 came after 5 and 6 had been: dropped.
    assert.deepEqual(emitted, [5, 6, 7]);
    assert.deepEqual(subscription.position, { offset: 7, epoch: 'e1' });
    assert.deepEqual(await deadline(gap, 5000, 'the gap event'), { topic: 't', reason: 'interrupted' });
    client.close();
    server.close();
  });
});
