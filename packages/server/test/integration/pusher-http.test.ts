import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Pusher from 'pusher';
import { Redis } from 'ioredis';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { eventually, RedisServer, requireBinary } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/**
 * Pusher's HTTP API, driven by the official `pusher` server library (5.3.4):
 * what it triggers reaches Herald JSON clients subscribed to the mapped
 * topics (`pusher:{app id}:{channel}`), what it asks is answered from every
 * node, and what it gets wrong is answered with the statuses its
 * `RequestError` surfaces.
 */

const APP_A = { id: 'app-a', key: 'key-a', secret: 'secret-of-app-a', maxEventChannels: 5 };
const APP_B = { id: 'app-b', key: 'key-b', secret: 'secret-of-app-b' };

function pusherOptions(): HeraldOptions {
  return {
    pusher: { enabled: true, apps: [APP_A, APP_B] },
    presence: [{ pattern: 'pusher:app-a:presence-*' }, { pattern: 'pusher:app-b:presence-*' }],
    auth: { jwt: { secret: SECRET } },
    limits: { maxConnectionsPerIp: 5000, connectionsPerSecondPerIp: 5000 },
  };
}

/** The `pusher` library pointed at a Herald node, for `app` (its id, key and secret, each replaceable). */
function library(herald: Herald, app: { id: string; key: string; secret: string }): Pusher {
  return new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(herald.port), useTLS: false });
}

/** The `RequestError` a library call rejects with (status and body), or a failure when it resolves. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; body: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { name?: string; status?: number; body?: string };
    assert.equal(e.name, 'PusherRequestError', `a RequestError, not ${String(err)}`);
    assert.equal(typeof e.status, 'number', 'the error has the response status');
    return { status: e.status!, body: e.body ?? '' };
  }
  assert.fail('the call was answered with success');
}

let watchers = 0;

/**
 * A JSON client logged in as `uid` (default: a user of its own) and subscribed to `topics`; resolves with it
 * and its connection id. Its token grants every app's topics: an app's private-, presence- and
 * #server-to-user- channels are private topics for Herald clients (a grant needed).
 */
async function subscriber(herald: Herald, topics: string[], uid = `watcher-${++watchers}`): Promise<{ client: TestClient; conn: string }> {
  const client = await connect(herald);
  const login = await client.request({ action: 'login', token: await signToken({ sub: uid, topics: ['pusher:*'] }) });
  assert.equal(login.ok, true, JSON.stringify(login));
  const conn = login.conn as string;
  const reply = await client.request({ action: 'subscribe', topics });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return { client, conn };
}

/** The next publication a client receives (other frames skipped). */
async function nextPublication(client: TestClient): Promise<{ topic: string; message: unknown; event?: string }> {
  for (;;) {
    const frame = await client.next();
    if (frame?.action === 'publish') return frame;
  }
}

/**
 * The library's signed `post` to `/events` with a body the library's own checks would refuse (a socket id
 * of another form, a bad name). Its typings say `body: string`, but it sends `JSON.stringify(body)`: an object.
 */
function postEvents(pusher: Pusher, body: Record<string, unknown>): Promise<unknown> {
  return pusher.post({ path: '/events', body: body as unknown as string });
}

async function json(response: unknown): Promise<any> {
  return (response as Response).json();
}

