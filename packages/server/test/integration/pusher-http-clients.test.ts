import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import Pusher from 'pusher';
import { createRequire } from 'node:module';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { eventually, RedisServer, requireBinary } from '../helpers/servers.js';

/**
 * Pusher's HTTP API with pusher-js clients on the other end: the `pusher`
 * server library triggers through Herald's `/apps/{id}/...`, pusher-js
 * connections (Herald's Pusher protocol at `/app/{key}`) and Herald JSON
 * clients of the mapped topics receive, on every node.
 */

// pusher-js's Node build (its typings describe the browser module's default export).
const PusherClient = createRequire(import.meta.url)('pusher-js') as new (key: string, options: Record<string, unknown>) => any;
type PusherClient = any;
type Channel = any;

const APP = { id: 'app-c', key: 'key-c', secret: 'secret-of-app-c' };

function options(): HeraldOptions {
  return { pusher: { enabled: true, apps: [APP] }, limits: { maxConnectionsPerIp: 5000, connectionsPerSecondPerIp: 5000 } };
}

/** The application's auth endpoint, with the official library: channel authorisations, presence members as `?user=`. */
async function authEndpoint(lib: Pusher): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const params = new URLSearchParams(body);
      const user = new URL(req.url!, 'http://x').searchParams.get('user') ?? 'anonymous';
      const socketId = params.get('socket_id')!;
      if (req.url!.startsWith('/pusher/user-auth')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(lib.authenticateUser(socketId, { id: user })));
        return;
      }
      const channel = params.get('channel_name')!;
      const answer = channel.startsWith('presence-') ? lib.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: user } }) : lib.authorizeChannel(socketId, channel);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

const clients: PusherClient[] = [];
const servers: Server[] = [];

/**
 * Ends the suite's pusher-js clients and auth endpoints while Herald still runs (each describe's `after`, before
 * the file's, which closes Herald): a pusher-js socket closed after the server is gone keeps its close timer.
 */
async function cleanUp(): Promise<void> {
  const sockets = clients.splice(0).map((client) => {
    const socket = client.connection.connection?.transport?.socket;
    client.disconnect();
    return socket && socket.readyState !== 3 ? new Promise<void>((resolve) => socket.addEventListener('close', () => resolve())) : Promise.resolve();
  });
  await deadline(Promise.all(sockets), 5000, 'the pusher-js sockets to close');
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
}

/** A pusher-js client of Herald, connected; `user`: who the auth endpoint says it is. */
async function pusherJs(herald: Herald, auth: string, user = 'anonymous'): Promise<PusherClient> {
  const client = new PusherClient(APP.key, {
    cluster: 'herald',
    wsHost: '127.0.0.1',
    wsPort: herald.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: { endpoint: `${auth}/pusher/auth?user=${user}`, transport: 'ajax' },
    userAuthentication: { endpoint: `${auth}/pusher/user-auth?user=${user}`, transport: 'ajax' },
  });
  clients.push(client);
  await deadline(new Promise<void>((resolve) => client.connection.bind('connected', () => resolve())), 5000, 'pusher-js connected');
  return client;
}

/** Subscribes a pusher-js client and resolves once Herald confirmed it. */
async function subscribed(client: PusherClient, channel: string): Promise<Channel> {
  const ch = client.subscribe(channel);
  await deadline(
    new Promise<void>((resolve, reject) => {
      ch.bind('pusher:subscription_succeeded', () => resolve());
      ch.bind('pusher:subscription_error', (err: unknown) => reject(new Error(`subscription_error: ${JSON.stringify(err)}`)));
    }),
    5000,
    `subscription to ${channel}`,
  );
  return ch;
}

/** Every `event` a pusher-js channel receives, in order, and a way to wait for the next. */
function recorder(channel: Channel, event: string): { got: unknown[]; next(): Promise<unknown> } {
  const got: unknown[] = [];
  let wake: (() => void) | null = null;
  channel.bind(event, (data: unknown) => {
    got.push(data);
    wake?.();
  });
  let cursor = 0;
  return {
    got,
    next: () =>
      deadline(
        (async () => {
          while (cursor >= got.length) await new Promise<void>((resolve) => (wake = resolve));
          return got[cursor++];
        })(),
        5000,
        `a ${event} event`,
      ),
  };
}

async function nextPublication(client: TestClient): Promise<{ topic: string; message: unknown }> {
  for (;;) {
    const frame = await client.next();
    if (frame?.action === 'publish') return frame;
  }
}

