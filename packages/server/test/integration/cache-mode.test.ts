import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldClient } from '@herald/client';
import WebSocket from 'ws';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, startHerald, wsUrl, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { eventually, NatsServer, RedisServer, requireBinary } from '../helpers/servers.js';
import { openSse } from '../helpers/sse.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** Cache mode (`history[].cache`): state topics whose subscribers want the latest value, not the stream. */
const CACHE: HeraldOptions['history'] = [
  { pattern: 'price:*', size: 50, cache: true },
  { pattern: 'log:*', size: 50 },
];

/** What a client receives after a subscribe reply, up to the publication `marker` (published afterwards, on the same path). */
async function upTo(client: TestClient, marker: unknown): Promise<unknown[]> {
  const got: unknown[] = [];
  for (;;) {
    const frame = await client.next();
    if (frame.action === 'publish' && JSON.stringify(frame.message) === JSON.stringify(marker)) return got;
    got.push(frame.action === 'publish' ? frame.message : frame);
  }
}

/** Checks one node set (`nodes()`: the nodes, the first publishing) for the cache-mode contract; `skip()`: why it cannot run. */
function contract(nodes: () => Promise<Herald[]>, skip: () => string | null = () => null): void {
  it('a late subscriber, on every node, gets the latest value right after its reply, and nothing older', async (t) => {
    if (skip()) return t.skip(skip()!);
    const all = await nodes();
    const [publisher] = all;
    let last = { offset: 0, epoch: '' };
    let value: unknown;
    for (let i = 1; i <= 5; i++) {
      value = { price: 100 + i };
      const result = await publisher!.publish('price:eur', value);
      last = { offset: result.offset!, epoch: result.epoch! };
    }
    for (const [index, herald] of all.entries()) {
      const client = await connect(herald);
      const reply = await client.request({ action: 'subscribe', topic: 'price:eur' });
      assert.deepEqual([reply.ok, reply.offset, reply.epoch], [true, last.offset, last.epoch]);
      assert.deepEqual(await client.next(), { action: 'publish', topic: 'price:eur', message: value, offset: last.offset, epoch: last.epoch });
      // The next value, on the same path: nothing came between the latest one and it.
      value = `next ${index}`;
      last = (await publisher!.publish('price:eur', value)) as typeof last;
      assert.deepEqual(await upTo(client, value), [], 'nothing between the latest value and the next publication');
      await client.close();
    }
    // A topic without cache mode keeps the plain contract: the reply, then only what is published after it.
    await publisher!.publish('log:eur', 'old');
    const plain = await connect(all.at(-1)!);
    await plain.request({ action: 'subscribe', topic: 'log:eur' });
    await publisher!.publish('log:eur', 'marker');
    assert.deepEqual(await upTo(plain, 'marker'), []);
  });

  it('a recovery gets only the latest value, or nothing when the client has it; a lost position still gets the value', async (t) => {
    if (skip()) return t.skip(skip()!);
    const all = await nodes();
    const [publisher] = all;
    for (const [index, herald] of all.entries()) {
      const first = await publisher!.publish('price:usd', 1);
      for (let i = 2; i <= 9; i++) await publisher!.publish('price:usd', i);
      const latest = await publisher!.publish('price:usd', 10);
      const behind = await connect(herald);
      const reply = await behind.request({ action: 'subscribe', topic: 'price:usd', since: { offset: first.offset, epoch: first.epoch } });
      assert.deepEqual([reply.recovered, reply.offset], [true, latest.offset]);
      assert.deepEqual((await behind.next()).message, 10, 'only the latest of the nine missed');
      const current = await connect(herald);
      const same = await current.request({ action: 'subscribe', topic: 'price:usd', since: { offset: latest.offset, epoch: latest.epoch } });
      assert.equal(same.recovered, true);
      const lost = await connect(herald);
      const other = await lost.request({ action: 'subscribe', topic: 'price:usd', since: { offset: 3, epoch: 'gone' } });
      assert.equal(other.recovered, true, 'the client gets the current value: nothing to reload');
      assert.equal((await lost.next()).message, 10);
      const marker = `marker ${index}`;
      await publisher!.publish('price:usd', marker);
      for (const client of [behind, current, lost]) assert.deepEqual(await upTo(client, marker), []);
    }
  });

  it('the SDK, an SSE stream, a server-side subscription and an LHTTP subscribe get the latest value at once', async (t) => {
    if (skip()) return t.skip(skip()!);
    const all = await nodes();
    const [publisher] = all;
    const last = all.at(-1)!;
    await publisher!.publish('price:gbp', { price: 1 });
    await publisher!.publish('price:gbp', { price: 2 });
    const client = new HeraldClient({ url: wsUrl(last), WebSocket, token: await signToken({ sub: 'erin' }) });
    const subscription = client.subscribe('price:gbp');
    client.connect();
    const value = await deadline(new Promise((resolve) => subscription.once('message', ({ message }) => resolve(message))), 5000, 'the latest value');
    assert.deepEqual(value, { price: 2 });
    const sse = await openSse(last, ['price:gbp']);
    assert.equal((await sse.next()).event, 'subscribe');
    const event = await sse.next();
    assert.deepEqual([event.event, event.json.message], ['message', { price: 2 }]);
    const tab = await connect(last);
    await tab.request({ action: 'login', token: await signToken({ sub: 'erin' }) });
    await eventually(() => last === publisher || internals(publisher!).cluster.nodesHolding('erin').includes(last.nodeId), 'the publishing node to know where erin is');
    await publisher!.subscribeUser('erin', 'price:gbp');
    const frames = [await tab.next(), await tab.next()];
    assert.equal(frames[0].action, 'subscribed');
    assert.deepEqual(frames[1].message, { price: 2 });
    // An LHTTP subscribe too (its protocol has no reply: the value simply comes).
    const lhttp = await connect(last, { path: '/' });
    lhttp.send('LHTTP/1.0 s\r\nsubscribe:price:gbp\r\n\r\n');
    assert.equal(await lhttp.next(), 'LHTTP/1.0 publish\r\npublish:price:gbp\r\n\r\n{"price":2}');
    client.close();
  });
}

