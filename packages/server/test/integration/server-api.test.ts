import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldClient, type Subscription } from '@herald/client';
import WebSocket from 'ws';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, http, startHerald, wsUrl, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { eventually, NatsServer, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';
import { decodeEventId } from '../../src/protocols/sse/event-id.js';
import { openSse } from '../helpers/sse.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** A user's tab: a JSON connection logged in as `uid`, and its connection id (the login reply's `conn`). */
interface Tab {
  client: TestClient;
  conn: string;
}

async function tab(herald: Herald, uid: string): Promise<Tab> {
  const client = await connect(herald);
  const login = await client.request({ action: 'login', token: await signToken({ sub: uid }) });
  assert.equal(login.ok, true);
  assert.equal(typeof login.conn, 'string', 'the login reply names the connection');
  return { client, conn: login.conn as string };
}

/** The value of a counter of /metrics. */
async function counter(herald: Herald, name: string): Promise<number> {
  const text = (await http(herald, 'GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is in /metrics`);
  return Number(line.split(' ')[1]);
}

for (const kind of ['redis', 'nats'] as const) {
  describe(`the server API on users' connections, on several nodes (${kind})`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
    let prefix = '';
    let tests = 0;

    before(async () => {
      if (!skip) await server.start();
    });
    after(() => server.stop());

    async function node(options: HeraldOptions = {}): Promise<Herald> {
      const herald = await startHerald({
        broker: kind,
        [kind]: { url: server.url, prefix },
        cluster: { heartbeatInterval: 200, requestTimeout: 3000 },
        auth: { jwt: { secret: SECRET } },
        history: [{ pattern: 'h:*', size: 100 }],
        presence: [{ pattern: 'room:*' }],
        limits: { maxConnectionsPerIp: 5000, connectionsPerSecondPerIp: 5000 },
        ...options,
      });
      await brokerReady(herald);
      return herald;
    }

    /** Nodes that know each other and which of them hold `uid` (the registry's replicated view): no call misses a node. */
    async function known(nodes: Herald[], uid: string, holders: Herald[]): Promise<void> {
      await eventually(
        () => nodes.every((n) => holders.every((h) => h === n || internals(n).cluster.nodesHolding(uid).includes(h.nodeId))),
        `every node to know that ${holders.length} node(s) hold ${uid}`,
      );
    }

    const fresh = (): void => {
      prefix = kind === 'redis' ? `sa${++tests}:` : `sa${++tests}.`;
    };

    it('subscribes a user with tabs on two nodes to a topic and unsubscribes them, from either node, each tab told', async (t) => {
      if (skip) return t.skip(skip);
      fresh();
      const [a, b] = await Promise.all([node(), node()]);
      const tabs = [await tab(a, 'alice'), await tab(a, 'alice'), await tab(b, 'alice')];
      const bob = await tab(b, 'bob');
      await known([a, b], 'alice', [a, b]);

      // Over HTTP on node A: the tab on B is subscribed too, through B.
      const subscribed = await http(a, 'POST', '/api/users/subscribe', { uid: 'alice', topic: 'room:1' });
      assert.deepEqual(subscribed.body, { ok: true, connections: 3, nodes: 1 });
      for (const { client } of tabs) assert.deepEqual(await client.next(), { action: 'subscribed', topic: 'room:1' });
      // The same subscription path as a client's: the broker carries the topic, presence counts the tabs.
      await eventually(() => a.presence('room:1').connections === 3 && b.presence('room:1').connections === 3, 'presence of the three tabs on both nodes');
      await b.publish('room:1', 'hello');
      for (const { client } of tabs) assert.deepEqual(await client.next(), { action: 'publish', topic: 'room:1', message: 'hello' });
      await b.send('bob', 'marker');
      assert.deepEqual(await bob.client.next(), { action: 'push', message: 'marker' }, 'another user is not subscribed');

      if (kind === 'redis') {
        // A topic with history in Redis: each tab is told where it stands, and the publications after it follow.
        const first = await a.publish('h:feed', 1);
        assert.deepEqual(await b.subscribeUser('alice', ['h:feed']), { connections: 3, nodes: 1 });
        for (const { client } of tabs) assert.deepEqual(await client.next(), { action: 'subscribed', topic: 'h:feed', offset: first.offset, epoch: first.epoch });
        await a.publish('h:feed', 2);
        for (const { client } of tabs) assert.equal((await client.next()).offset, first.offset! + 1);
      }

      // Unsubscribed through the library on node B: told why, and nothing more arrives.
      assert.deepEqual(await b.unsubscribeUser('alice', 'room:1', { reason: 'kicked' }), { connections: 3, nodes: 1 });
      for (const { client } of tabs) assert.deepEqual(await client.next(), { action: 'unsubscribed', topic: 'room:1', reason: 'kicked' });
      await a.publish('room:1', 'after');
      await a.send('alice', 'marker');
      for (const { client } of tabs) assert.deepEqual(await client.next(), { action: 'push', message: 'marker' }, 'the publication after the unsubscribe did not come');
      await eventually(() => a.presence('room:1').connections === 0, 'presence emptied');
      // Unsubscribing again finds nothing to do.
      assert.deepEqual((await http(b, 'POST', '/api/users/unsubscribe', { uid: 'alice', topics: ['room:1'] })).body, { ok: true, connections: 0, nodes: 1 });
      await Promise.all([a.close(), b.close()]);
    });

    it('a persistent subscription reaches the user\'s later connections on any node, a node started later included, until unsubscribed', async (t) => {
      if (skip) return t.skip(skip);
      fresh();
      const [a, b] = await Promise.all([node(), node()]);
      const first = await tab(a, 'alice');
      await known([a, b], 'alice', [a]);
      assert.deepEqual((await http(b, 'POST', '/api/users/subscribe', { uid: 'alice', topic: 'news', persistent: true })).body, { ok: true, connections: 1, nodes: 1 });
      assert.deepEqual(await first.client.next(), { action: 'subscribed', topic: 'news' });
      await eventually(() => internals(a).persistentTopics('alice').includes('news'), 'node A to keep the topic');

      // A new tab on B logs in: subscribed as it gets its identity. One with ?token= on A: as it opens.
      const later = await tab(b, 'alice');
      assert.deepEqual(await later.client.next(), { action: 'subscribed', topic: 'news' });
      const byUrl = await connect(a, { path: `/ws?token=${await signToken({ sub: 'alice' })}` });
      assert.deepEqual(await byUrl.next(), { action: 'subscribed', topic: 'news' });
      // A node that joins later asks the others for the persistent topics.
      const c = await node();
      await eventually(() => internals(c).persistentTopics('alice').includes('news'), 'node C to learn the persistent topic');
      const onC = await tab(c, 'alice');
      assert.deepEqual(await onC.client.next(), { action: 'subscribed', topic: 'news' });
      await known([a, b, c], 'alice', [a, b, c]);
      await a.publish('news', 'for all');
      for (const client of [first.client, later.client, byUrl, onC.client]) assert.deepEqual(await client.next(), { action: 'publish', topic: 'news', message: 'for all' });

      // Unsubscribed from node C: every tab leaves, and no new tab is subscribed any more.
      assert.deepEqual(await c.unsubscribeUser('alice', 'news'), { connections: 4, nodes: 2 });
      for (const client of [first.client, later.client, byUrl, onC.client]) assert.deepEqual(await client.next(), { action: 'unsubscribed', topic: 'news', reason: 'server' });
      await eventually(() => [a, b, c].every((n) => internals(n).persistentTopics('alice').length === 0), 'every node to forget the topic');
      const last = await tab(b, 'alice');
      await b.send('alice', 'marker');
      assert.deepEqual(await last.client.next(), { action: 'push', message: 'marker' }, 'no subscription for a tab opened after the unsubscribe');
      await Promise.all([a.close(), b.close(), c.close()]);
    });

    it('exclude: the sender does not get its own message, whichever node publishes, with and without history', async (t) => {
      if (skip) return t.skip(skip);
      fresh();
      const [a, b] = await Promise.all([node(), node()]);
      const sender = await tab(a, 'alice');
      const neighbour = await tab(a, 'carol');
      const remote = await tab(b, 'bob');
      for (const { client } of [sender, neighbour, remote]) assert.equal((await client.request({ action: 'subscribe', topics: ['chat', 'h:chat'] })).ok, true);
      await eventually(async () => (await http(b, 'GET', '/api/cluster')).body.nodes.length === 2, 'the nodes to see each other');

      for (const topic of ['chat', 'h:chat']) {
        // From the node that does not hold the sender (HTTP) and from the one that does (library); then a message for all, from A
        // as the last one (the same path as the one before it: if the sender were to get that one, it would come first).
        assert.equal((await http(b, 'POST', '/api/publish', { topic, message: 'from B', exclude: sender.conn })).status, 200);
        for (const { client } of [neighbour, remote]) assert.equal((await client.next()).message, 'from B', `${topic}: the others get it`);
        await a.publish(topic, 'from A', 'library', { exclude: sender.conn });
        for (const { client } of [neighbour, remote]) assert.equal((await client.next()).message, 'from A', `${topic}: the others get it`);
        await a.publish(topic, 'for all');
        for (const { client } of [neighbour, remote]) assert.equal((await client.next()).message, 'for all');
        const next = await sender.client.next();
        assert.deepEqual([next.topic, next.message], [topic, 'for all'], `${topic}: the sender got neither of its own`);
      }
      // A stored publication is not filtered: read back from history, it is there.
      if (kind === 'redis') assert.deepEqual((await b.historyOf('h:chat')).publications.map((p) => p.message), ['from B', 'from A', 'for all']);
      const bad = await http(a, 'POST', '/api/publish', { topic: 'chat', message: 1, exclude: '' });
      assert.equal(bad.status, 400);
      await Promise.all([a.close(), b.close()]);
    });

    it('a multi-topic publish is encoded once, each topic gets its own publication (and offset), and the exclusion holds on every node', async (t) => {
      if (skip) return t.skip(skip);
      fresh();
      const [a, b] = await Promise.all([node(), node()]);
      const sender = await tab(b, 'alice');
      const readers = [await tab(a, 'bob'), await tab(b, 'carol')];
      for (const { client } of [sender, ...readers]) await client.request({ action: 'subscribe', topics: ['t1', 't2', 'h:t3'] });
      await eventually(async () => (await http(a, 'GET', '/api/cluster')).body.nodes.length === 2, 'the nodes to see each other');
      await a.publish('h:t3', 'earlier');
      for (const { client } of [sender, ...readers]) await client.next();
      const before = await counter(a, 'herald_messages_encoded_total');
      const answer = await http(a, 'POST', '/api/publish', { topics: ['t1', 't2', 'h:t3'], message: { big: 'x'.repeat(1000) }, exclude: sender.conn });
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { ok: true, count: 3, offsets: { 'h:t3': 2 } });
      assert.equal((await counter(a, 'herald_messages_encoded_total')) - before, 1, 'one message, serialised once for three topics');
      for (const [index, { client }] of readers.entries()) {
        const frames = [await client.next(), await client.next(), await client.next()];
        assert.deepEqual(frames.map((f) => f.topic).sort(), ['h:t3', 't1', 't2']);
        assert.ok(frames.every((f) => f.message.big.length === 1000));
        // A memory history (NATS) is the publishing node's: its offsets reach that node's subscribers only.
        if (kind === 'redis' || index === 0) assert.equal(frames.find((f) => f.topic === 'h:t3').offset, 2);
      }
      // From A, as the broadcast: were the sender to get any of the three, it would come before.
      await a.publish('t1', 'marker');
      assert.equal((await sender.client.next()).message, 'marker', 'the excluded sender got none of the three');
      // The library's broadcast: the same, and one result per topic, in order (memory history on NATS: B's own offsets).
      const results = await b.broadcast(['t2', 'h:t3'], 'lib');
      assert.deepEqual(results.map((r) => r.offset), [undefined, kind === 'redis' ? 3 : 1]);
      await assert.rejects(b.broadcast(['t1', 'a b'], 1), /topic a b: /);
      await Promise.all([a.close(), b.close()]);
    });

    it('lists a user\'s connections on every node, and disconnects them all with a reason', async (t) => {
      if (skip) return t.skip(skip);
      fresh();
      const [a, b] = await Promise.all([node(), node()]);
      const ws = await tab(a, 'alice');
      await ws.client.request({ action: 'subscribe', topic: 'room:9' });
      const token = await signToken({ sub: 'alice' });
      const sse = await openSse(b, ['h:x'], { query: { token } });
      assert.equal((await sse.next()).event, 'subscribe');
      const lhttp = await connect(b, { path: `/?token=${token}`, protocols: 'lhttp' });
      // Its token is checked once the socket is open: it is alice's a moment later.
      await eventually(() => b.userConnections('alice') === 2, 'the LHTTP connection to be identified');
      await known([a, b], 'alice', [a, b]);

      const listed = await http(b, 'GET', '/api/users/connections?uid=alice');
      assert.equal(listed.status, 200);
      const connections = listed.body.connections as Array<Record<string, unknown>>;
      assert.deepEqual(
        connections.map((c) => [c.node, c.protocol, c.transport, c.topics]),
        [
          [a.nodeId, 'json', 'websocket', ['room:9']],
          [b.nodeId, 'sse', 'sse', ['h:x']],
          [b.nodeId, 'lhttp', 'websocket', []],
        ],
        'oldest first, each with its node, protocol, transport and topics',
      );
      assert.equal(connections[0]!.id, ws.conn);
      assert.ok(connections.every((c) => c.uid === 'alice' && typeof c.connectedAt === 'number'));
      assert.deepEqual(await a.listConnections('nobody'), []);

      // A single-topic SSE stream cannot take another topic (its ids hold one topic's position): left out.
      assert.deepEqual(await a.subscribeUser('alice', 'room:9b'), { connections: 2, nodes: 1 });
      assert.deepEqual((await b.listConnections('alice')).map((c) => c.topics), [['room:9', 'room:9b'], ['h:x'], ['room:9b']]);

      const answer = await http(b, 'POST', '/api/disconnect', { uid: 'alice', reason: 'account suspended' });
      assert.deepEqual(answer.body, { ok: true, closed: 3 }, 'closed on both nodes');
      assert.deepEqual(await ws.client.closed, { code: 4504, reason: 'account suspended' });
      assert.deepEqual(await lhttp.closed, { code: 4504, reason: 'account suspended' });
      const close = await sse.next();
      assert.deepEqual([close.event, close.json], ['close', { code: 4504, reason: 'account suspended' }]);
      const bad = await http(a, 'POST', '/api/disconnect', { uid: 'alice', code: 1000 });
      assert.equal(bad.status, 400);
      await Promise.all([a.close(), b.close()]);
    });

    it('the SDK surfaces server-side subscriptions as events, keeps a persistent one across a reconnect, and ends one the server ends', async (t) => {
      if (skip) return t.skip(skip);
      fresh();
      const [a, b] = await Promise.all([node(), node()]);
      const client = new HeraldClient({ url: wsUrl(b), WebSocket, token: await signToken({ sub: 'dana' }), minReconnectDelay: 20, maxReconnectDelay: 50 });
      const connected = deadline(new Promise((resolve) => client.once('connected', resolve)), 5000, 'connected');
      client.connect();
      await connected;
      assert.equal(typeof client.connectionId, 'string');
      await known([a, b], 'dana', [b]);
      assert.deepEqual((await a.listConnections('dana')).map((c) => c.id), [client.connectionId]);

      // With history in Redis, the subscription knows its position (a memory history on NATS is each node's own).
      const topic = kind === 'redis' ? 'h:tasks' : 'tasks';
      const made = deadline(new Promise<Subscription>((resolve) => client.once('serverSubscribed', ({ subscription }) => resolve(subscription))), 5000, 'serverSubscribed');
      await a.subscribeUser('dana', topic, { persistent: true });
      const subscription = await made;
      assert.equal(subscription.topic, topic);
      assert.equal(subscription.server, true);
      const messages: unknown[] = [];
      subscription.on('message', ({ message }) => messages.push(message));
      await a.publish(topic, { progress: 10 });
      await eventually(() => messages.length === 1, 'the first message');

      // The connection drops: the server subscribes the next one (persistent), the same subscription is confirmed again.
      const again = deadline(new Promise((resolve) => subscription.once('subscribed', resolve)), 10_000, 'subscribed again');
      for (const session of internals(b).sessions.values()) internals(b).closeSession(session, 4000, 'reconnect');
      const position = kind === 'redis' ? { position: { offset: 1, epoch: (await a.historyOf(topic)).epoch } } : {};
      assert.deepEqual(await again, { topic, resubscribed: true, ...position });
      await known([a, b], 'dana', [b]);
      await a.publish(topic, { progress: 20 });
      await eventually(() => messages.length === 2, 'a message after the reconnect');

      const ended = deadline(new Promise((resolve) => subscription.once('unsubscribed', resolve)), 5000, 'unsubscribed');
      await a.unsubscribeUser('dana', topic, { reason: 'task done' });
      assert.deepEqual(await ended, { topic, reason: 'server', detail: 'task done' });
      assert.equal(client.subscription(topic), undefined);
      assert.deepEqual(messages, [{ progress: 10 }, { progress: 20 }]);
      client.close();
      await Promise.all([a.close(), b.close()]);
    });
  });
}

describe('the server API on one node (memory broker)', () => {
  it('an SSE stream of several topics takes a server-side subscription: event subscribed, then the topic in its event ids', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } }, history: [{ pattern: 'h:*' }] });
    const token = await signToken({ sub: 'sam' });
    const stream = await openSse(herald, ['a', 'b'], { query: { token } });
    assert.deepEqual([(await stream.next()).event, (await stream.next()).event], ['subscribe', 'subscribe']);
    const published = await herald.publish('h:extra', 'before');
    assert.deepEqual(await herald.subscribeUser('sam', 'h:extra'), { connections: 1, nodes: 0 });
    const told = await stream.next();
    assert.deepEqual([told.event, told.json], ['subscribed', { action: 'subscribed', topic: 'h:extra', offset: published.offset, epoch: published.epoch }]);
    await herald.publish('h:extra', 'after');
    const event = await stream.next();
    assert.deepEqual([event.event, event.json.message], ['message', 'after']);
    const positions = decodeEventId(event.lastEventId, ['h:extra']);
    assert.ok(positions instanceof Map, `an id that names its topics: ${event.lastEventId}`);
    assert.deepEqual(positions.get('h:extra'), { offset: published.offset! + 1, epoch: published.epoch }, 'a Last-Event-ID would hold the new topic\'s position');
    assert.deepEqual(await herald.unsubscribeUser('sam', 'h:extra'), { connections: 1, nodes: 0 });
    const ended = await stream.next();
    assert.deepEqual([ended.event, ended.json], ['unsubscribed', { action: 'unsubscribed', topic: 'h:extra', reason: 'server' }]);
    await herald.close();
  });

  it('refuses bad calls with clear errors and harms no connection', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } }, limits: { maxTopicsPerConnection: 3 } });
    const alice = await tab(herald, 'alice');
    const cases: Array<[string, unknown, number, string]> = [
      ['/api/users/subscribe', { uid: 'alice' }, 400, 'bad_request'],
      ['/api/users/subscribe', { uid: 'alice', topic: 'a b' }, 400, 'invalid_topic'],
      ['/api/users/subscribe', { uid: '', topic: 'a' }, 400, 'bad_request'],
      ['/api/users/subscribe', { uid: 'alice', topics: ['a', 'b', 'c', 'd'] }, 400, 'too_many_topics'],
      ['/api/users/subscribe', { uid: 'alice', topic: 'a', persistant: true }, 400, 'bad_request'],
      ['/api/users/unsubscribe', { uid: 'alice', topic: 'a', reason: 'x'.repeat(101) }, 400, 'bad_request'],
      ['/api/disconnect', { uid: 'alice', code: 5000 }, 400, 'bad_request'],
    ];
    for (const [path, body, status, code] of cases) {
      const answer = await http(herald, 'POST', path, body);
      assert.deepEqual([answer.status, answer.body.error?.code], [status, code], `${path} ${JSON.stringify(body)}`);
    }
    assert.equal((await http(herald, 'GET', '/api/users/connections')).status, 400);
    await assert.rejects(herald.subscribeUser('alice', ['a', 'b'], { persistent: true }).then(() => herald.subscribeUser('alice', ['c', 'd'], { persistent: true })), /too_many_topics|over limits.maxTopicsPerConnection/);
    // The connection is untouched and still answers; the first persistent call subscribed it.
    assert.deepEqual([await alice.client.next(), await alice.client.next()], [{ action: 'subscribed', topic: 'a' }, { action: 'subscribed', topic: 'b' }]);
    assert.deepEqual(await alice.client.request({ action: 'ping' }), { id: 2, action: 'ping', ok: true });
    assert.deepEqual(await herald.disconnectUser('alice', { code: 4000, reason: 'come back' }), { connections: 1, nodes: 0 });
    assert.deepEqual(await alice.client.closed, { code: 4000, reason: 'come back' });
    await herald.close();
  });
});
