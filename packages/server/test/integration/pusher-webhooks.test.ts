import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { rendezvousOwner } from '../../src/events/transitions.js';
import { deadline, startHerald } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { APP, authServer, nextEvent, pusherClient, pusherOptions, serverLib, subscribed, type PusherServerLib } from '../helpers/pusher.js';
import { eventually, NatsServer, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';

type PusherEvent = { name: string; channel: string; user_id?: string; event?: string; data?: string; socket_id?: string };

/**
 * An app's webhook endpoint as an application writes it with the official
 * `pusher` library: `pusher.webhook({headers, rawBody}).isValid()` checks
 * X-Pusher-Key and X-Pusher-Signature; invalid requests get 401. `answers`
 * scripts statuses (then 200). Records every valid request's events, in order.
 */
class PusherWebhookReceiver {
  readonly events: PusherEvent[] = [];
  readonly requests: Array<{ valid: boolean; status: number; body: string; headers: Record<string, unknown> }> = [];
  answers: number[] = [];
  private readonly changed = new EventEmitter();
  private server: Server | null = null;
  url = '';

  constructor(private readonly lib: PusherServerLib & { webhook(request: { headers: Record<string, unknown>; rawBody: string }): any }) {}

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        const hook = this.lib.webhook({ headers: request.headers, rawBody: body });
        const valid = hook.isValid() as boolean;
        const status = valid ? (this.answers.shift() ?? 200) : 401;
        this.requests.push({ valid, status, body, headers: request.headers });
        if (valid && status === 200) this.events.push(...(hook.getEvents() as PusherEvent[]));
        response.writeHead(status).end();
        this.changed.emit('request');
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/pusher/webhooks`;
  }

  of(name: string, channel?: string): PusherEvent[] {
    return this.events.filter((event) => event.name === name && (channel === undefined || event.channel === channel));
  }

  /** Resolves once `check` holds, re-checked after each request. */
  async until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (check()) return;
    await deadline(
      new Promise<void>((resolve) => {
        const onRequest = (): void => {
          if (!check()) return;
          this.changed.off('request', onRequest);
          resolve();
        };
        this.changed.on('request', onRequest);
      }),
      ms,
      what,
    );
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const clients: any[] = [];
after(() => {
  for (const client of clients) client.disconnect();
});
function track<T>(client: T): T {
  clients.push(client);
  return client;
}

describe('Pusher webhooks', () => {
  let herald: Herald;
  let lib: ReturnType<typeof serverLib>;
  let receiver: PusherWebhookReceiver;
  let auth: Awaited<ReturnType<typeof authServer>>;

  before(async () => {
    // The receiver's library knows the app's key and secret; Herald is started with its URL.
    receiver = new PusherWebhookReceiver(serverLib({ port: 1 } as Herald) as never);
    await receiver.start();
    herald = await startHerald(pusherOptions({ webhooks: [{ url: receiver.url }] }));
    lib = serverLib(herald);
    auth = await authServer(lib);
  });
  after(async () => {
    auth.server.close();
    await herald.close();
    await receiver.stop();
  });

  it('channel_occupied/vacated, member_added/removed, client_event and cache_miss, signed as the pusher library verifies, retried until acknowledged', async () => {
    // The first request is answered 500: the same events come again.
    receiver.answers = [500];
    const alice = track(pusherClient(herald, auth.url, 'alice'));
    const news = await subscribed(alice, 'news');
    await receiver.until(() => receiver.of('channel_occupied', 'news').length === 1, 'channel_occupied news');
    assert.equal(receiver.requests[0]!.status, 500, 'the first attempt was refused');
    assert.equal(receiver.requests[0]!.valid, true);
    assert.equal(receiver.requests[0]!.headers['x-pusher-key'], APP.key);
    const body = JSON.parse(receiver.requests[1]!.body) as { time_ms: number; events: unknown[] };
    assert.equal(typeof body.time_ms, 'number');

    // Presence: two connections of bob are one member.
    const room = await subscribed(alice, 'presence-room');
    const bob1 = track(pusherClient(herald, auth.url, 'bob'));
    const bob2 = track(pusherClient(herald, auth.url, 'bob'));
    const joined = nextEvent(room, 'pusher:member_added');
    await subscribed(bob1, 'presence-room');
    await joined;
    await subscribed(bob2, 'presence-room');
    await receiver.until(() => receiver.of('member_added', 'presence-room').length === 2, 'member_added alice and bob');
    assert.deepEqual(receiver.of('member_added', 'presence-room').map((e) => e.user_id).sort(), ['alice', 'bob']);

    // A client event on the presence channel: its event, data, socket id and user id.
    room.trigger('client-wave', { hello: 1 });
    await receiver.until(() => receiver.of('client_event').length === 1, 'client_event');
    const wave = receiver.of('client_event')[0]!;
    assert.equal(wave.channel, 'presence-room');
    assert.equal(wave.event, 'client-wave');
    assert.deepEqual(JSON.parse(wave.data!), { hello: 1 });
    assert.equal(wave.socket_id, alice.connection.socket_id);
    assert.equal(wave.user_id, 'alice');

    // A cache channel without an event yet.
    const miss = nextEvent(alice, 'pusher:cache_miss');
    alice.subscribe('cache-price');
    await miss;
    await receiver.until(() => receiver.of('cache_miss', 'cache-price').length === 1, 'cache_miss');

    // bob's first connection leaves: still a member; his last leaves: member_removed once.
    bob1.unsubscribe('presence-room');
    const left = nextEvent(room, 'pusher:member_removed');
    bob2.unsubscribe('presence-room');
    await left;
    await receiver.until(() => receiver.of('member_removed', 'presence-room').length === 1, 'member_removed bob');
    assert.equal(receiver.of('member_removed', 'presence-room')[0]!.user_id, 'bob');

    // The last subscriber of news leaves.
    alice.unsubscribe('news');
    void news;
    await receiver.until(() => receiver.of('channel_vacated', 'news').length === 1, 'channel_vacated news');
    for (const request of receiver.requests) assert.equal(request.valid, true, 'every request verifies');
    assert.equal(receiver.of('channel_occupied', 'news').length, 1);
    assert.equal(receiver.of('member_added', 'presence-room').length, 2, 'no member_added for a second connection of bob');
  });

  it('a webhook signed with another secret does not verify with the app secret (the library refuses it)', () => {
    const body = JSON.stringify({ time_ms: Date.now(), events: [{ name: 'channel_occupied', channel: 'x' }] });
    const forged = (serverLib({ port: 1 } as Herald) as never as { webhook(r: unknown): any }).webhook({
      headers: { 'x-pusher-key': APP.key, 'x-pusher-signature': 'f'.repeat(64), 'content-type': 'application/json' },
      rawBody: body,
    });
    assert.equal(forged.isValid(), false);
    const valid = receiver.requests.find((request) => request.valid)!;
    const tampered = (serverLib({ port: 1 } as Herald) as never as { webhook(r: unknown): any }).webhook({ headers: valid.headers, rawBody: valid.body.replace('"name"', ' "name"') });
    assert.equal(tampered.isValid(), false, 'a tampered body');
  });
});

for (const kind of ['redis', 'nats'] as const) describe(`Pusher webhooks on two nodes (${kind})`, () => {
  const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
  const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
  const receiver = new PusherWebhookReceiver(serverLib({ port: 1 } as Herald) as never);
  before(async () => {
    if (skip) return;
    await Promise.all([server.start(), receiver.start()]);
  });
  after(() => Promise.all([server.stop(), receiver.stop()]));

  it('fire once per cluster: occupancy and members with subscribers on both nodes', async (t) => {
    if (skip) return t.skip(skip);
    const options = pusherOptions({ webhooks: [{ url: receiver.url, events: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }] }, { broker: kind, [kind]: { url: server.url, prefix: kind === 'redis' ? 'pw1:' : 'pw1.' }, cluster: { heartbeatInterval: 150 } });
    const nodes = await Promise.all([startHerald(options), startHerald(options)]);
    try {
      await eventually(() => nodes.every((node) => internals(node).cluster.candidates().length === 2), 'both nodes ready on both', 15_000);
      const auth = await authServer(serverLib(nodes[0]!));
      const [a, b] = nodes as [Herald, Herald];
      const onA = track(pusherClient(a, auth.url, 'carol'));
      const onB = track(pusherClient(b, auth.url, 'carol'));
      await Promise.all([subscribed(onA, 'presence-lobby'), subscribed(onB, 'presence-lobby')]);

      // A marker channel occupied on each node's own, after the lobby: each node's queue is in order, so
      // once both markers arrived, every lobby event either node emitted has arrived.
      const markers = [a, b].map((node) => {
        let i = 0;
        while (rendezvousOwner(internals(a).cluster.candidates(), `t\npusher:${APP.id}:marker-up-${i}`) !== node.nodeId) i++;
        return `marker-up-${i}`;
      });
      await Promise.all(markers.map((channel) => subscribed(onA, channel)));
      await receiver.until(() => markers.every((channel) => receiver.of('channel_occupied', channel).length > 0), 'both markers');
      assert.equal(receiver.of('channel_occupied', 'presence-lobby').length, 1, 'occupied once for the cluster');
      assert.equal(receiver.of('member_added', 'presence-lobby').length, 1, 'carol on two nodes is one member, added once');

      onA.unsubscribe('presence-lobby');
      onB.unsubscribe('presence-lobby');
      await receiver.until(() => receiver.of('channel_vacated', 'presence-lobby').length > 0 && receiver.of('member_removed', 'presence-lobby').length > 0, 'vacated and removed');
      for (const channel of markers) onA.unsubscribe(channel);
      await receiver.until(() => markers.every((channel) => receiver.of('channel_vacated', channel).length > 0), 'both markers vacated');
      assert.equal(receiver.of('channel_vacated', 'presence-lobby').length, 1, 'vacated once');
      assert.equal(receiver.of('member_removed', 'presence-lobby').length, 1, 'removed once');
      assert.equal(receiver.requests.every((request) => request.valid), true);
      auth.server.close();
    } finally {
      await Promise.all(nodes.map((node) => node.close()));
    }
  });
});
