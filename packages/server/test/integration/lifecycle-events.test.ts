import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { rendezvousOwner } from '../../src/events/transitions.js';
import { ConfigError, type Herald, type HeraldOptions } from '../../src/index.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { parsePrometheus, value } from '../helpers/metrics.js';
import { eventually, NatsServer, RedisServer, requireBinary } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { WebhookReceiver } from '../helpers/webhooks.js';

const HOOK_SECRET = `whsec_${Buffer.from('a webhook secret of 32 bytes....').toString('base64')}`;
type Event = Record<string, any>;

/** Connects `uid` to `herald` (a signed token) and subscribes it to `topics`. */
async function member(herald: Herald, uid: string, ...topics: string[]): Promise<TestClient> {
  const client = await connect(herald, { path: `/ws?token=${await signToken({ sub: uid, info: { name: uid } })}` });
  for (const topic of topics) assert.equal((await client.request({ action: 'subscribe', topic })).ok, true);
  return client;
}

/** Resolves once every node is ready and counted as a candidate by every node. */
async function allReady(nodes: Herald[]): Promise<void> {
  await eventually(() => nodes.every((node) => internals(node).cluster.candidates().length === nodes.length), 'every node ready on every node', 15_000);
}

const is = (kind: string, key: Record<string, unknown> = {}) => (event: Event) => event.kind === kind && Object.entries(key).every(([k, v]) => event[k] === v);

/**
 * Makes sure that every event each node emitted before now has reached the
 * receiver: a marker user whose user_online each node owns (rendezvous over
 * the current candidates) connects; a node's webhook queue delivers in order,
 * so once its marker arrived, everything it emitted before did.
 */
async function flush(nodes: Herald[], receiver: WebhookReceiver, round: string): Promise<void> {
  const candidates = internals(nodes[0]!).cluster.candidates();
  const clients: TestClient[] = [];
  const markers: string[] = [];
  for (const node of nodes) {
    let i = 0;
    while (rendezvousOwner(candidates, `u\nmarker-${round}-${i}`) !== node.nodeId) i++;
    markers.push(`marker-${round}-${i}`);
    clients.push(await member(node, `marker-${round}-${i}`));
  }
  await receiver.until(() => markers.every((uid) => receiver.of(is('user_online', { uid })).length > 0), `the markers of round ${round}`);
  for (const uid of markers) assert.equal(receiver.of(is('user_online', { uid }))[0]!.node, nodes[markers.indexOf(uid)]!.nodeId, 'each marker from its owner');
  await Promise.all(clients.map((client) => client.close()));
}

