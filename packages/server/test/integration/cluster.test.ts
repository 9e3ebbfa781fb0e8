import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { connect, deadline, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { eventually, freePort, NatsServer, RedisSentinel, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';
import { internals } from '../helpers/internals.js';

function waitForBroker(herald: Herald, state: string): Promise<void> {
  if (internals(herald).broker.state === state) return Promise.resolve();
  return deadline(
    new Promise<void>((resolve) => {
      const listener = (s: string): void => {
        if (s === state) {
          herald.off('broker', listener);
          resolve();
        }
      };
      herald.on('broker', listener);
    }),
    15_000,
    `broker ${state}`,
  );
}

/** Subscribes and collects until `marker` arrives: exactly what came before it, no more. */
async function until(client: TestClient, marker: unknown, ms = 20_000): Promise<unknown[]> {
  const got: unknown[] = [];
  for (;;) {
    const frame = await client.next(ms);
    if (JSON.stringify(frame.message) === JSON.stringify(marker)) return got;
    got.push(frame.message);
  }
}

for (const kind of ['redis', 'nats'] as const) {
  describe(`${kind} broker: several Herald nodes as one`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();

    before(async () => {
      if (!skip) await server.start();
    });
    after(() => server.stop());

    // Each test gets its own channel namespace, so that nodes of one test never meet another's.
    let prefix = kind === 'redis' ? 't0:' : 't0.';
    let tests = 0;
    // Topics that map to bare broker names (the raw-publisher and Lhttp-node tests set them).
    let rawTopics: string[] = [];
    const freshPrefix = (): string => {
      rawTopics = [];
      return (prefix = kind === 'redis' ? `t${++tests}:` : `t${++tests}.`);
    };

    async function node(options: HeraldOptions = {}): Promise<Herald> {
      const herald = await startHerald({
        broker: kind,
        [kind]: { url: server.url, prefix, rawTopics },
        cluster: { heartbeatInterval: 200 },
        limits: { maxConnectionsPerIp: 5000, connectionsPerSecondPerIp: 5000 },
        ...options,
      });
      await waitForBroker(herald, 'ready');
      return herald;
    }

    it('a publication on one node reaches subscribers on every node exactly once, in order', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const nodes = await Promise.all([node(), node(), node()]);
      const subscribers = await Promise.all(nodes.map((n) => connect(n)));
      for (const s of subscribers) await s.request({ action: 'subscribe', topic: 'orders' });
      await eventually(() => nodes.every((n) => n.clusterView().length === 3), 'three nodes to see each other');

      // From the HTTP API of A and from a client on B, each in its own order.
      for (let i = 0; i < 20; i++) assert.equal((await http(nodes[0]!, 'POST', '/api/publish', { topic: 'orders', message: { from: 'A', i } })).status, 200);
      const clientB = await connect(nodes[1]!);
      for (let i = 0; i < 20; i++) clientB.send({ action: 'publish', topic: 'orders', message: { from: 'B', i } });
      await clientB.request({ action: 'ping' });
      await nodes[0]!.publish('orders', 'end-A');
      await nodes[1]!.publish('orders', 'end-B');

      for (const s of subscribers) {
        // Each publisher's order is kept; the two publishers' streams may interleave differently on each node.
        const all: Array<{ from: string; i: number } | string> = [];
        while (!(all.includes('end-A') && all.includes('end-B'))) all.push((await s.next(20_000)).message);
        const fromA = all.filter((m) => typeof m === 'object' && m.from === 'A').map((m) => (m as { i: number }).i);
        const fromB = all.filter((m) => typeof m === 'object' && m.from === 'B').map((m) => (m as { i: number }).i);
        assert.deepEqual(fromA, Array.from({ length: 20 }, (_, i) => i), 'A: each once, in order');
        assert.deepEqual(fromB, Array.from({ length: 20 }, (_, i) => i), 'B: each once, in order');
      }
      await Promise.all(nodes.map((n) => n.close()));
    });

    it('once a client is told "subscribed", a publication from another node reaches it (30 fresh topics in a row)', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const [a, b] = await Promise.all([node(), node()]);
      const reader = await connect(b);
      for (let i = 0; i < 30; i++) {
        assert.equal((await reader.request({ action: 'subscribe', topic: `fresh-${i}` })).ok, true);
        await a.publish(`fresh-${i}`, i);
        assert.deepEqual(await reader.next(), { action: 'publish', topic: `fresh-${i}`, message: i });
      }
      await Promise.all([a.close(), b.close()]);
    });

    it('100 subscribers spread over 3 nodes × 1,000 messages: nothing lost', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const nodes = await Promise.all([node(), node(), node()]);
      const subscribers: TestClient[] = [];
      for (let i = 0; i < 100; i++) subscribers.push(await connect(nodes[i % 3]!));
      await Promise.all(subscribers.map((s) => s.request({ action: 'subscribe', topic: 'load' })));
      if (kind === 'redis') await eventually(async () => (await redisNumsub(server, `${prefix}load`)) === 3, 'all three nodes subscribed');
      else await eventually(async () => (await (server as NatsServer).subjects()).filter((s) => s === `${prefix}load`).length === 3, 'all three nodes subscribed');
      for (let n = 0; n < 1000; n++) await nodes[n % 3]!.publish('load', { n });
      await Promise.all(
        subscribers.map(async (s) => {
          const frames = await s.collect(1000, 30_000);
          const seen = frames.map((f) => f.message.n).sort((a: number, b: number) => a - b);
          assert.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => i));
        }),
      );
      await Promise.all(nodes.map((n) => n.close()));
    });

    it(`a raw ${kind === 'redis' ? 'PUBLISH' : 'nats pub'} from any client reaches WebSocket subscribers (JSON as JSON, text as a string)`, async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      rawTopics = ['channel']; // the seed's flow: topic `channel` is the broker's bare channel `channel`
      const herald = await node();
      const sub = await connect(herald);
      await sub.request({ action: 'subscribe', topic: 'channel' });
      if (kind === 'redis') {
        await eventually(async () => (await redisNumsub(server, 'channel')) === 1, 'the channel subscription');
        const php = new Redis(server.url);
        assert.equal(await php.publish('channel', 'data from PHP'), 1, 'one Redis subscriber per node');
        await php.publish('channel', '{"booked":"1673254205340:2199:32925:en00030"}');
        php.disconnect();
      } else {
        const nc = await natsConnect({ servers: server.url });
        await eventually(async () => (await (server as NatsServer).subjects()).includes('channel'), 'the subject subscription');
        // A plain NATS subscriber (an Lhttp node, `nats sub`) sees Herald's publications as the bare message.
        const seen: string[] = [];
        const plain = nc.subscribe('channel', {
          callback: (_err, msg) => {
            seen.push(msg.string());
          },
        });
        nc.publish('channel', 'data from PHP');
        nc.publish('channel', '{"booked":"1673254205340:2199:32925:en00030"}');
        await nc.flush();
        // The raw messages first reach the subscriber through the broker; Herald's own publication is
        // delivered on this node at once, so it is published only after they arrived.
        assert.deepEqual(await sub.next(), { action: 'publish', topic: 'channel', message: 'data from PHP' });
        assert.deepEqual(await sub.next(), { action: 'publish', topic: 'channel', message: { booked: '1673254205340:2199:32925:en00030' } });
        await herald.publish('channel', { from: 'herald' });
        await eventually(() => seen.length === 3, 'the plain subscriber to get three messages');
        assert.deepEqual(seen[2], '{"from":"herald"}');
        plain.unsubscribe();
        await nc.drain();
        assert.deepEqual(await sub.next(), { action: 'publish', topic: 'channel', message: { from: 'herald' } });
        await herald.close();
        return;
      }
      assert.deepEqual(await sub.next(), { action: 'publish', topic: 'channel', message: 'data from PHP' });
      assert.deepEqual(await sub.next(), { action: 'publish', topic: 'channel', message: { booked: '1673254205340:2199:32925:en00030' } });
      await herald.close();
    });

    it('carries LHTTP messages between nodes unchanged, and shares subjects with plain clients (an Lhttp node)', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      rawTopics = ['lroom']; // the Lhttp seed's subjects have no prefix
      const [a, b] = await Promise.all([node(), node()]);
      const sender = await connect(a, { path: '/' });
      const [lhttpReader, jsonReader] = await Promise.all([connect(b, { path: '/' }), connect(b)]);
      lhttpReader.send('LHTTP/1.0 chat\r\nsubscribe:lroom\r\n\r\n');
      await jsonReader.request({ action: 'subscribe', topic: 'lroom' });
      if (kind === 'redis') await eventually(async () => (await redisNumsub(server, 'lroom')) === 1, 'node B subscribed');
      else await eventually(async () => (await (server as NatsServer).subjects()).includes('lroom'), 'node B subscribed');
      const frame = 'LHTTP/1.0 chat\r\npublish:lroom\r\nnick:li\r\n\r\n你好';
      sender.send(frame);
      assert.equal(await lhttpReader.next(), frame);
      assert.deepEqual(await jsonReader.next(), { action: 'publish', topic: 'lroom', message: '你好', lhttp: { command: 'chat', headers: { publish: 'lroom', nick: 'li' } } });
      if (kind === 'nats') {
        // An Lhttp node on the same NATS server: it publishes LHTTP text on the subject and reads Herald's as they are.
        const lhttpNode = await natsConnect({ servers: server.url });
        const seen: string[] = [];
        lhttpNode.subscribe('lroom', {
          callback: (_err, msg) => {
            seen.push(msg.string());
          },
        });
        await lhttpNode.flush();
        const fromNode = 'LHTTP/1.0 chat\r\npublish:lroom\r\n\r\nfrom an lhttp node';
        lhttpNode.publish('lroom', fromNode);
        assert.equal(await lhttpReader.next(), fromNode);
        sender.send(frame);
        await eventually(() => seen.includes(frame), 'the Lhttp node to read Herald\'s LHTTP publication as it is');
        await lhttpNode.drain();
      }
      await Promise.all([a.close(), b.close()]);
    });

    it('holds one broker subscription per topic per node while local subscribers exist, and releases it after the last', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const [a, b] = await Promise.all([node(), node()]);
      const count = async (): Promise<number> =>
        kind === 'redis' ? redisNumsub(server, `${prefix}books`) : (await (server as NatsServer).subjects()).filter((s) => s === `${prefix}books`).length;
      const onA = await Promise.all([connect(a), connect(a), connect(a)]);
      const onB = await connect(b);
      for (const c of [...onA, onB]) await c.request({ action: 'subscribe', topic: 'books' });
      await eventually(async () => (await count()) === 2, 'one subscription per node (2)');
      await onB.request({ action: 'unsubscribe', topic: 'books' });
      await eventually(async () => (await count()) === 1, 'node B released it');
      await onA[0]!.request({ action: 'unsubscribe', topic: 'books' });
      await onA[1]!.close();
      assert.equal(await count(), 1, 'still held while one local subscriber remains');
      await onA[2]!.close();
      await eventually(async () => (await count()) === 0, 'node A released it');
      await Promise.all([a.close(), b.close()]);
    });

    it('pushes to a user connected on another node; /send answers 400 for a uid connected nowhere; every node sees the cluster', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const nodes = await Promise.all([node({ auth: { insecureUidLogin: true } }), node({ auth: { insecureUidLogin: true } }), node({ auth: { insecureUidLogin: true } })]);
      const [a, b, c] = nodes as [Herald, Herald, Herald];
      const onB = await connect(b);
      const onC = await connect(c);
      for (const [client, uid] of [[onB, 'u1'], [onC, 'u1']] as const) {
        client.send({ uid });
        await client.request({ action: 'ping' });
      }
      await eventually(() => internals(a).cluster.nodesHolding('u1').length === 2, 'node A to learn that u1 is connected on B and C');

      const sent = await http(a, 'POST', '/api/send', { uid: 'u1', message: { progress: 100 } });
      assert.deepEqual(sent.body, { ok: true, delivered: 0, nodes: 2 });
      for (const client of [onB, onC]) assert.deepEqual(await client.next(), { action: 'push', message: { progress: 100 } });

      assert.equal((await http(a, 'GET', '/send?uid=u1&message=Hello%20World')).status, 200);
      for (const client of [onB, onC]) assert.equal(await client.next(), 'Hello World');
      const nowhere = await http(a, 'GET', '/send?uid=ghost&message=x');
      assert.equal(nowhere.status, 400);
      assert.equal(nowhere.text, '', 'an empty body, as the push centre answers');
      assert.equal(nowhere.headers.get('x-herald-error'), 'client not found: ghost');

      await eventually(() => {
        const view = a.clusterView();
        return view.length === 3 && view.find((n) => n.id === b.nodeId)?.connections === 1;
      }, 'the cluster view to show every node and its connections');
      const cluster = await http(a, 'GET', '/api/cluster');
      assert.equal(cluster.body.nodes.length, 3);
      assert.equal(cluster.body.nodes.filter((n: { self: boolean }) => n.self).length, 1);
      assert.equal((await http(b, 'GET', '/api/status')).body.broker.state, 'ready');

      // When the user leaves B and C, A learns it and answers 400 again.
      await Promise.all([onB.close(), onC.close()]);
      await eventually(() => !a.isUserConnected('u1'), 'node A to learn that u1 left');
      assert.equal((await http(a, 'GET', '/send?uid=u1&message=x')).status, 400);
      await Promise.all(nodes.map((n) => n.close()));
    });

    it('starts while the broker is unreachable: serves, says not ready, and connects when the broker comes', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const late: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
      late.port = await freePort();
      const herald = await startHerald({ broker: kind, [kind]: { url: late.url, prefix }, cluster: { heartbeatInterval: 200 } });
      assert.notEqual(internals(herald).broker.state, 'ready');
      const notReady = await http(herald, 'GET', '/readyz');
      assert.equal(notReady.status, 503);
      assert.match(notReady.body.error.message, /broker is (connecting|down)/);
      assert.equal((await http(herald, 'GET', '/healthz')).status, 200, 'alive all the same');
      assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'x', message: 1 })).status, 503);
      try {
        await late.start();
        await waitForBroker(herald, 'ready');
        assert.equal((await http(herald, 'GET', '/readyz')).status, 200);
        assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'x', message: 1 })).status, 200);
      } finally {
        await herald.close();
        await late.stop();
      }
    });

    it('survives the broker going away: 503 and not-ready during the outage, local delivery kept, everything resumes after', async (t) => {
      if (skip) return t.skip(skip);
      freshPrefix();
      const [a, b] = await Promise.all([node(), node()]);
      const [subA, subB] = await Promise.all([connect(a), connect(b)]);
      for (const s of [subA, subB]) await s.request({ action: 'subscribe', topic: 'news' });
      await a.publish('news', 'before');
      assert.equal((await subB.next()).message, 'before');
      assert.equal((await subA.next()).message, 'before');

      await server.stop();
      await Promise.all([waitForBroker(a, 'down'), waitForBroker(b, 'down')]);
      const refused = await http(a, 'POST', '/api/publish', { topic: 'news', message: 'during' });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error.code, 'unavailable');
      assert.match(refused.body.error.message, /delivered to 1 connection\(s\) on this node only/);
      assert.equal((await subA.next()).message, 'during', 'local delivery keeps working');
      assert.equal((await http(a, 'GET', '/readyz')).status, 503);
      const clientReply = await subA.request({ action: 'publish', topic: 'news', message: 'client during' });
      assert.equal(clientReply.error.code, 'unavailable', 'the client is told the truth');
      assert.equal((await subA.next()).message, 'client during');

      await server.start();
      await Promise.all([waitForBroker(a, 'ready'), waitForBroker(b, 'ready')]);
      assert.equal((await http(a, 'GET', '/readyz')).status, 200);
      // The topic subscriptions came back by themselves: B receives A's publications again.
      await eventually(async () => {
        await a.publish('news', 'probe');
        return subB.received.some((f: any) => f.message === 'probe');
      }, 'delivery across nodes to resume');
      await a.publish('news', 'after');
      const afterFrames = await until(subB, 'after');
      assert.ok(afterFrames.every((m) => m === 'probe' || m === undefined), 'nothing from the outage leaked across');
      // B's link to the broker was interrupted: its subscriber on a topic without history is told so.
      assert.ok(
        subB.received.some((f: any) => f.action === 'gap' && f.topic === 'news' && f.reason === 'interrupted'),
        'a gap frame tells the subscriber on B that it may have missed publications',
      );
      assert.equal(subB.received.filter((f: any) => f.message === 'during' || f.message === 'client during').length, 0);
      await Promise.all([a.close(), b.close()]);
    });
  });
}