describe('the Pusher HTTP API on one node', () => {
  let herald: Herald;
  let a: Pusher;
  let b: Pusher;

  before(async () => {
    herald = await startHerald({ ...pusherOptions(), apiKeys: ['a-herald-api-key-for-this-test'] });
    a = library(herald, APP_A);
    b = library(herald, APP_B);
  });

  it('trigger on one channel reaches a JSON client of the mapped topic, with the data as it was sent', async () => {
    const { client } = await subscriber(herald, ['pusher:app-a:news']);
    const response = await a.trigger('news', 'headline', { title: 'hello', n: 1 });
    assert.equal(response.status, 200);
    assert.deepEqual(await json(response), {});
    const publication = await nextPublication(client);
    assert.equal(publication.topic, 'pusher:app-a:news');
    assert.equal(publication.message, '{"title":"hello","n":1}', 'the data string, verbatim');
    assert.equal(publication.event, 'headline', 'the event name travels with the publication');
    await client.close();
  });

  it('trigger on many channels reaches each mapped topic once; info answers the channels\' counts', async () => {
    const one = await subscriber(herald, ['pusher:app-a:c1']);
    const two = await subscriber(herald, ['pusher:app-a:c2', 'pusher:app-a:c1']);
    const response = await a.trigger(['c1', 'c2', 'c3'], 'tick', 'plain text', { info: 'subscription_count' });
    assert.deepEqual(await json(response), { channels: { c1: { subscription_count: 2 }, c2: { subscription_count: 1 }, c3: { subscription_count: 0 } } });
    assert.deepEqual(await nextPublication(one.client), { action: 'publish', topic: 'pusher:app-a:c1', message: 'plain text', event: 'tick' });
    const got = [await nextPublication(two.client), await nextPublication(two.client)].map((p) => p.topic).sort();
    assert.deepEqual(got, ['pusher:app-a:c1', 'pusher:app-a:c2']);
    await Promise.all([one.client.close(), two.client.close()]);
  });

  it('a batch publishes each event on its channel, in order; info per event when asked', async () => {
    const { client } = await subscriber(herald, ['pusher:app-a:b1', 'pusher:app-a:b2']);
    const response = await a.triggerBatch([
      { channel: 'b1', name: 'e1', data: 'first' },
      { channel: 'b2', name: 'e2', data: { second: true }, info: 'subscription_count' },
      { channel: 'b1', name: 'e3', data: 'third' },
    ] as Pusher.BatchEvent[]);
    assert.deepEqual(await json(response), { batch: [{}, { subscription_count: 1 }, {}] });
    const got = [await nextPublication(client), await nextPublication(client), await nextPublication(client)];
    assert.deepEqual(got.map((p) => [p.topic, p.event, p.message]), [['pusher:app-a:b1', 'e1', 'first'], ['pusher:app-a:b2', 'e2', '{"second":true}'], ['pusher:app-a:b1', 'e3', 'third']]);
    const plain = await a.triggerBatch([{ channel: 'b1', name: 'e4', data: 'x' }]);
    assert.deepEqual(await json(plain), {});
    await client.close();
  });

  it('socket_id excludes that connection from the event (and only it); a Pusher-form id of no connection excludes nobody', async () => {
    const excluded = await subscriber(herald, ['pusher:app-a:ex'], 'someone');
    const other = await subscriber(herald, ['pusher:app-a:ex']);
    // The library checks socket ids for Pusher's \d+\.\d+ form; a Herald JSON connection's id is another form,
    // so this event goes through the library's signed post.
    await postEvents(a, { name: 'one', data: 'not for the sender', channels: ['ex'], socket_id: excluded.conn });
    assert.equal((await nextPublication(other.client)).message, 'not for the sender');
    await a.trigger('ex', 'two', 'for everyone', { socket_id: '1234.5678' });
    assert.equal((await nextPublication(other.client)).message, 'for everyone');
    assert.equal((await nextPublication(excluded.client)).message, 'for everyone', 'the excluded connection\'s next publication is the second one');
    await Promise.all([excluded.client.close(), other.client.close()]);
  });

  it('the channel list: occupied channels of the app only, filtered by prefix, user_count for presence channels', async () => {
    const plain = await subscriber(herald, ['pusher:app-a:list-1', 'pusher:app-a:list-2', 'pusher:app-b:list-3', 'pusher:app-a:other']);
    const alice = await subscriber(herald, ['pusher:app-a:presence-lobby'], 'pusher:app-a:user:alice');
    const alice2 = await subscriber(herald, ['pusher:app-a:presence-lobby'], 'pusher:app-a:user:alice');
    const bob = await subscriber(herald, ['pusher:app-a:presence-lobby'], 'pusher:app-a:user:bob');
    const listed = await json(await a.get({ path: '/channels', params: { filter_by_prefix: 'list-' } }));
    assert.deepEqual(listed, { channels: { 'list-1': {}, 'list-2': {} } });
    const all = await json(await a.get({ path: '/channels' }));
    for (const channel of ['list-1', 'list-2', 'other', 'presence-lobby']) assert.ok(channel in all.channels, `${channel} is listed`);
    assert.ok(!('list-3' in all.channels), 'another app\'s channel is not listed');
    const presence = await json(await a.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
    assert.deepEqual(presence, { channels: { 'presence-lobby': { user_count: 2 } } });
    const refused = await refusal(a.get({ path: '/channels', params: { info: 'user_count' } }));
    assert.equal(refused.status, 400);
    assert.match(refused.body, /presence-/);
    await Promise.all([plain, alice, alice2, bob].map((s) => s.client.close()));
  });

  it('channel info: occupied, subscription_count, user_count for presence channels; presence users', async () => {
    const s1 = await subscriber(herald, ['pusher:app-a:presence-room'], 'pusher:app-a:user:ann');
    const s2 = await subscriber(herald, ['pusher:app-a:presence-room'], 'pusher:app-a:user:ann');
    const s3 = await subscriber(herald, ['pusher:app-a:presence-room'], 'pusher:app-a:user:ben');
    const info = await json(await a.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } }));
    assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
    assert.deepEqual(await json(await a.get({ path: '/channels/presence-room' })), { occupied: true });
    assert.deepEqual(await json(await a.get({ path: '/channels/empty-one', params: { info: 'subscription_count' } })), { occupied: false, subscription_count: 0 });
    const users = await json(await a.get({ path: '/channels/presence-room/users' }));
    assert.deepEqual(users.users.map((u: { id: string }) => u.id).sort(), ['ann', 'ben']);
    assert.equal((await refusal(a.get({ path: '/channels/news/users' }))).status, 400, 'users of a channel that is not a presence channel');
    assert.equal((await refusal(a.get({ path: '/channels/news', params: { info: 'user_count' } }))).status, 400, 'user_count of a channel that is not a presence channel');
    assert.equal((await refusal(a.get({ path: '/channels/news', params: { info: 'members' } }))).status, 400, 'an unknown info attribute');
    await s3.client.close();
    await eventually(async () => (await json(await a.get({ path: '/channels/presence-room', params: { info: 'user_count' } }))).user_count === 1, 'ben to leave');
    await Promise.all([s1.client.close(), s2.client.close()]);
  });

  it('terminate_connections closes every connection of the app\'s user, and only that user\'s', async () => {
    const bob1 = await subscriber(herald, ['pusher:app-a:t'], 'pusher:app-a:user:bob');
    const bob2 = await subscriber(herald, ['pusher:app-a:t'], 'pusher:app-a:user:bob');
    const bobOfB = await subscriber(herald, ['pusher:app-b:t'], 'pusher:app-b:user:bob');
    const response = await a.terminateUserConnections('bob');
    assert.deepEqual(await json(response), {});
    assert.equal((await deadline(bob1.client.closed, 5000, 'bob1 closed')).code, 4504);
    assert.equal((await deadline(bob2.client.closed, 5000, 'bob2 closed')).code, 4504);
    await b.trigger('t', 'still-here', 'yes');
    assert.equal((await nextPublication(bobOfB.client)).message, 'yes', 'app B\'s bob is another user');
    await bobOfB.client.close();
  });

  it('signing failures: wrong secret, unknown key, stale timestamp, missing signature, tampered body and body_md5', async () => {
    const wrongSecret = await refusal(library(herald, { ...APP_A, secret: 'not-the-secret' }).trigger('news', 'e', 'x'));
    assert.equal(wrongSecret.status, 401);
    assert.match(wrongSecret.body, /^Invalid signature: you should have sent HmacSHA256Hex\("POST\\n\/apps\/app-a\/events\\nauth_key=key-a&auth_timestamp=\d+&auth_version=1\.0&body_md5=[0-9a-f]{32}", your_secret_key\)/);
    assert.doesNotMatch(wrongSecret.body, /secret-of-app-a/, 'the answer does not hold the secret');

    const unknownKey = await refusal(library(herald, { ...APP_A, key: 'no-such-key' }).get({ path: '/channels' }));
    assert.deepEqual(unknownKey, { status: 401, body: 'Unknown auth_key' });

    // The library stamps its requests with Date.now(): a clock 601 s behind or ahead makes a stale request.
    const realNow = Date.now;
    for (const skew of [-601_000, 601_000]) {
      Date.now = () => realNow() + skew;
      const call = a.get({ path: '/channels' });
      Date.now = realNow;
      const stale = await refusal(call);
      assert.equal(stale.status, 401);
      assert.match(stale.body, /^Timestamp expired: Given timestamp \(\S+\) not within 600s of server time \(\S+\)$/);
    }
    Date.now = () => realNow() - 590_000;
    const withinWindow = a.get({ path: '/channels' });
    Date.now = realNow;
    assert.equal((await withinWindow).status, 200, 'a request 590 s old is still within the window');

    const path = '/apps/app-a/events';
    const body = JSON.stringify({ name: 'e', data: 'original', channels: ['news'] });
    const query = a.createSignedQueryString({ method: 'POST', path, body });
    const post = (q: string, b: string) => http(herald, 'POST', `${path}?${q}`, b);

    const ok = await post(query, body);
    assert.equal(ok.status, 200, ok.text);
    const asText = await http(herald, 'POST', `${path}?${query}`, body, { 'content-type': 'text/plain' });
    assert.equal(asText.status, 200, 'the body is read as it is, whatever its type');
    const tampered = await post(query, body.replace('original', 'tampered'));
    assert.equal(tampered.status, 401);
    assert.match(tampered.text, /body_md5/);
    const forgedMd5 = await post(query.replace(/body_md5=[0-9a-f]+/, `body_md5=${'0'.repeat(32)}`), body);
    assert.equal(forgedMd5.status, 401);
    assert.match(forgedMd5.text, /^Invalid signature/);
    const unsigned = await post(query.replace(/&auth_signature=[0-9a-f]+/, ''), body);
    assert.deepEqual([unsigned.status, unsigned.text], [401, 'Missing parameter: auth_signature']);
    const noMd5 = a.createSignedQueryString({ method: 'POST', path });
    const bodyWithoutMd5 = await post(noMd5, body);
    assert.equal(bodyWithoutMd5.status, 401);
    assert.match(bodyWithoutMd5.text, /body_md5/);
    const noTimestamp = await post(query.replace(/auth_timestamp=\d+&/, ''), body);
    assert.equal(noTimestamp.status, 401);
    assert.match(noTimestamp.text, /auth_timestamp/);
    assert.equal(noTimestamp.headers.get('content-type'), 'text/plain; charset=utf-8', 'refusals are plain text, not Herald\'s JSON error shape');
  });

  it('oversize data is 413, too many channels or events 400, bad events 400, an unknown app or path 404', async () => {
    const big = await refusal(a.trigger('news', 'e', 'x'.repeat(10 * 1024 + 1)));
    assert.equal(big.status, 413);
    assert.match(big.body, /10241 bytes, over the limit of 10240/);
    assert.equal((await a.trigger('news', 'e', 'x'.repeat(10 * 1024))).status, 200, 'exactly maxEventBytes is accepted');
    const bigInBatch = await refusal(a.triggerBatch([{ channel: 'news', name: 'e', data: 'ok' }, { channel: 'news', name: 'e', data: 'y'.repeat(20_000) }]));
    assert.equal(bigInBatch.status, 413);
    assert.match(bigInBatch.body, /^batch\[1\]: /);
    const channels = await refusal(a.trigger(['c1', 'c2', 'c3', 'c4', 'c5', 'c6'], 'e', 'x'));
    assert.deepEqual(channels, { status: 400, body: 'Too many channels: 6, the limit is 5' });
    const batch = await refusal(a.triggerBatch(Array.from({ length: 11 }, (_, i) => ({ channel: 'news', name: `e${i}`, data: 'x' }))));
    assert.deepEqual(batch, { status: 400, body: 'Batch too large: 11 events, the limit is 10' });
    assert.equal((await refusal(postEvents(a, { name: 'e', data: 'x', channels: ['bad channel!'] }))).status, 400);
    assert.equal((await refusal(postEvents(a, { name: 'pusher:internal', data: 'x', channel: 'news' }))).status, 400);
    assert.equal((await refusal(postEvents(a, { name: 'e', data: { not: 'a string' }, channel: 'news' }))).status, 400);
    assert.equal((await refusal(postEvents(a, { name: 'e', data: 'x' }))).status, 400);
    const huge = await http(herald, 'POST', '/apps/app-a/events', 'x'.repeat(1024 * 1024 + 1));
    assert.deepEqual([huge.status, huge.text], [413, 'Request body too large'], 'a body over limits.maxHttpBodyBytes');
    const unknownApp = await refusal(library(herald, { ...APP_A, id: 'no-such-app' }).trigger('news', 'e', 'x'));
    assert.equal(unknownApp.status, 404);
    const unknownPath = await refusal(a.get({ path: '/nothing-here' }));
    assert.deepEqual(unknownPath, { status: 404, body: 'Not found: GET /apps/app-a/nothing-here' }, 'a path no route has is named, not taken for an unknown app');
    const wrongMethod = await refusal(a.get({ path: '/events' }));
    assert.deepEqual(wrongMethod, { status: 404, body: 'Not found: GET /apps/app-a/events' });
  });

  it('apps are isolated: another app\'s key cannot read or trigger this app\'s channels, and its triggers reach its own topics', async () => {
    const { client } = await subscriber(herald, ['pusher:app-a:shared-name']);
    const bOnA = new Pusher({ appId: APP_A.id, key: APP_B.key, secret: APP_B.secret, host: '127.0.0.1', port: String(herald.port), useTLS: false });
    const read = await refusal(bOnA.get({ path: '/channels' }));
    assert.equal(read.status, 401);
    assert.match(read.body, /another app/);
    assert.equal((await refusal(bOnA.trigger('shared-name', 'e', 'from B'))).status, 401);
    await b.trigger('shared-name', 'e', 'B\'s own channel');
    const bList = await json(await b.get({ path: '/channels' }));
    assert.ok(!('shared-name' in bList.channels), 'B does not see A\'s subscribers');
    assert.deepEqual(await json(await b.get({ path: '/channels/shared-name', params: { info: 'subscription_count' } })), { occupied: false, subscription_count: 0 });
    await a.trigger('shared-name', 'e', 'A\'s');
    assert.equal((await nextPublication(client)).message, 'A\'s', 'B\'s trigger did not reach A\'s topic');
    await client.close();
  });

  it('sendToUser publishes on the app\'s #server-to-user- channel topic', async () => {
    const { client } = await subscriber(herald, ['pusher:app-a:#server-to-user-carol']);
    await a.sendToUser('carol', 'note', { hi: 'carol' });
    assert.deepEqual(await nextPublication(client), { action: 'publish', topic: 'pusher:app-a:#server-to-user-carol', message: '{"hi":"carol"}', event: 'note' });
    await client.close();
  });

  it('Herald\'s API keys do not apply to the Pusher routes, and still guard Herald\'s own', async () => {
    assert.equal((await a.get({ path: '/channels' })).status, 200);
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'x', message: 1 })).status, 401);
  });
});

