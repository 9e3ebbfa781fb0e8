import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldClient } from '@herald/client';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, http, startHerald, wsUrl, type TestClient } from '../helpers/helpers.js';
import { eventually, NatsServer, RedisServer, requireBinary } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';

/** History shared through Redis: offsets, ordering and recovery across nodes. */
describe('history in Redis, shared by several nodes', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  let prefix = '';
  let tests = 0;

  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  async function node(options: HeraldOptions = {}): Promise<Herald> {
    const herald = await startHerald({
      broker: 'redis',
      redis: { url: redis.url, prefix },
      cluster: { heartbeatInterval: 200 },
      history: [{ pattern: 'h:*', size: 10_000, ttl: 600_000 }],
      limits: { maxConnectionsPerIp: 5000, connectionsPerSecondPerIp: 5000, commandsPerSecond: 10_000, commandBurst: 10_000 },
      ...options,
    });
    await brokerReady(herald);
    return herald;
  }

  async function subscriber(herald: Herald, topic: string): Promise<TestClient> {
    const client = await connect(herald);
    const reply = await client.request({ action: 'subscribe', topic });
    assert.equal(reply.ok, true);
    return client;
  }

  it('gives publications from every node consecutive offsets, and every node delivers them in offset order', async (t) => {
    if (skip) return t.skip(skip);
    prefix = `hc${++tests}:`;
    const nodes = await Promise.all([node(), node(), node()]);
    const clients = await Promise.all(nodes.flatMap((herald) => [subscriber(herald, 'h:race'), subscriber(herald, 'h:race')]));
    const perNode = 300;
    // Three publishers at once, one per node, through the library API and HTTP.
    const results = await Promise.all(
      nodes.map(async (herald, index) => {
        const offsets: number[] = [];
        for (let i = 0; i < perNode; i++) {
          const result = index === 2 ? (await http(herald, 'POST', '/api/publish', { topic: 'h:race', message: { node: index, i } })).body as { offset: number } : await herald.publish('h:race', { node: index, i });
          offsets.push(result.offset!);
        }
        return offsets;
      }),
    );
    const all = results.flat().sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 3 * perNode }, (_, i) => i + 1), 'no offset shared or skipped');
    for (const client of clients) {
      const offsets: number[] = [];
      for (let i = 0; i < 3 * perNode; i++) {
        const frame = await client.next(10_000);
        offsets.push(frame.offset as number);
      }
      assert.deepEqual(offsets, Array.from({ length: 3 * perNode }, (_, i) => i + 1), 'every subscriber, on every node, in offset order, once');
    }
    // Each node's own publications came back through Redis once, not also locally.
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(nodes.map((herald) => herald.close()));
  });

  it('recovers on one node what was published on another while the client was away, under load, with the SDK', async (t) => {
    if (skip) return t.skip(skip);
    prefix = `hc${++tests}:`;
    const [a, b] = await Promise.all([node(), node()]);
    // The client moves between the two nodes at each reconnect, as behind a load balancer.
    let turn = 0;
    const urls = [wsUrl(a), wsUrl(b)];
    class Alternating extends WebSocket {
      constructor(_url: string, protocols?: string | string[]) {
        super(urls[turn++ % 2]!, protocols);
      }
    }
    const client = new HeraldClient({ url: 'ws://unused', WebSocket: Alternating, minReconnectDelay: 20, maxReconnectDelay: 100 });
    const subscription = client.subscribe('h:feed');
    const received: number[] = [];
    let recovered = 0;
    subscription.on('message', ({ message }) => received.push(message as number));
    subscription.on('subscribed', (event) => event.recovered && recovered++);
    subscription.on('recoveryFailed', ({ reason }) => assert.fail(`recovery failed: ${reason}`));
    client.connect();
    await deadline(subscription.ready, 10_000, 'subscribed');
    const total = 2000;
    const done = deadline(new Promise<void>((resolve) => subscription.on('message', ({ message }) => message === total && resolve())), 60_000, 'last message');
    for (let i = 1; i <= total; i++) {
      // Publishers on both nodes, alternately.
      await (i % 2 ? a : b).publish('h:feed', i);
      if (i % 400 === 0) for (const herald of [a, b]) for (const session of internals(herald).sessions.values()) session.terminate(1006, 'drop');
      if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await done;
    assert.equal(received.length, total, 'no gap and no duplicate');
    assert.ok(received.every((value, index) => value === index + 1), 'in order');
    assert.ok(recovered >= 4, `recovered after each drop (${recovered})`);
    client.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('history read from any node is the same; a lost Redis key starts a new epoch that recovery reports', async (t) => {
    if (skip) return t.skip(skip);
    prefix = `hc${++tests}:`;
    const [a, b] = await Promise.all([node(), node()]);
    for (let i = 1; i <= 5; i++) await a.publish('h:page', i);
    const fromA = await a.historyOf('h:page');
    const fromB = await b.historyOf('h:page');
    assert.deepEqual(fromA, fromB);
    assert.deepEqual(fromB.publications.map((p) => p.message), [1, 2, 3, 4, 5]);
    const since = { offset: 3, epoch: fromA.epoch };

    const client = await connect(b);
    const reply = await client.request({ action: 'subscribe', topic: 'h:page', since });
    assert.deepEqual({ ...reply, id: 0 }, { id: 0, action: 'subscribe', ok: true, recovered: true, offset: 5, epoch: fromA.epoch });
    assert.deepEqual([(await client.next()).message, (await client.next()).message], [4, 5]);
    await client.close();

    // The keys go (eviction, a Redis restart without persistence): a new epoch, and no false recovery.
    const direct = new Redis(redis.url);
    await direct.del(`${prefix}herald|history|h:page|meta`);
    await direct.quit();
    const next = await b.publish('h:page', 6);
    assert.equal(next.offset, 1);
    assert.notEqual(next.epoch, fromA.epoch);
    const late = await connect(a);
    const failed = await late.request({ action: 'subscribe', topic: 'h:page', since: { offset: 5, epoch: fromA.epoch } });
    assert.equal(failed.recovered, false);
    assert.equal(failed.reason, 'epoch_changed');
    assert.equal(failed.epoch, next.epoch);
    await late.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('an idempotency key holds across nodes: a retry on another node publishes nothing and answers the first offset', async (t) => {
    if (skip) return t.skip(skip);
    prefix = `hc${++tests}:`;
    const [a, b] = await Promise.all([node(), node()]);
    const watcher = await subscriber(b, 'h:orders');
    const first = await a.publish('h:orders', { order: 1 }, 'library', { idempotencyKey: 'order-1' });
    const retry = (await http(b, 'POST', '/api/publish', { topic: 'h:orders', message: { order: 1 }, idempotencyKey: 'order-1' })).body as { offset: number; epoch: string };
    assert.deepEqual({ offset: retry.offset, epoch: retry.epoch }, first);
    const other = await b.publish('h:orders', { order: 2 }, 'library', { idempotencyKey: 'order-2' });
    assert.equal(other.offset, first.offset! + 1);
    assert.deepEqual((await watcher.next()).message, { order: 1 });
    assert.deepEqual((await watcher.next()).message, { order: 2 }, 'the retry was not delivered');
    assert.deepEqual((await a.historyOf('h:orders')).publications.map((p) => p.message), [{ order: 1 }, { order: 2 }]);
    await watcher.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps at most size entries, and says too_far_behind past them', async (t) => {
    if (skip) return t.skip(skip);
    prefix = `hc${++tests}:`;
    const herald = await node({ history: [{ pattern: 'h:*', size: 10, ttl: 600_000 }] });
    let epoch = '';
    for (let i = 1; i <= 300; i++) epoch = (await herald.publish('h:small', i)).epoch!;
    const page = await herald.historyOf('h:small');
    assert.deepEqual(page.publications.map((p) => p.message), Array.from({ length: 10 }, (_, i) => 291 + i));
    const client = await connect(herald);
    const reply = await client.request({ action: 'subscribe', topic: 'h:small', since: { offset: 280, epoch } });
    assert.equal(reply.reason, 'too_far_behind');
    // Within the kept ten: recovered, exactly those.
    const ok = await client.request({ action: 'subscribe', topic: 'h:small', since: { offset: 290, epoch } });
    assert.equal(ok.recovered, true);
    const replayed: unknown[] = [];
    for (let i = 0; i < 10; i++) replayed.push((await client.next()).message);
    assert.deepEqual(replayed, Array.from({ length: 10 }, (_, i) => 291 + i));
    await client.close();
    await herald.close();
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`presence across nodes (${kind} broker)`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server = kind === 'redis' ? new RedisServer() : new NatsServer();
    let round = 0;
    before(async () => {
      if (!skip) await server.start();
    });
    after(() => server.stop());

    async function node(prefix: string): Promise<Herald> {
      const herald = await startHerald({
        broker: kind,
        [kind]: { url: server.url, prefix },
        cluster: { heartbeatInterval: 150 },
        presence: [{ pattern: 'room:*', joinLeave: true }],
        auth: { jwt: { secret: SECRET } },
      });
      await eventually(() => internals(herald).broker.state === 'ready', 'broker ready', 10_000);
      return herald;
    }

    async function member(herald: Herald, uid: string, name: string): Promise<TestClient> {
      const client = await connect(herald, { path: `/ws?token=${await signToken({ sub: uid, info: { name } })}` });
      assert.equal((await client.request({ action: 'subscribe', topic: 'room:1' })).ok, true);
      return client;
    }

    it('every node sees everyone on the topic, with exact counts, join/leave events from other nodes, and a crashed node’s entries go', async (t) => {
      if (skip) return t.skip(skip);
      const prefix = kind === 'redis' ? `pr${++round}:` : `pr${++round}.`;
      const [a, b] = await Promise.all([node(prefix), node(prefix)]);
      await eventually(() => a.clusterView().length === 2 && b.clusterView().length === 2, 'nodes see each other', 10_000);
      const alice = await member(a, 'alice', 'Alice');
      const bob = await member(b, 'bob', 'Bob');
      // Alice, on node A, hears that Bob joined on node B.
      const join = await alice.next(10_000);
      assert.equal(join.action, 'join');
      assert.deepEqual((join.info as { uid: string; info: unknown }).info, { name: 'Bob' });
      // Alice again, from another tab on node B: three connections, two users, on both nodes.
      const alice2 = await member(b, 'alice', 'Alice');
      for (const herald of [a, b]) {
        await eventually(() => herald.presence('room:1').connections === 3, `three connections seen from ${herald.nodeId}`, 10_000);
        const view = herald.presence('room:1');
        assert.equal(view.users, 2);
        assert.deepEqual(view.list.map((entry) => entry.uid).sort(), ['alice', 'alice', 'bob']);
      }
      // Bob leaves: Alice on A hears it.
      await bob.request({ action: 'unsubscribe', topic: 'room:1' });
      let leave = await alice.next(10_000);
      while (leave.action === 'join') leave = await alice.next(10_000);
      assert.equal(leave.action, 'leave');
      assert.equal((leave.info as { uid: string }).uid, 'bob');
      await eventually(() => a.presence('room:1').users === 1, 'bob gone on A', 10_000);

      // Node B dies without a goodbye (its broker connection cut, no heartbeats): A drops its entries.
      await internals(b).broker.close();
      await eventually(() => a.presence('room:1').connections === 1, "the crashed node's entries expire", 10_000);
      assert.deepEqual(a.presence('room:1').list.map((entry) => entry.conn), [[...internals(a).sessions.values()][0]!.id]);
      await Promise.all([alice.close(), alice2.close(), bob.close()]);
      await Promise.all([a.close(), b.close()]);
    });
  });
}

describe('NATS broker with the history in Redis alongside', () => {
  const skip = requireBinary('redis-server') ?? requireBinary('nats-server');
  const redis = new RedisServer();
  const nats = new NatsServer();
  before(async () => {
    if (!skip) await Promise.all([redis.start(), nats.start()]);
  });
  after(() => Promise.all([redis.stop(), nats.stop()]));

  async function node(): Promise<Herald> {
    const herald = await startHerald({
      broker: 'nats',
      nats: { url: nats.url, prefix: 'split.' },
      historyStore: 'redis',
      redis: { url: redis.url, prefix: 'split:' },
      cluster: { heartbeatInterval: 150 },
      history: [{ pattern: 'h:*', size: 1000, ttl: 600_000 }],
    });
    await eventually(() => internals(herald).broker.state === 'ready', 'both brokers ready', 10_000);
    return herald;
  }

  it('shares offsets and order through Redis for topics with history, and carries the rest over NATS', async (t) => {
    if (skip) return t.skip(skip);
    const [a, b] = await Promise.all([node(), node()]);
    assert.equal(internals(a).broker.name, 'nats+redis');
    await eventually(() => a.clusterView().length === 2, 'the nodes see each other over NATS', 10_000);
    const onA = await connect(a);
    const onB = await connect(b);
    for (const client of [onA, onB]) {
      await client.request({ action: 'subscribe', topic: 'h:log' });
      await client.request({ action: 'subscribe', topic: 'plain' });
    }
    await Promise.all([
      (async () => {
        for (let i = 0; i < 200; i++) await a.publish('h:log', { from: 'a', i });
      })(),
      (async () => {
        for (let i = 0; i < 200; i++) await b.publish('h:log', { from: 'b', i });
      })(),
    ]);
    for (const client of [onA, onB]) {
      const offsets: number[] = [];
      for (let i = 0; i < 400; i++) offsets.push((await client.next(10_000)).offset as number);
      assert.deepEqual(offsets, Array.from({ length: 400 }, (_, i) => i + 1));
    }
    await a.publish('plain', 'over nats');
    for (const client of [onA, onB]) assert.deepEqual(await client.next(10_000), { action: 'publish', topic: 'plain', message: 'over nats' });
    await Promise.all([onA.close(), onB.close()]);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('history kept in each process (memory store) with the NATS broker', () => {
  const skip = requireBinary('nats-server');
  const nats = new NatsServer();
  before(async () => {
    if (!skip) await nats.start();
  });
  after(() => nats.stop());
  const options = (prefix: string): HeraldOptions => ({
    broker: 'nats',
    nats: { url: nats.url, prefix },
    historyStore: 'memory',
    cluster: { heartbeatInterval: 200 },
    history: [{ pattern: 'h:*', size: 1000, ttl: 600_000 }],
  });

  it('a lone node recovers what it stored', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await startHerald(options('lone.'));
    await brokerReady(herald);
    const first = await connect(herald);
    assert.equal((await first.request({ action: 'subscribe', topic: 'h:room' })).ok, true);
    await herald.publish('h:room', 'a0');
    const seen = await first.next();
    await first.close();
    for (const message of ['a1', 'a2']) await herald.publish('h:room', message);
    const again = await connect(herald);
    const reply = await again.request({ action: 'subscribe', topic: 'h:room', since: { offset: seen.offset, epoch: seen.epoch } });
    assert.deepEqual([reply.recovered, reply.offset], [true, seen.offset + 2]);
    assert.deepEqual([(await again.next()).message, (await again.next()).message], ['a1', 'a2']);
    await herald.close();
  });

  it('a node that joins a running node hears of it within a round trip, not at its next heartbeat: its recoveries do not vouch from the start', async (t) => {
    if (skip) return t.skip(skip);
    // Heartbeats far apart: only the answers to the newcomer's announce can tell it about the other node.
    const slow = { ...options('join.'), cluster: { heartbeatInterval: 60_000 } };
    const a = await startHerald(slow);
    await brokerReady(a);
    const b = await startHerald(slow);
    await brokerReady(b);
    await eventually(() => b.clusterView().length === 2, 'node b to know node a', 2000);
    const first = await connect(b);
    assert.equal((await first.request({ action: 'subscribe', topic: 'h:room' })).ok, true);
    await b.publish('h:room', 'b0');
    const seen = await first.next();
    await first.close();
    const again = await connect(b);
    const reply = await again.request({ action: 'subscribe', topic: 'h:room', since: { offset: seen.offset, epoch: seen.epoch } });
    assert.deepEqual([reply.recovered, reply.reason], [false, 'not_shared']);
    await again.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('once another node is there, a recovery does not vouch for a part: recovered false, not_shared (it replayed this node\'s publications only, as if they were all)', async (t) => {
    if (skip) return t.skip(skip);
    const [a, b] = [await startHerald(options('pair.')), await startHerald(options('pair.'))];
    await Promise.all([brokerReady(a), brokerReady(b)]);
    // The nodes hear of each other on the cluster's heartbeat.
    await eventually(() => a.clusterView().length === 2, 'node a to know node b');
    const first = await connect(a);
    assert.equal((await first.request({ action: 'subscribe', topic: 'h:room' })).ok, true);
    await a.publish('h:room', 'a0');
    const seen = await first.next();
    await b.publish('h:room', 'b0');
    const foreign = await first.next();
    assert.deepEqual([foreign.message, foreign.offset], ['b0', undefined], "node b's publication has no offset here: node a did not store it");
    await first.close();
    await b.publish('h:room', 'b1');
    await a.publish('h:room', 'a1');
    const again = await connect(a);
    const reply = await again.request({ action: 'subscribe', topic: 'h:room', since: { offset: seen.offset, epoch: seen.epoch } });
    assert.equal(reply.recovered, false);
    assert.equal(reply.reason, 'not_shared');
    assert.equal(reply.offset, seen.offset + 1, 'the position here, to continue from');
    await b.publish('h:room', 'b2');
    assert.equal((await again.next()).message, 'b2', 'live publications follow; nothing was replayed');
    await Promise.all([a.close(), b.close()]);
  });
});