async function redisNumsub(server: ServerProcess, channel: string): Promise<number> {
  const redis = new Redis(server.url);
  try {
    const reply = (await redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
    return Number(reply[1]);
  } finally {
    redis.disconnect();
  }
}

describe('redis broker through Sentinel', () => {
  const skip = requireBinary('redis-server');
  const master = new RedisServer();
  const sentinel = new RedisSentinel(master);
  before(async () => {
    if (skip) return;
    await master.start();
    await sentinel.start();
  });
  after(async () => {
    await sentinel.stop();
    await master.stop();
  });

  it('finds the master through the sentinels and carries publications between nodes', async (t) => {
    if (skip) return t.skip(skip);
    const options = {
      broker: 'redis' as const,
      // The URL's host is not used with sentinels: a closed port proves the master came from the sentinel.
      redis: { url: 'redis://127.0.0.1:1', sentinels: [`127.0.0.1:${sentinel.port}`], sentinelName: 'mymaster', prefix: 'sentinel:' },
    };
    const [a, b] = await Promise.all([startHerald(options), startHerald(options)]);
    await Promise.all([waitForBroker(a, 'ready'), waitForBroker(b, 'ready')]);
    const sub = await connect(b);
    await sub.request({ action: 'subscribe', topic: 'watched' });
    await eventually(async () => (await redisNumsub(master, 'sentinel:watched')) === 1, 'the subscription on the master');
    await a.publish('watched', 'via sentinel');
    assert.deepEqual(await sub.next(), { action: 'publish', topic: 'watched', message: 'via sentinel' });
    await Promise.all([a.close(), b.close()]);
  });
});