describe('the Pusher HTTP API on two nodes (redis)', () => {
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
      ...pusherOptions(),
      broker: 'redis',
      redis: { url: redis.url, prefix },
      cluster: { heartbeatInterval: 200, requestTimeout: 3000 },
      ...options,
    });
    await brokerReady(herald);
    return herald;
  }

  async function cluster(): Promise<[Herald, Herald]> {
    prefix = `ph${++tests}:`;
    const nodes: [Herald, Herald] = [await node(), await node()];
    await eventually(() => nodes.every((n) => n.clusterView().length === 2), 'the two nodes to know each other');
    return nodes;
  }

  it('a trigger on node 1 reaches subscribers on node 2; channel info and the list count both nodes', async (t) => {
    if (skip) return t.skip(skip);
    const [one, two] = await cluster();
    const here = await subscriber(one, ['pusher:app-a:room']);
    const there = [await subscriber(two, ['pusher:app-a:room']), await subscriber(two, ['pusher:app-a:room', 'pusher:app-a:only-on-two'])];
    await internals(two).whenSubscribed(['pusher:app-a:room', 'pusher:app-a:only-on-two']);
    const api = library(one, APP_A);
    await api.trigger('room', 'hello', 'to every node');
    for (const s of [here, ...there]) {
      const publication = await nextPublication(s.client);
      assert.deepEqual([publication.event, publication.message], ['hello', 'to every node'], 'name and data on every node');
    }
    assert.deepEqual(await json(await api.get({ path: '/channels/room', params: { info: 'subscription_count' } })), { occupied: true, subscription_count: 3 });
    assert.deepEqual(await json(await api.get({ path: '/channels/only-on-two', params: { info: 'subscription_count' } })), { occupied: true, subscription_count: 1 });
    const list = await json(await api.get({ path: '/channels', params: { info: 'subscription_count' } }));
    assert.deepEqual(list, { channels: { room: { subscription_count: 3 }, 'only-on-two': { subscription_count: 1 } } });
    for (const s of [here, ...there]) await s.client.close();
  });

  it('presence users and counts are cluster-wide; terminate_connections from node 1 closes the user on node 2', async (t) => {
    if (skip) return t.skip(skip);
    const [one, two] = await cluster();
    const dan = await subscriber(one, ['pusher:app-a:presence-hall'], 'pusher:app-a:user:dan');
    const eve = await subscriber(two, ['pusher:app-a:presence-hall'], 'pusher:app-a:user:eve');
    const eve2 = await subscriber(two, ['pusher:app-a:presence-hall'], 'pusher:app-a:user:eve');
    const api = library(one, APP_A);
    await eventually(async () => (await json(await api.get({ path: '/channels/presence-hall', params: { info: 'user_count' } }))).user_count === 2, 'both nodes\' users counted');
    const users = await json(await api.get({ path: '/channels/presence-hall/users' }));
    assert.deepEqual(users.users.map((u: { id: string }) => u.id).sort(), ['dan', 'eve']);
    await eventually(() => one.isUserConnected('pusher:app-a:user:eve'), 'node 1 to know that eve is on node 2');
    assert.deepEqual(await json(await api.terminateUserConnections('eve')), {});
    assert.equal((await deadline(eve.client.closed, 5000, 'eve closed')).code, 4504);
    assert.equal((await deadline(eve2.client.closed, 5000, 'eve\'s second connection closed')).code, 4504);
    await dan.client.close();
  });

  it('a node that does not answer the census in time is left out: the answer has what arrived, naming it in X-Herald-Partial', async (t) => {
    if (skip) return t.skip(skip);
    prefix = `ph${++tests}:`;
    const one = await node({ cluster: { heartbeatInterval: 2000, requestTimeout: 300 } });
    const here = await subscriber(one, ['pusher:app-a:lonely']);
    // A node that heartbeats but never answers: its heartbeat on the cluster's control channel, sent by hand.
    const ghost = new Redis(redis.url);
    try {
      await ghost.publish(`${prefix}herald|cluster`, JSON.stringify({ t: 'hb', node: 'ghost', seq: 0, stats: { connections: 0, users: 0, topics: 0, subscriptions: 0 } }));
      await eventually(() => one.clusterView().some((n) => n.id === 'ghost'), 'node 1 to know the ghost node');
      const path = '/apps/app-a/channels/lonely';
      const query = library(one, APP_A).createSignedQueryString({ method: 'GET', path, params: { info: 'subscription_count' } });
      const answer = await http(one, 'GET', `${path}?${query}`);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, { occupied: true, subscription_count: 1 });
      assert.equal(answer.headers.get('x-herald-partial'), 'ghost');
    } finally {
      ghost.disconnect();
      await here.client.close();
    }
  });
});
