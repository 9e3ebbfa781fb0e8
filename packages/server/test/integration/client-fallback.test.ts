import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { HeraldClient, type ClientOptions } from '@herald/client';
import WebSocket from 'ws';
import type { Herald } from '../../src/index.js';
import { deadline, http, startHerald } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { refusingProxy, type RefusingProxy } from '../helpers/refusing-proxy.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** A Herald behind a proxy that refuses WebSocket upgrades, both closed when the test ends (passed or not). */
async function behindProxy(t: TestContext, options: Parameters<typeof startHerald>[0] = {}): Promise<{ herald: Herald; proxy: RefusingProxy }> {
  const herald = await startHerald(options);
  const proxy = await refusingProxy(herald.url);
  t.after(async () => {
    for (const client of clients.splice(0)) client.close();
    await proxy.close();
    await herald.close();
  });
  return { herald, proxy };
}

const clients: HeraldClient[] = [];

/** The SDK on Node (ws for its WebSocket), pointed at a proxy that refuses WebSocket upgrades: it has to fall back. */
function sdk(proxy: RefusingProxy, options: Partial<ClientOptions> = {}): HeraldClient {
  const client = new HeraldClient({
    url: `${proxy.url.replace('http', 'ws')}/ws`,
    WebSocket,
    transportMemory: null,
    minReconnectDelay: 20,
    maxReconnectDelay: 200,
    ...options,
  });
  clients.push(client);
  return client;
}

/** Ends every HTTP stream of the server without a close line, as a lost connection would. */
function dropStreams(herald: Herald): number {
  let dropped = 0;
  for (const session of internals(herald).sessions.values()) {
    session.terminate(1006, 'test drops the stream');
    dropped++;
  }
  return dropped;
}

describe('@herald/client over HTTP streaming, the WebSocket refused, against a real Herald', () => {
  it('falls back, subscribes, publishes, and recovers every publication after the server drops the stream', async (t) => {
    const { herald, proxy } = await behindProxy(t, { history: [{ pattern: 'feed', size: 10_000, ttl: 600_000 }] });
    const client = sdk(proxy);
    const changes: string[] = [];
    client.on('transport', ({ from, to }) => changes.push(`${from}→${to}`));
    const subscription = client.subscribe('feed');
    const received: number[] = [];
    const recoveries: boolean[] = [];
    subscription.on('message', ({ message }) => received.push(message as number));
    subscription.on('subscribed', (event) => event.resubscribed && recoveries.push(event.recovered === true));
    subscription.on('recoveryFailed', ({ reason }) => assert.fail(`recovery failed: ${reason}`));
    client.connect();
    await deadline(subscription.ready, 10_000, 'the subscribe over HTTP streaming');
    assert.equal(client.transport, 'http-stream');
    assert.deepEqual(changes, ['websocket→http-stream']);
    assert.equal(proxy.upgradesRefused, 1);

    // A publish from the SDK: a command POST, its reply on the stream.
    const first = await client.publish('feed', 1);
    assert.equal(first.offset, 1);
    assert.equal((await herald.publish('feed', 2)).epoch, first.epoch);

    const total = 600;
    const drops = new Set([100, 250, 400, 550]);
    const done = deadline(
      new Promise<void>((resolve) => subscription.on('message', ({ message }) => message === total && resolve())),
      60_000,
      `message ${total}`,
    );
    for (let i = 3; i <= total; i++) {
      await herald.publish('feed', i);
      if (drops.has(i)) {
        const resubscribed = new Promise((resolve) => subscription.once('subscribed', resolve));
        assert.equal(dropStreams(herald), 1);
        // Publications go on while the client is away; the next drop waits for it to be back.
        for (let j = 0; j < 20; j++) await herald.publish('feed', ++i);
        await deadline(resubscribed, 10_000, `the resubscribe after the drop at ${i - 20}`);
      }
      if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
    assert.equal(received.length, total, 'no gap and no duplicate');
    assert.ok(received.every((value, index) => value === index + 1), 'in order');
    assert.ok(recoveries.length >= drops.size, `resubscribed after each drop (${recoveries.length})`);
    assert.ok(recoveries.every(Boolean), 'every resubscription recovered');
    assert.equal(client.transport, 'http-stream', 'the reconnects kept HTTP streaming');
    assert.equal(proxy.upgradesRefused, 1, 'and did not try the WebSocket again');
  });

  it('sends commands in order through one POST at a time: a burst of publishes arrives as sent', async (t) => {
    const { proxy } = await behindProxy(t);
    const publisher = sdk(proxy);
    const reader = sdk(proxy);
    const subscription = reader.subscribe('burst');
    const received: number[] = [];
    subscription.on('message', ({ message }) => received.push(message as number));
    reader.connect();
    publisher.connect();
    await deadline(subscription.ready, 10_000, 'subscribe');
    const burst = Array.from({ length: 200 }, (_, i) => publisher.publish('burst', i));
    await deadline(Promise.all(burst), 20_000, 'the replies to the burst');
    assert.equal(publisher.transport, 'http-stream');
    await deadline(new Promise<void>((resolve) => (received.length === 200 ? resolve() : subscription.on('message', () => received.length === 200 && resolve()))), 10_000, 'the burst');
    assert.deepEqual(received, Array.from({ length: 200 }, (_, i) => i));
  });

  it('opens the stream with the token as Bearer: the user is known, and pushes to it arrive', async (t) => {
    const { herald, proxy } = await behindProxy(t, { auth: { anonymous: false, jwt: { secret: SECRET } } });
    const client = sdk(proxy, { getToken: () => signToken({ sub: 'dave' }) });
    const connected = deadline(new Promise<{ uid?: string }>((resolve) => client.once('connected', resolve)), 10_000, 'connected');
    client.connect();
    assert.equal((await connected).uid, 'dave');
    assert.equal(client.transport, 'http-stream');
    const pushed = deadline(new Promise<unknown>((resolve) => client.once('push', ({ message }) => resolve(message))), 5000, 'the push');
    assert.equal((await http(herald, 'POST', '/api/send', { uid: 'dave', message: 'for dave' })).body.delivered, 1);
    assert.equal(await pushed, 'for dave');
  });
});