for (const kind of ['redis', 'nats'] as const) {
  for (const size of [2, 3]) {
    describe(`lifecycle events, ${size} nodes (${kind} broker)`, () => {
      const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
      const server = kind === 'redis' ? new RedisServer() : new NatsServer();
      const receiver = new WebhookReceiver(HOOK_SECRET);
      before(async () => {
        if (skip) return;
        await Promise.all([server.start(), receiver.start()]);
      });
      after(() => Promise.all([server.stop(), receiver.stop()]));

      it('occupied/vacated, online/offline and member added/removed exactly once per cluster transition, the last holder on a crashed node included', async (t) => {
        if (skip) return t.skip(skip);
        const prefix = kind === 'redis' ? `ev${size}:` : `ev${size}.`;
        const options: HeraldOptions = {
          broker: kind,
          [kind]: { url: server.url, prefix },
          cluster: { heartbeatInterval: 150 },
          presence: [{ pattern: 'room:*' }],
          auth: { jwt: { secret: SECRET } },
          events: { topics: ['room:*'], webhooks: [{ url: receiver.url, secret: HOOK_SECRET, batchWindow: 20, retryDelay: 50 }] },
        };
        const nodes = await Promise.all(Array.from({ length: size }, () => startHerald(options)));
        const [first, second, last] = [nodes[0]!, nodes[1]!, nodes[size - 1]!];
        await allReady(nodes);

        // alice on the first and the last node, bob on the second, carol on the last only.
        const alice1 = await member(first, 'alice', 'room:1');
        const bob = await member(second, 'bob', 'room:1');
        const alice2 = await member(last, 'alice', 'room:1');
        const carol = await member(last, 'carol', 'room:2');
        await flush(nodes, receiver, 'up');
        const once = (kind: string, key: Record<string, unknown>) => assert.equal(receiver.of(is(kind, key)).length, 1, `${kind} ${JSON.stringify(key)} once`);
        for (const uid of ['alice', 'bob', 'carol']) once('user_online', { uid });
        for (const topic of ['room:1', 'room:2']) once('topic_occupied', { topic });
        for (const [topic, uid] of [['room:1', 'alice'], ['room:1', 'bob'], ['room:2', 'carol']]) once('member_added', { topic, uid });
        assert.deepEqual(receiver.of(is('member_added', { uid: 'alice' }))[0]!.info, { name: 'alice' });
        // join: per connection, from the node that holds it.
        const joins = receiver.of(is('join'));
        assert.deepEqual(joins.map((e) => `${e.uid}@${e.node}`).sort(), [`alice@${first.nodeId}`, `alice@${last.nodeId}`, `bob@${second.nodeId}`, `carol@${last.nodeId}`].sort());

        // alice leaves the first node (still on the last), bob leaves.
        await Promise.all([alice1.close(), bob.close()]);
        await flush(nodes, receiver, 'left');
        once('user_offline', { uid: 'bob' });
        once('member_removed', { topic: 'room:1', uid: 'bob' });
        assert.equal(receiver.of(is('user_offline', { uid: 'alice' })).length, 0, 'alice is still on the last node');
        assert.equal(receiver.of(is('member_removed', { uid: 'alice' })).length, 0);
        assert.equal(receiver.of(is('topic_vacated')).length, 0);
        const closed = receiver.of(is('connection_closed', { uid: 'bob' }));
        assert.equal(closed.length, 1);
        assert.equal(closed[0]!.node, second.nodeId);
        assert.equal(closed[0]!.code, 1005, 'the close code the client sent (none: 1005)');

        // The last node dies without a goodbye (its broker connection cut: no heartbeat, no delta): it held
        // alice's last connection, room:1's last subscriber and everything of carol and room:2.
        await internals(last).broker.close();
        const survivors = nodes.slice(0, -1);
        await receiver.until(
          () => receiver.of(is('user_offline', { uid: 'alice' })).length > 0 && receiver.of(is('user_offline', { uid: 'carol' })).length > 0 && receiver.of(is('topic_vacated')).length >= 2 && receiver.of(is('member_removed')).length >= 3,
          'the departures the crash caused',
        );
        await eventually(() => survivors.every((node) => internals(node).cluster.candidates().length === survivors.length), 'the survivors agree on the candidates');
        await flush(survivors, receiver, 'crashed');
        for (const uid of ['alice', 'carol']) once('user_offline', { uid });
        for (const topic of ['room:1', 'room:2']) once('topic_vacated', { topic });
        for (const [topic, uid] of [['room:1', 'alice'], ['room:2', 'carol']]) once('member_removed', { topic, uid });
        const crashEvents = [...receiver.of(is('user_offline', { uid: 'alice' })), ...receiver.of(is('topic_vacated'))];
        for (const event of crashEvents) assert.ok(survivors.some((node) => node.nodeId === event.node), `${event.kind} from a surviving node`);
        assert.equal(receiver.duplicates, 0, 'no request was delivered twice');
        assert.ok(receiver.requests.every((request) => request.verified !== null), 'every request was signed with the secret');
        for (const client of [alice2, carol]) client.ws.terminate();
        await Promise.all(nodes.map((node) => node.close()));
      });
    });
  }
}

