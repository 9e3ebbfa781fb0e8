import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { deadline, startHerald } from '../helpers/helpers.js';
import { APP, authServer, nextEvent, pusherClient, pusherOptions, serverLib, subscribed } from '../helpers/pusher.js';
import { eventually, NatsServer, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';
import { internals } from '../helpers/internals.js';

const clients: any[] = [];
after(() => {
  for (const client of clients) client.disconnect();
});

function track<T>(client: T): T {
  clients.push(client);
  return client;
}

for (const kind of ['redis', 'nats'] as const) {
  describe(`Pusher protocol on two nodes (${kind})`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
    before(async () => {
      if (!skip) await server.start();
    });
    after(() => server.stop());

    async function node(prefix: string): Promise<Herald> {
      const herald = await startHerald(pusherOptions({}, { broker: kind, [kind]: { url: server.url, prefix }, cluster: { heartbeatInterval: 200 } }));
      await deadline(
        new Promise<void>((resolve) => {
          if (internals(herald).broker.state === 'ready') return resolve();
          herald.on('broker', (state) => state === 'ready' && resolve());
        }),
        10_000,
        'broker ready',
      );
      return herald;
    }

    it('an event triggered on one node reaches Pusher clients on both, with its name; client events cross nodes; presence is once per user across the cluster', async (t) => {
      if (skip) return t.skip(skip);
      const prefix = kind === 'redis' ? 'pc1:' : 'pc1.';
      const [a, b] = await Promise.all([node(prefix), node(prefix)]);
      await eventually(() => a.clusterView().length === 2 && b.clusterView().length === 2, 'the two nodes see each other');
      const lib = serverLib(a);
      const auth = await authServer(lib);

      const onA = track(pusherClient(a, auth.url, 'alice'));
      const onB = track(pusherClient(b, auth.url, 'bob'));
      const [newsA, newsB] = await Promise.all([subscribed(onA, 'news'), subscribed(onB, 'news')]);
      const gotA = nextEvent(newsA, 'headline');
      const gotB = nextEvent(newsB, 'headline');
      await lib.trigger('news', 'headline', { n: 1 });
      assert.deepEqual(await Promise.all([gotA, gotB]), [{ n: 1 }, { n: 1 }], 'both nodes, the event name carried by the broker');

      // Presence: alice on A, bob on B, a second connection of bob on A.
      const roomA = await subscribed(onA, 'presence-room');
      const added = nextEvent(roomA, 'pusher:member_added');
      const roomB = await subscribed(onB, 'presence-room');
      assert.deepEqual(await added, { id: 'bob', info: { name: 'User bob' } }, 'a member on the other node is announced');
      await eventually(() => roomB.members.count === 2, "bob's list holds alice, who is on the other node");
      const seen: string[] = [];
      roomA.bind('pusher:member_added', (m: { id: string }) => seen.push(`+${m.id}`));
      const bob2 = track(pusherClient(a, auth.url, 'bob'));
      const room2 = await subscribed(bob2, 'presence-room');
      assert.equal(room2.members.count, 2, 'bob twice is one member');
      await eventually(() => a.presence(`pusher:${APP.id}:presence-room`).connections === 3 && b.presence(`pusher:${APP.id}:presence-room`).connections === 3, 'both nodes count three connections');
      assert.equal(a.presence(`pusher:${APP.id}:presence-room`).users, 2);
      assert.equal(b.presence(`pusher:${APP.id}:presence-room`).users, 2);

      // A client event from B reaches A's subscriber, with its user_id.
      const wave = deadline(new Promise<unknown[]>((resolve) => roomA.bind('client-wave', (data: unknown, meta: unknown) => resolve([data, meta]))), 10_000, 'client-wave on node A');
      roomB.trigger('client-wave', { from: 'B' });
      assert.deepEqual(await wave, [{ from: 'B' }, { user_id: 'bob' }]);

      // bob leaves on B but stays on A: no member_removed; then his last connection leaves: one.
      const removed = nextEvent(roomA, 'pusher:member_removed', 10_000);
      onB.unsubscribe('presence-room');
      await eventually(() => a.presence(`pusher:${APP.id}:presence-room`).connections === 2, 'node A saw the leave');
      bob2.unsubscribe('presence-room');
      assert.deepEqual(await removed, { id: 'bob', info: { name: 'User bob' } });
      assert.deepEqual(seen, [], 'no member_added for a second connection of a member');
      auth.server.close();
    });
  });
}
