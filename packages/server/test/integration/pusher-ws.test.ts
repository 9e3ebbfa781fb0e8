import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect, deadline, startHerald, TestClient, wsUrl } from '../helpers/helpers.js';
import { APP, authServer, connected, nextEvent, PusherClient, pusherClient, pusherErrorOf, pusherOptions, serverLib, subscribed } from '../helpers/pusher.js';
import { eventually } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

const clients: any[] = [];
after(() => {
  for (const client of clients) client.disconnect();
});

/** A raw Pusher-protocol client (ws), for what pusher-js hides: exact frames, bad input, close codes. */
async function rawPusher(herald: Parameters<typeof wsUrl>[0], key: string = APP.key, options: { autoPong?: boolean } = {}): Promise<{ client: TestClient; socketId: string; established: any }> {
  const client = await TestClient.open(wsUrl(herald, `/app/${key}?protocol=7&client=js&version=8.6.0&flash=false`), options);
  const established = await client.next();
  return { client, socketId: JSON.parse(established.data ?? '{}').socket_id, established };
}

function track<T>(client: T): T {
  clients.push(client);
  return client;
}

describe('Pusher protocol over WebSocket (pusher-js 8, pusher 5)', () => {
  it('connects: connection_established with a socket id of Pusher form and the activity timeout; answers pusher:ping', async () => {
    const herald = await startHerald(pusherOptions({ activityTimeout: 30 }));
    const { client, established, socketId } = await rawPusher(herald);
    assert.equal(established.event, 'pusher:connection_established');
    assert.equal(typeof established.data, 'string', 'data is a JSON-encoded string, as Pusher sends it');
    assert.match(socketId, /^\d+\.\d+$/);
    assert.equal(JSON.parse(established.data).activity_timeout, 30);
    client.send({ event: 'pusher:ping', data: {} });
    assert.equal((await client.next()).event, 'pusher:pong');

    const js = track(pusherClient(herald, 'http://127.0.0.1:1'));
    await connected(js);
    assert.match(js.connection.socket_id, /^\d+\.\d+$/);
    assert.notEqual(js.connection.socket_id, socketId);
    assert.equal(herald.status().connections, 2);
    await herald.close();
  });

  it('public channel: a trigger (event name, string data) and a Herald publication (default event "message", JSON data) reach pusher-js; the sender socket is excluded', async () => {
    const herald = await startHerald(pusherOptions());
    const lib = serverLib(herald);
    const js = track(pusherClient(herald, 'http://127.0.0.1:1'));
    const other = track(pusherClient(herald, 'http://127.0.0.1:1'));
    const [channel, otherChannel] = await Promise.all([subscribed(js, 'news'), subscribed(other, 'news')]);
    const got = nextEvent(channel, 'headline');
    await lib.trigger('news', 'headline', { title: 'hello' });
    assert.deepEqual(await got, { title: 'hello' });

    const viaHerald = nextEvent(channel, 'message');
    await herald.publish(`pusher:${APP.id}:news`, { n: 1 });
    assert.deepEqual(await viaHerald, { n: 1 }, 'a Herald publication without event name is "message", its JSON the data');
    // A Herald JSON client publishing with an event name: Pusher clients get that event.
    const json = await connect(herald);
    const named = nextEvent(channel, 'from-json');
    assert.equal((await json.request({ action: 'publish', topic: `pusher:${APP.id}:news`, message: 'plain text', event: 'from-json' })).error, undefined);
    assert.equal(await named, 'plain text', 'a JSON string message is the data string as it is');

    // socket_id exclusion: the trigger excludes js's socket; other gets it, js gets only the next one.
    const excludedSeen: unknown[] = [];
    channel.bind('excl', (data: unknown) => excludedSeen.push(data));
    const atOther = nextEvent(otherChannel, 'excl');
    await lib.trigger('news', 'excl', 'first', { socket_id: js.connection.socket_id });
    assert.equal(await atOther, 'first');
    const atJs = nextEvent(channel, 'excl');
    await lib.trigger('news', 'excl', 'second');
    assert.equal(await atJs, 'second');
    assert.deepEqual(excludedSeen, ['second'], 'the excluded socket never got the first');
    await herald.close();
  });

  it('private channels: authorised by the app endpoint (official library); a bad signature or a refused authorisation is a subscription_error', async () => {
    const herald = await startHerald(pusherOptions());
    const lib = serverLib(herald);
    const auth = await authServer(lib);
    const js = track(pusherClient(herald, auth.url));
    const channel = await subscribed(js, 'private-orders');
    const got = nextEvent(channel, 'created');
    await lib.trigger('private-orders', 'created', { id: 7 });
    assert.deepEqual(await got, { id: 7 });

    await assert.rejects(subscribed(js, 'private-forbidden'), /AuthError/, 'the endpoint refused: pusher-js reports it');

    const { client, socketId } = await rawPusher(herald);
    const valid = lib.authorizeChannel(socketId, 'private-orders');
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-orders', auth: `${APP.key}:${'0'.repeat(64)}` } });
    let answer = await client.next();
    assert.equal(answer.event, 'pusher:subscription_error');
    assert.equal(answer.channel, 'private-orders');
    assert.deepEqual(JSON.parse(answer.data), { type: 'AuthError', error: 'Invalid signature: the channel authorisation does not match', status: 401 });
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-orders', auth: lib.authorizeChannel('1.1', 'private-orders').auth } });
    assert.equal((await client.next()).event, 'pusher:subscription_error', "another socket's signature is refused");
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-orders' } });
    assert.equal((await client.next()).event, 'pusher:subscription_error', 'no auth at all');
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-orders', auth: valid.auth } });
    answer = await client.next();
    assert.equal(answer.event, 'pusher_internal:subscription_succeeded');
    assert.equal(answer.channel, 'private-orders');

    // A Herald JSON client cannot reach the private channel's topic without a grant.
    const json = await connect(herald);
    const refused = await json.request({ action: 'subscribe', topic: `pusher:${APP.id}:private-orders` });
    assert.equal(refused.error.code, 'forbidden');
    await herald.close();
    auth.server.close();
  });

  it('presence: member list, member_added/member_removed once per user across connections, the member limit', async () => {
    const herald = await startHerald(pusherOptions({ maxPresenceMembers: 2 }));
    const lib = serverLib(herald);
    const auth = await authServer(lib);
    const alice = track(pusherClient(herald, auth.url, 'alice'));
    const aliceChannel = await subscribed(alice, 'presence-room');
    assert.equal(aliceChannel.members.count, 1);
    assert.deepEqual(aliceChannel.members.me, { id: 'alice', info: { name: 'User alice' } });

    const added = nextEvent(aliceChannel, 'pusher:member_added');
    const bob = track(pusherClient(herald, auth.url, 'bob'));
    const bobChannel = await subscribed(bob, 'presence-room');
    assert.deepEqual(await added, { id: 'bob', info: { name: 'User bob' } });
    assert.equal(bobChannel.members.count, 2);
    const ids: string[] = [];
    bobChannel.members.each((member: { id: string }) => ids.push(member.id));
    assert.deepEqual(ids.sort(), ['alice', 'bob']);
    // A client event on a presence channel carries its sender's user_id.
    const waved = deadline(new Promise<unknown[]>((resolve) => bobChannel.bind('client-wave', (data: unknown, metadata: unknown) => resolve([data, metadata]))), 5000, 'client-wave');
    aliceChannel.trigger('client-wave', { hi: true });
    assert.deepEqual(await waved, [{ hi: true }, { user_id: 'alice' }]);

    // A second connection of bob: no member_added, still 2 members; it does not count against the limit.
    const seen: string[] = [];
    aliceChannel.bind('pusher:member_added', (m: { id: string }) => seen.push(`+${m.id}`));
    aliceChannel.bind('pusher:member_removed', (m: { id: string }) => seen.push(`-${m.id}`));
    const bob2 = track(pusherClient(herald, auth.url, 'bob'));
    const bob2Channel = await subscribed(bob2, 'presence-room');
    assert.equal(bob2Channel.members.count, 2);
    // The limit: a third user is refused.
    const carol = track(pusherClient(herald, auth.url, 'carol'));
    await assert.rejects(subscribed(carol, 'presence-room'), /LimitReached/);

    bob2.disconnect();
    await eventually(() => herald.presence(`pusher:${APP.id}:presence-room`).connections === 2, 'the second connection of bob gone');
    const removed = nextEvent(aliceChannel, 'pusher:member_removed');
    bob.unsubscribe('presence-room');
    assert.deepEqual(await removed, { id: 'bob', info: { name: 'User bob' } });
    assert.deepEqual(seen, ['-bob'], 'one removal when the last connection of bob left, none for the others');
    assert.equal(aliceChannel.members.count, 1);
    // Herald's own presence view: uids in the app's user namespace.
    assert.deepEqual(herald.presence(`pusher:${APP.id}:presence-room`).list.map((e) => e.uid), [`pusher:${APP.id}:user:alice`]);
    await herald.close();
    auth.server.close();
  });

  it('encrypted channels: pusher-js decrypts with the shared secret from the endpoint; Herald only relays ciphertext', async () => {
    const herald = await startHerald(pusherOptions());
    const lib = serverLib(herald);
    const auth = await authServer(lib);
    const js = track(pusherClient(herald, auth.url));
    const channel = await subscribed(js, 'private-encrypted-vault');
    const { client, socketId } = await rawPusher(herald);
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-vault', auth: lib.authorizeChannel(socketId, 'private-encrypted-vault').auth } });
    assert.equal((await client.next()).event, 'pusher_internal:subscription_succeeded');
    const got = nextEvent(channel, 'secret');
    await lib.trigger('private-encrypted-vault', 'secret', { code: 'plaintext-1234' });
    assert.deepEqual(await got, { code: 'plaintext-1234' }, 'pusher-js decrypted it');
    const relayed = await client.next();
    assert.equal(relayed.event, 'secret');
    assert.doesNotMatch(relayed.data, /plaintext-1234/, 'what Herald carried is ciphertext');
    assert.deepEqual(Object.keys(JSON.parse(relayed.data)).sort(), ['ciphertext', 'nonce']);
    await herald.close();
    auth.server.close();
  });

  it('cache channels: pusher:cache_miss when empty, the last event on subscribe afterwards', async () => {
    const herald = await startHerald(pusherOptions());
    const lib = serverLib(herald);
    const first = track(pusherClient(herald, 'http://127.0.0.1:1'));
    const missed = new Promise((resolve) => first.subscribe('cache-price').bind('pusher:cache_miss', resolve));
    await deadline(missed, 5000, 'cache_miss');
    await lib.trigger('cache-price', 'tick', { price: 1 });
    await lib.trigger('cache-price', 'tick', { price: 2 });
    const late = track(pusherClient(herald, 'http://127.0.0.1:1'));
    const channel = late.subscribe('cache-price');
    let miss = false;
    channel.bind('pusher:cache_miss', () => (miss = true));
    assert.deepEqual(await nextEvent(channel, 'tick'), { price: 2 }, 'the last event, with its event name');
    assert.equal(miss, false);
    await herald.close();
  });

  it('client events: on private and presence channels only, not echoed, rate-limited, refused when the app does not allow them; they reach Herald clients', async () => {
    const herald = await startHerald(pusherOptions({}, { auth: { jwt: { secret: SECRET } } }));
    const lib = serverLib(herald);
    const auth = await authServer(lib);
    const a = track(pusherClient(herald, auth.url, 'a'));
    const b = track(pusherClient(herald, auth.url, 'b'));
    const [chA, chB] = await Promise.all([subscribed(a, 'private-chat'), subscribed(b, 'private-chat')]);
    const json = await connect(herald, { path: `/ws?token=${await signToken({ sub: 'x', topics: [`pusher:${APP.id}:private-*`] })}` });
    assert.equal((await json.request({ action: 'subscribe', topic: `pusher:${APP.id}:private-chat` })).error, undefined, 'a Herald client with a grant');
    const echoed: unknown[] = [];
    chA.bind('client-typing', (data: unknown) => echoed.push(data));
    const got = nextEvent(chB, 'client-typing');
    assert.equal(chA.trigger('client-typing', { who: 'a' }), true);
    assert.deepEqual(await got, { who: 'a' });
    const atJson = await json.next();
    assert.deepEqual([atJson.action, atJson.topic, atJson.message], ['publish', `pusher:${APP.id}:private-chat`, { who: 'a' }]);

    // Raw: a public channel, the rate limit (5 a second), a bad frame: each answered, the connection stays.
    const { client, socketId } = await rawPusher(herald);
    client.send({ event: 'pusher:subscribe', data: { channel: 'private-chat', auth: lib.authorizeChannel(socketId, 'private-chat').auth } });
    assert.equal((await client.next()).event, 'pusher_internal:subscription_succeeded');
    client.send({ event: 'client-x', channel: 'news', data: {} });
    let answer = await client.next();
    assert.equal(answer.event, 'pusher:error');
    assert.match(answer.data.message, /only accepted on private and presence/);
    for (let i = 0; i < 6; i++) client.send({ event: 'client-burst', channel: 'private-chat', data: { i } });
    answer = await client.next();
    assert.equal(answer.event, 'pusher:error');
    assert.equal(answer.data.code, 4301, 'the sixth in a second is over clientEventRate');
    client.send('not json');
    assert.match((await client.next()).data.message, /not valid JSON/);
    client.send({ event: 'pusher:nonsense', data: {} });
    assert.match((await client.next()).data.message, /unknown event/);
    client.send({ event: 'client-big', channel: 'private-chat', data: 'x'.repeat(11 * 1024) });
    assert.match((await client.next()).data.message, /over the limit of 10240/);
    client.send({ event: 'pusher:ping', data: {} });
    assert.equal((await client.next()).event, 'pusher:pong', 'still connected after every error');
    assert.deepEqual(echoed, [], 'the sender never got its own event');
    await herald.close();

    const closed = await startHerald(pusherOptions({ clientEvents: false }));
    const raw = await rawPusher(closed);
    raw.client.send({ event: 'pusher:subscribe', data: { channel: 'private-chat', auth: serverLib(closed).authorizeChannel(raw.socketId, 'private-chat').auth } });
    await raw.client.next();
    raw.client.send({ event: 'client-x', channel: 'private-chat', data: {} });
    assert.match((await raw.client.next()).data.message, /must allow them/);
    await closed.close();
    auth.server.close();
  });

  it('signin and server-to-user events: the user channel, the Herald uid, terminate through the users API', async () => {
    const herald = await startHerald(pusherOptions());
    const lib = serverLib(herald);
    const auth = await authServer(lib);
    const js = track(pusherClient(herald, auth.url, 'u42'));
    await connected(js);
    js.signin();
    await deadline(js.user.signinDonePromise, 5000, 'signin');
    // pusher-js subscribes #server-to-user-u42 after signin_success; wait until Herald holds it.
    const topic = `pusher:${APP.id}:#server-to-user-u42`;
    await eventually(() => herald.status().subscriptions >= 1, 'the user channel subscribed');
    const got = nextEvent(js.user, 'notice');
    await lib.sendToUser('u42', 'notice', { text: 'hi' });
    assert.deepEqual(await got, { text: 'hi' });
    assert.equal(herald.isUserConnected(`pusher:${APP.id}:user:u42`), true, 'the Herald uid of a Pusher user');
    const list = await herald.listConnections(`pusher:${APP.id}:user:u42`);
    assert.deepEqual(list.map((c) => c.id), [js.connection.socket_id]);
    assert.ok(list[0]!.topics.includes(topic));

    // Another connection may not take u42's channel; a bad sign-in closes with 4009.
    const { client, socketId } = await rawPusher(herald);
    client.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-u42' } });
    assert.equal((await client.next()).event, 'pusher:subscription_error');
    client.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${'f'.repeat(64)}`, user_data: '{"id":"u42"}' } });
    const error = await client.next();
    assert.deepEqual([error.event, error.data.code], ['pusher:error', 4009]);
    assert.equal((await client.closed).code, 4009);
    void socketId;

    const errored = pusherErrorOf(js);
    await herald.disconnectUser(`pusher:${APP.id}:user:u42`);
    assert.equal((await errored).code, 4009, 'disconnected by the server: 4009, pusher-js does not reconnect');
    await herald.close();
    auth.server.close();
  });

  it('errors on connecting: unknown key (4001), over the connection quota (4004), each told and closed', async () => {
    const herald = await startHerald(pusherOptions({ maxConnections: 1 }));
    const unknown = await TestClient.open(wsUrl(herald, '/app/nope?protocol=7'));
    const error = await unknown.next();
    assert.equal(error.event, 'pusher:error');
    assert.equal(error.data.code, 4001);
    assert.equal((await unknown.closed).code, 4001);
    const js = track(pusherClient(herald, 'http://127.0.0.1:1', 'x', { wsPort: herald.port }));
    await connected(js);
    const second = await TestClient.open(wsUrl(herald, `/app/${APP.key}`));
    const over = await second.next();
    assert.deepEqual([over.event, over.data.code], ['pusher:error', 4004]);
    assert.equal((await second.closed).code, 4004);
    const bad = track(new PusherClient('nope', { cluster: 'x', wsHost: '127.0.0.1', wsPort: herald.port, forceTLS: false, enabledTransports: ['ws'] }));
    assert.equal((await pusherErrorOf(bad)).code, 4001, 'pusher-js sees 4001');
    await herald.close();
  });

  it('liveness: a client that stops answering pings is told pusher:error 4201 and closed with 4201', async () => {
    const herald = await startHerald(pusherOptions({}, { heartbeat: { interval: 100, timeout: 200 } }));
    const { client } = await rawPusher(herald, APP.key, { autoPong: false });
    const farewell = await client.next(5000);
    assert.deepEqual([farewell.event, farewell.data.code], ['pusher:error', 4201]);
    assert.equal((await client.closed).code, 4201);
    await herald.close();
  });

  it('reconnect: the server closing says 4200; pusher-js reconnects to the server started again on the same port', async () => {
    const options = { shutdown: { drainWindow: 0, timeout: 1000 } };
    const herald = await startHerald(pusherOptions({}, options));
    const js = track(pusherClient(herald, 'http://127.0.0.1:1'));
    await connected(js);
    const before = js.connection.socket_id;
    const port = herald.port;
    const errored = pusherErrorOf(js);
    await herald.close();
    assert.equal((await errored).code, 4200, 'shutdown: reconnect now');
    const again = await startHerald(pusherOptions({}, { ...options, port }));
    await deadline(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (js.connection.state === 'connected' && js.connection.socket_id !== before) resolve();
        };
        js.connection.bind('connected', check);
        check();
      }),
      20_000,
      'pusher-js reconnected to the new server',
    );
    js.disconnect();
    await again.close();
  });
});

describe('Pusher app secret rotation (previousSecrets)', () => {
  it('while a new secret rolls out, authorisations and HTTP API requests signed with the previous one verify; a third secret does not', async () => {
    // The app's secret is new; the auth endpoint and the server library still sign with the old one (APP.secret).
    const herald = await startHerald(pusherOptions({ secret: 'the-new-secret-0123456789', previousSecrets: [APP.secret] }));
    const lib = serverLib(herald);
    const auth = await authServer(lib);
    try {
      const js = track(pusherClient(herald, auth.url, 'dora'));
      const channel = await subscribed(js, 'private-rotation');
      const got = nextEvent(channel, 'rotated');
      await lib.trigger('private-rotation', 'rotated', { ok: true });
      assert.deepEqual(await got, { ok: true }, 'a trigger signed with the previous secret');

      const { client, socketId } = await rawPusher(herald);
      const forged = (await import('pusher')).default;
      const third = new forged({ appId: APP.id, key: APP.key, secret: 'a-third-secret-0123456789', host: '127.0.0.1', port: String(herald.port), useTLS: false });
      client.send({ event: 'pusher:subscribe', data: { channel: 'private-rotation', auth: third.authorizeChannel(socketId, 'private-rotation').auth } });
      const refused = await client.next();
      assert.equal(refused.event, 'pusher:subscription_error');
      await assert.rejects(third.trigger('private-rotation', 'x', {}), (err: { status?: number }) => err.status === 401);
      client.close();
    } finally {
      auth.server.close();
      await herald.close();
    }
  });
});

describe('Pusher protocol: what other publishers cannot make a Pusher client see', () => {
  it("reserved event names are refused on every publish path; a public channel's user_id tag is not shown; a presence member's user_info is bounded", async () => {
    const herald = await startHerald(pusherOptions({ maxPresenceInfoBytes: 64 }));
    try {
      const lib = serverLib(herald);
      const { client, socketId } = await rawPusher(herald);
      client.send({ event: 'pusher:subscribe', data: { channel: 'news' } });
      assert.equal((await client.next()).event, 'pusher_internal:subscription_succeeded');

      // An anonymous Herald JSON client on the same channel: pusher:* and pusher_internal:* names are refused.
      const json = await connect(herald);
      for (const event of ['pusher:signin_success', 'pusher:error', 'pusher_internal:subscription_count', 'PUSHER:error']) {
        const reply = await json.request({ action: 'publish', topic: `pusher:${APP.id}:news`, message: { user_data: '{"id":"admin"}' }, event });
        assert.equal(reply.error?.code, 'bad_request', `${event} refused`);
      }
      await assert.rejects(herald.publish(`pusher:${APP.id}:news`, 'x', 'library', { event: 'pusher:signin_success' }), /reserved/);
      const http = await fetch(`http://127.0.0.1:${herald.port}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: `pusher:${APP.id}:news`, message: 'x', event: 'pusher_internal:member_added' }) });
      assert.equal(http.status, 400);

      // A tag named user_id on a public channel reaches Pusher clients without a user_id (only presence client events carry one).
      assert.equal((await json.request({ action: 'publish', topic: `pusher:${APP.id}:news`, message: 'hi', event: 'note', tags: { user_id: 'admin' } })).error, undefined);
      const note = await client.next();
      assert.equal(note.event, 'note');
      assert.equal(note.user_id, undefined);

      // user_info over maxPresenceInfoBytes: a subscription_error, the connection stays.
      const big = { user_id: 'u1', user_info: { bio: 'x'.repeat(100) } };
      const auth = lib.authorizeChannel(socketId, 'presence-room', big as never);
      client.send({ event: 'pusher:subscribe', data: { channel: 'presence-room', auth: auth.auth, channel_data: auth.channel_data } });
      const refused = await client.next();
      assert.equal(refused.event, 'pusher:subscription_error');
      assert.equal(JSON.parse(refused.data).type, 'LimitReached');
      const small = lib.authorizeChannel(socketId, 'presence-room', { user_id: 'u1', user_info: { n: 1 } });
      client.send({ event: 'pusher:subscribe', data: { channel: 'presence-room', auth: small.auth, channel_data: small.channel_data } });
      assert.equal((await client.next()).event, 'pusher_internal:subscription_succeeded');
      client.close();
      await json.close();
    } finally {
      await herald.close();
    }
  });
});