describe('lifecycle events at a cold start and a quick restart (redis broker)', () => {
  const skip = requireBinary('redis-server');
  const server = new RedisServer();
  const receiver = new WebhookReceiver(HOOK_SECRET);
  before(async () => {
    if (skip) return;
    await Promise.all([server.start(), receiver.start()]);
  });
  after(() => Promise.all([server.stop(), receiver.stop()]));
  const options = (prefix: string, heartbeatInterval: number, nodeId?: string): HeraldOptions => ({
    broker: 'redis',
    redis: { url: server.url, prefix },
    ...(nodeId ? { nodeId } : {}),
    cluster: { heartbeatInterval },
    presence: [{ pattern: 'room:*' }],
    auth: { jwt: { secret: SECRET } },
    events: { topics: ['room:*'], webhooks: [{ url: receiver.url, secret: HOOK_SECRET, batchWindow: 20, retryDelay: 50 }] },
  });

  /** Connects users before any node is ready, waits for readiness, checks the catch-up, then the leaves pairing with it. */
  async function coldStart(nodes: Herald[], tag: string): Promise<void> {
    const uid = (i: number) => `${tag}-u${i}`;
    const clients: TestClient[] = [];
    // u0 on the first node, u1 on the last, u2 on every node; each in its room and in room:shared.
    for (let i = 0; i < 3; i++) {
      for (const [n, node] of nodes.entries()) {
        if (i === 0 && n > 0) continue;
        if (i === 1 && n < nodes.length - 1) continue;
        clients.push(await member(node, uid(i), `room:${tag}-${i}`, `room:${tag}-shared`));
      }
    }
    assert.deepEqual(nodes.map((node) => internals(node).cluster.candidates().length), nodes.map(() => 0), 'the users connected before any node was ready');
    await allReady(nodes);
    await flush(nodes, receiver, `${tag}-up`);
    const ours = (event: Event) => (event.uid ?? event.topic ?? '').startsWith(tag) || (event.topic ?? '').startsWith(`room:${tag}`);
    const once = (kind: string, key: Record<string, unknown>, catchUp?: true) => {
      const found = receiver.of((event) => is(kind, key)(event) && ours(event));
      assert.equal(found.length, 1, `${kind} ${JSON.stringify(key)} once`);
      assert.equal(found[0]!.catchUp, catchUp, `${kind} ${JSON.stringify(key)}: catchUp ${catchUp}`);
    };
    for (let i = 0; i < 3; i++) {
      once('user_online', { uid: uid(i) }, true);
      once('topic_occupied', { topic: `room:${tag}-${i}` }, true);
      once('member_added', { topic: `room:${tag}-${i}`, uid: uid(i) }, true);
      once('member_added', { topic: `room:${tag}-shared`, uid: uid(i) }, true);
    }
    once('topic_occupied', { topic: `room:${tag}-shared` }, true);
    await Promise.all(clients.map((client) => client.close()));
    await flush(nodes, receiver, `${tag}-down`);
    for (let i = 0; i < 3; i++) {
      once('user_offline', { uid: uid(i) });
      once('topic_vacated', { topic: `room:${tag}-${i}` });
      once('member_removed', { topic: `room:${tag}-${i}`, uid: uid(i) });
      once('member_removed', { topic: `room:${tag}-shared`, uid: uid(i) });
    }
    once('topic_vacated', { topic: `room:${tag}-shared` });
    assert.equal(receiver.duplicates, 0);
    await Promise.all(nodes.map((node) => node.close()));
  }

  it('two nodes started together, users connected before either is ready: each present user, topic and member once (catchUp) after readiness, and the leaves pair with them', async (t) => {
    if (skip) return t.skip(skip);
    const first = await startHerald(options('cold2:', 1000));
    const second = await startHerald(options('cold2:', 1000));
    await coldStart([first, second], 'c2');
  });

  it('a lone node (redis broker), users connected before it is ready: the same', async (t) => {
    if (skip) return t.skip(skip);
    await coldStart([await startHerald(options('cold1:', 1000))], 'c1');
  });

  it('a node restarted under the same node id before the others forget it: every vacated, offline and member_removed of what it held arrives once, from a survivor', async (t) => {
    if (skip) return t.skip(skip);
    const nodes = [await startHerald(options('inc:', 400, 'n-a')), await startHerald(options('inc:', 400, 'n-b')), await startHerald(options('inc:', 400, 'n-c'))];
    await allReady(nodes);
    const victim = nodes[2]!;
    const clients: TestClient[] = [];
    for (let i = 0; i < 12; i++) clients.push(await member(victim, `r-u${i}`, `room:r-${i}`));
    await flush(nodes, receiver, 'r-up');
    for (let i = 0; i < 12; i++) assert.equal(receiver.of(is('member_added', { uid: `r-u${i}` })).length, 1);
    // n-c dies without a goodbye (its broker connection cut) and comes back at once as another process, same id.
    await internals(victim).broker.close();
    const reborn = await startHerald(options('inc:', 400, 'n-c'));
    const survivors = nodes.slice(0, 2);
    await receiver.until(
      () => receiver.of((e) => e.kind === 'user_offline' && e.uid.startsWith('r-u')).length >= 12 && receiver.of((e) => e.kind === 'topic_vacated' && e.topic.startsWith('room:r-')).length >= 12 && receiver.of((e) => e.kind === 'member_removed' && e.uid.startsWith('r-u')).length >= 12,
      'every departure of the crashed incarnation',
    );
    await allReady([...survivors, reborn]);
    await flush([...survivors, reborn], receiver, 'r-after');
    for (let i = 0; i < 12; i++) {
      for (const [kind, key] of [['user_offline', { uid: `r-u${i}` }], ['topic_vacated', { topic: `room:r-${i}` }], ['member_removed', { topic: `room:r-${i}`, uid: `r-u${i}` }]] as const) {
        const found = receiver.of(is(kind, key));
        assert.equal(found.length, 1, `${kind} ${JSON.stringify(key)} once`);
        assert.ok(['n-a', 'n-b'].includes(found[0]!.node), `${kind} from a survivor`);
      }
    }
    for (const client of clients) client.ws.terminate();
    await Promise.all([...nodes, reborn].map((node) => node.close()));
  });
});