describe('cache mode with the memory store (one node)', () => {
  let herald: Herald;
  contract(async () => {
    herald ??= await startHerald({ history: CACHE, auth: { jwt: { secret: SECRET } } });
    return [herald];
  });
});

describe('cache mode with the Redis store, on every node', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  let nodes: Herald[] = [];
  before(async () => {
    if (skip) return;
    await redis.start();
    const options: HeraldOptions = { broker: 'redis', redis: { url: redis.url, prefix: 'cache:' }, history: CACHE, auth: { jwt: { secret: SECRET } }, cluster: { heartbeatInterval: 200 } };
    nodes = await Promise.all([startHerald(options), startHerald(options), startHerald(options)]);
    await Promise.all(nodes.map(brokerReady));
  });
  after(async () => {
    await Promise.all(nodes.map((herald) => herald.close()));
    await redis.stop();
  });
  contract(
    async () => nodes,
    () => skip,
  );
});

describe('cache mode with the memory store on two NATS nodes', () => {
  const skip = requireBinary('nats-server');
  const nats = new NatsServer();
  before(async () => {
    if (!skip) await nats.start();
  });
  after(() => nats.stop());

  it('a node that received the topic\'s publications serves the latest one to its late subscribers', async (t) => {
    if (skip) return t.skip(skip);
    const options: HeraldOptions = { broker: 'nats', nats: { url: nats.url, prefix: 'cache.' }, history: CACHE, cluster: { heartbeatInterval: 200 } };
    const [a, b] = await Promise.all([startHerald(options), startHerald(options)]);
    await Promise.all([brokerReady(a), brokerReady(b)]);
    const reader = await connect(b);
    await reader.request({ action: 'subscribe', topic: 'price:nok' });
    await a.publish('price:nok', 1);
    await a.publish('price:nok', 2);
    assert.deepEqual([(await reader.next()).message, (await reader.next()).message], [1, 2]);
    const late = await connect(b);
    assert.equal((await late.request({ action: 'subscribe', topic: 'price:nok' })).ok, true);
    assert.deepEqual(await late.next(), { action: 'publish', topic: 'price:nok', message: 2 }, 'the latest value B received from A');
    await Promise.all([a.close(), b.close()]);
  });
});