describe('the Pusher HTTP API reaching pusher-js clients', () => {
  let herald: Herald;
  let lib: Pusher;
  let auth: string;

  before(async () => {
    herald = await startHerald(options());
    lib = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(herald.port), useTLS: false });
    const endpoint = await authEndpoint(lib);
    servers.push(endpoint.server);
    auth = endpoint.url;
  });
  after(cleanUp);

  it('a trigger reaches pusher-js subscribers with its name and data, and a Herald JSON client of the mapped topic', async () => {
    const client = await pusherJs(herald, auth);
    const events = recorder(await subscribed(client, 'orders'), 'order-placed');
    const json = await connect(herald);
    assert.equal((await json.request({ action: 'subscribe', topic: 'pusher:app-c:orders' })).ok, true);
    await lib.trigger('orders', 'order-placed', { id: 42 });
    assert.deepEqual(await events.next(), { id: 42 });
    assert.deepEqual(await nextPublication(json), { action: 'publish', topic: 'pusher:app-c:orders', message: '{"id":42}', event: 'order-placed' });
    await json.close();
  });

  it('socket_id (a pusher-js socket_id, checked by the library) excludes that connection only', async () => {
    const sender = await pusherJs(herald, auth);
    const other = await pusherJs(herald, auth);
    const mine = recorder(await subscribed(sender, 'chat'), 'said');
    const theirs = recorder(await subscribed(other, 'chat'), 'said');
    assert.match(sender.connection.socket_id, /^\d+\.\d+$/);
    await lib.trigger('chat', 'said', 'first', { socket_id: sender.connection.socket_id });
    assert.equal(await theirs.next(), 'first');
    await lib.trigger('chat', 'said', 'second');
    assert.equal(await theirs.next(), 'second');
    assert.equal(await mine.next(), 'second', 'the sender\'s first event is the second one');
  });

  it('presence: users, user_count and subscription_count of pusher-js members', async () => {
    const ann = await pusherJs(herald, auth, 'ann');
    const ann2 = await pusherJs(herald, auth, 'ann');
    const ben = await pusherJs(herald, auth, 'ben');
    for (const client of [ann, ann2, ben]) await subscribed(client, 'presence-room');
    const info = await (await lib.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } })).json();
    assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });
    const users = await (await lib.get({ path: '/channels/presence-room/users' })).json();
    assert.deepEqual(users.users.map((u: { id: string }) => u.id).sort(), ['ann', 'ben']);
    const list = await (await lib.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
    assert.deepEqual(list, { channels: { 'presence-room': { user_count: 2 } } });
  });

  it('sendToUser reaches a signed-in user; terminate_connections closes the connections signed in as the user, and only those', async () => {
    const dan = await pusherJs(herald, auth, 'dan');
    const dan2 = await pusherJs(herald, auth, 'dan');
    const eve = await pusherJs(herald, auth, 'eve');
    for (const client of [dan, dan2, eve]) {
      client.signin();
      await deadline(client.user.signinDonePromise, 5000, 'signin');
    }
    await eventually(() => herald.userConnections('pusher:app-c:user:dan') === 2, 'dan\'s two connections to be signed in');
    // sendToUser: the event on the user's #server-to-user- channel, which pusher-js holds once signed in.
    await eventually(() => internals(herald).hub.subscriberCount('pusher:app-c:#server-to-user-eve') === 1, 'eve\'s user channel');
    const note = deadline(new Promise((resolve) => eve.user.bind('note', resolve)), 5000, 'eve\'s note');
    await lib.sendToUser('eve', 'note', { to: 'eve' });
    assert.deepEqual(await note, { to: 'eve' });
    const sockets = [dan, dan2].map((client) => client.connection.connection.transport.socket);
    const closed = [dan, dan2].map((client) => deadline(new Promise<void>((resolve) => client.connection.bind('state_change', (s: { current: string }) => s.current !== 'connected' && resolve())), 5000, 'dan\'s connection to leave the connected state'));
    assert.deepEqual(await (await lib.terminateUserConnections('dan')).json(), {});
    await Promise.all(closed);
    // pusher-js answers the server's close by closing its socket again, whose WebSocket driver then waits 30 s
    // (its CLOSE_TIMEOUT) for a close frame that already came: that timer would hold the test process.
    for (const socket of sockets) clearTimeout(socket._closeTimer);
    assert.equal(eve.connection.state, 'connected');
    assert.equal(herald.userConnections('pusher:app-c:user:eve'), 1);
  });
});

describe('the Pusher HTTP API reaching pusher-js clients on two nodes (redis)', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();

  before(async () => {
    if (!skip) await redis.start();
  });
  after(async () => {
    await cleanUp();
    await redis.stop();
  });

  it('a trigger on node 1 reaches a pusher-js client on node 2; channel info from node 1 counts it', async (t) => {
    if (skip) return t.skip(skip);
    const node = async (): Promise<Herald> => {
      const herald = await startHerald({ ...options(), broker: 'redis', redis: { url: redis.url, prefix: 'phc:' }, cluster: { heartbeatInterval: 200, requestTimeout: 3000 } });
      await brokerReady(herald);
      return herald;
    };
    const [one, two] = [await node(), await node()];
    await eventually(() => one.clusterView().length === 2, 'the nodes to know each other');
    const lib = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(one.port), useTLS: false });
    const endpoint = await authEndpoint(lib);
    servers.push(endpoint.server);
    const client = await pusherJs(two, endpoint.url);
    const events = recorder(await subscribed(client, 'far'), 'across');
    await internals(two).whenSubscribed(['pusher:app-c:far']);
    // The event name travels with the publication between nodes (Publication.event in the broker envelope).
    await lib.trigger('far', 'across', 'across nodes');
    assert.equal(await events.next(), 'across nodes');
    assert.deepEqual(await (await lib.get({ path: '/channels/far', params: { info: 'subscription_count' } })).json(), { occupied: true, subscription_count: 1 });
  });
});