describe('webhook delivery (one node)', () => {
  const receiver = new WebhookReceiver(HOOK_SECRET);
  before(() => receiver.start());
  after(() => receiver.stop());

  const options = (secret = HOOK_SECRET): HeraldOptions => ({
    auth: { jwt: { secret: SECRET } },
    events: { kinds: ['user_online', 'user_offline'], webhooks: [{ url: receiver.url, secret, batchWindow: 20, retryDelay: 30, maxRetryDelay: 200 }] },
  });

  it('a receiver that answers 500 twice gets the same batch again, same ids, until it acknowledges with 200; a tampered body does not verify; a retry is recognisable by its ids', async () => {
    const herald = await startHerald(options());
    receiver.answers = [500, 500];
    const dave = await member(herald, 'dave');
    await receiver.until(() => receiver.of(is('user_online', { uid: 'dave' })).length === 1, 'dave online, acknowledged');
    const tries = receiver.requests.filter((request) => request.verified?.events.some((e) => e.uid === 'dave'));
    assert.deepEqual(tries.map((r) => r.status), [500, 500, 200]);
    assert.equal(new Set(tries.map((r) => r.headers['webhook-id'])).size, 1, 'one batch id over its attempts');
    assert.equal(new Set(tries.map((r) => JSON.stringify(r.verified!.events.map((e) => e.id)))).size, 1, 'the same event ids every time');
    const samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.equal(value(samples, 'herald_event_retries_total', { sink: 'webhook0' }), 2);
    assert.equal(value(samples, 'herald_event_deliveries_total', { sink: 'webhook0' }), 1);
    assert.equal(value(samples, 'herald_events_total', { kind: 'user_online' }), 1);

    // The acknowledged request replayed: verified, and recognised as a duplicate by its event id.
    const sent = tries.at(-1)!;
    const replay = (body: string) =>
      fetch(receiver.url, { method: 'POST', body, headers: Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, sent.headers[name] as string])) });
    assert.equal((await replay(sent.body.replace('"dave"', '"mallory"'))).status, 401, 'a tampered body does not verify');
    // The Standard Webhooks library itself verifies what Herald sent, and refuses the tampered body.
    const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [name, sent.headers[name] as string]));
    const library = new Webhook(HOOK_SECRET);
    assert.deepEqual((library.verify(sent.body, headers) as { events: Event[] }).events.map((e) => e.uid), ['dave']);
    assert.throws(() => library.verify(sent.body.replace('"dave"', '"mallory"'), headers), WebhookVerificationError);
    assert.throws(() => new Webhook(`whsec_${Buffer.from('another key of 24 bytes.').toString('base64')}`).verify(sent.body, headers), WebhookVerificationError);
    assert.equal(receiver.of(is('user_online', { uid: 'mallory' })).length, 0);
    assert.equal((await replay(sent.body)).status, 200);
    assert.equal(receiver.duplicates, 1);
    assert.equal(receiver.of(is('user_online', { uid: 'dave' })).length, 1);
    await dave.close();
    await receiver.until(() => receiver.of(is('user_offline', { uid: 'dave' })).length === 1, 'dave offline');
    await herald.close();
  });

  it('on shutdown, the events of the drain (closes, users offline) are delivered before close() resolves', async () => {
    const herald = await startHerald({
      auth: { jwt: { secret: SECRET } },
      events: { kinds: ['user_offline', 'connection_closed'], webhooks: [{ url: receiver.url, secret: HOOK_SECRET, batchWindow: 5_000 }] },
    });
    await Promise.all(['ida', 'jon', 'kim'].map((uid) => member(herald, uid)));
    await herald.close();
    for (const uid of ['ida', 'jon', 'kim']) {
      assert.equal(receiver.of(is('user_offline', { uid })).length, 1, `${uid} offline delivered`);
      const closed = receiver.of(is('connection_closed', { uid }));
      assert.deepEqual([closed.length, closed[0]?.code], [1, 1001], `${uid}'s close (1001 going away) delivered`);
    }
  });

  it('an events topic Herald would refuse as a topic fails the start with a configuration error', async () => {
    await assert.rejects(startHerald({ events: { topic: { name: 'herald events' } } }), (err: Error) => err instanceof ConfigError && /events\.topic\.name: topic "herald events" contains U\+0020/.test(err.message));
  });

  it('a request the receiver refuses (a signature made with another secret: 401) is given up at once, logged and counted', async () => {
    const herald = await startHerald(options('another secret, 24 chars or more'));
    const before = receiver.requests.length;
    const erin = await member(herald, 'erin');
    await receiver.until(() => receiver.requests.length > before, 'the request');
    await eventually(async () => {
      const samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
      return samples.some((s) => s.name === 'herald_event_failures_total' && s.labels.reason === 'refused' && s.value === 1);
    }, 'the refusal counted');
    assert.deepEqual(receiver.requests.slice(before).map((r) => r.status), [401], 'not retried');
    await erin.close();
    await herald.close();
  });
});

describe('the lifecycle events topic (Redis history, two nodes)', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  const receiver = new WebhookReceiver(HOOK_SECRET);
  before(async () => {
    if (skip) return;
    await Promise.all([redis.start(), receiver.start()]);
  });
  after(() => Promise.all([redis.stop(), receiver.stop()]));

  it('is closed to clients without an exact grant, never published to by clients, and a backend that was away recovers every event it missed by offset', async (t) => {
    if (skip) return t.skip(skip);
    const options: HeraldOptions = {
      broker: 'redis',
      redis: { url: redis.url, prefix: 'evt:' },
      cluster: { heartbeatInterval: 150 },
      presence: [{ pattern: 'room:*' }],
      auth: { jwt: { secret: SECRET } },
      events: { topics: ['room:*'], topic: { name: 'herald.events' }, webhooks: [{ url: receiver.url, secret: HOOK_SECRET, batchWindow: 20 }] },
    };
    const [a, b] = await Promise.all([startHerald(options), startHerald(options)]);
    await allReady([a, b]);

    // Security: no grant, a pattern grant, a publish grant: refused.
    const nobody = await connect(a);
    assert.equal((await nobody.request({ action: 'subscribe', topic: 'herald.events' })).error.code, 'forbidden');
    const wide = await connect(a, { path: `/ws?token=${await signToken({ sub: 'x', topics: ['herald.*'], publish: ['herald.events'] })}` });
    assert.equal((await wide.request({ action: 'subscribe', topic: 'herald.events' })).error.code, 'forbidden', 'a pattern grant does not open it');
    assert.equal((await wide.request({ action: 'publish', topic: 'herald.events', message: { kind: 'user_online', uid: 'forged' } })).error.code, 'forbidden', 'not even with a publish grant');

    const backendToken = await signToken({ sub: 'backend', topics: ['herald.events'] });
    const backend = await connect(a, { path: `/ws?token=${backendToken}` });
    assert.equal((await backend.request({ action: 'subscribe', topic: 'herald.events' })).ok, true);
    const frank = await member(b, 'frank', 'room:7');
    let seen = await backend.next(10_000);
    while (!(seen.message.kind === 'user_online' && seen.message.uid === 'frank')) seen = await backend.next(10_000);
    // The backend goes away (a restart; a second here rather than a minute: the same mechanism).
    await backend.close();
    // Every event emitted from now on is published to the topic after the one the backend saw last.
    const away = Date.now();
    const grace = await member(a, 'grace', 'room:7', 'room:8');
    await frank.close();
    await grace.close();
    await receiver.until(() => receiver.of(is('topic_vacated', { topic: 'room:8' })).length === 1 && receiver.of(is('user_offline', { uid: 'grace' })).length === 1 && receiver.of(is('user_offline', { uid: 'frank' })).length === 1, 'the events while the backend is away');
    const webhookIds = new Set(receiver.events.filter((e) => e.at >= away).map((e) => e.id));
    assert.ok(webhookIds.size >= 10, `${webhookIds.size} events while the backend was away`);
    // Every one of them stored on the topic (each node publishes what it emits, as the webhooks get it)...
    let stored = new Set<string>();
    await eventually(async () => {
      const page = await a.historyOf('herald.events', { since: { offset: seen.offset, epoch: seen.epoch } });
      stored = new Set(page.publications.map((p) => (p.message as Event).id));
      return [...webhookIds].every((id) => stored.has(id));
    }, 'the events stored on the topic').catch((err: Error) => {
      const missing = receiver.events.filter((e) => webhookIds.has(e.id) && !stored.has(e.id));
      throw new Error(`${err.message}: ${JSON.stringify(missing)} (${stored.size} stored)`);
    });
    // ...and the backend stays away a while longer (a second here rather than a minute: the same mechanism, recovery by offset).
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const back = await connect(b, { path: `/ws?token=${backendToken}` });
    const reply = await back.request({ action: 'subscribe', topic: 'herald.events', since: { offset: seen.offset, epoch: seen.epoch } });
    assert.equal(reply.recovered, true);
    const missed: Event[] = [];
    while (missed.length < reply.offset - seen.offset) missed.push((await back.next(10_000)).message);
    const topicIds = new Set(missed.map((e) => e.id));
    for (const id of webhookIds) assert.ok(topicIds.has(id), `event ${id} (${receiver.events.find((e) => e.id === id)!.kind}) recovered from the topic`);
    assert.ok(missed.some(is('member_removed', { uid: 'frank', topic: 'room:7' })) && missed.some(is('topic_vacated', { topic: 'room:7' })));
    assert.equal(topicIds.size, missed.length, 'each event once on the topic');
    for (const client of [nobody, wide, back]) client.ws.terminate();
    await Promise.all([a.close(), b.close()]);
  });
});
