import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode, type Herald, type HeraldOptions } from '../../src/index.js';
import { connect, deadline, startHerald, type TestClient } from '../helpers/helpers.js';
import { eventually } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';

/**
 * One policy for every protocol: the same cases run over the JSON protocol
 * and LHTTP, and must come out the same (identity, anonymous policy,
 * clientPublish, topic permissions, command rate, topic limit, subscription
 * churn and the presence events it causes).
 */

interface Speaker {
  name: 'json' | 'lhttp';
  /** Opens a connection, identified by `uid` (a token on the URL) or anonymous. */
  open(herald: Herald, uid?: string): Promise<TestClient>;
  subscribe(client: TestClient, topics: string[]): void;
  unsubscribe(client: TestClient, topic: string): void;
  publish(client: TestClient, topic: string, text: string): void;
  /** The error code of a refusal frame, or null when the frame is not one. */
  refusal(frame: unknown): string | null;
  /** The text of a publication frame on `topic`, or null. */
  publication(frame: unknown, topic: string): string | null;
}

const LHTTP_ERROR = /^LHTTP\/1\.0 error\r\ncode:([a-z_]+)\r\n/;

async function tokenPath(path: string, uid: string | undefined): Promise<string> {
  return uid === undefined ? path : `${path}?token=${await signToken({ sub: uid })}`;
}

const speakers: Speaker[] = [
  {
    name: 'json',
    open: async (herald, uid) => connect(herald, { path: await tokenPath('/ws', uid) }),
    subscribe: (client, topics) => client.send({ action: 'subscribe', topics }),
    unsubscribe: (client, topic) => client.send({ action: 'unsubscribe', topic }),
    publish: (client, topic, text) => client.send({ action: 'publish', topic, message: text }),
    refusal: (frame) => ((frame as { action?: string }).action === 'error' ? ((frame as { error: { code: string } }).error.code ?? null) : null),
    publication: (frame, topic) => {
      const f = frame as { action?: string; topic?: string; message?: unknown };
      return f.action === 'publish' && f.topic === topic ? String(f.message) : null;
    },
  },
  {
    name: 'lhttp',
    open: async (herald, uid) => connect(herald, { path: await tokenPath('/', uid) }),
    subscribe: (client, topics) => client.send(`LHTTP/1.0 chat\r\nsubscribe:${topics.join(' ')}\r\n\r\n`),
    unsubscribe: (client, topic) => client.send(`LHTTP/1.0 chat\r\nunsubscribe:${topic}\r\n\r\n`),
    publish: (client, topic, text) => client.send(`LHTTP/1.0 chat\r\npublish:${topic}\r\n\r\n${text}`),
    refusal: (frame) => (typeof frame === 'string' ? (LHTTP_ERROR.exec(frame)?.[1] ?? null) : null),
    publication: (frame, topic) => {
      if (typeof frame !== 'string') return null;
      const [head, body] = frame.split('\r\n\r\n') as [string, string];
      return head.split('\r\n').includes(`publish:${topic}`) ? body : null;
    },
  },
];

/** A JSON connection that watches a topic (the observer every case reads from). */
async function watcher(herald: Herald, topic: string, uid?: string): Promise<TestClient> {
  const client = await connect(herald, { path: await tokenPath('/ws', uid) });
  assert.equal((await client.request({ action: 'subscribe', topic })).ok, true);
  return client;
}

const publicationsOn = (client: TestClient, topic: string): unknown[] => client.received.filter((f) => (f as { action?: string; topic?: string }).action === 'publish' && (f as { topic?: string }).topic === topic);

for (const speaker of speakers) {
  describe(`policy over ${speaker.name}`, () => {
    // A long login window: a refusal must come from the policy, at once, not from the login deadline.
    const members: HeraldOptions = { auth: { anonymous: false, loginTimeout: 60_000, jwt: { secret: SECRET } } };

    it('anonymous refused: without identity, nothing is subscribed and a members-only publication is not received', async () => {
      const herald = await startHerald(members);
      const member = await watcher(herald, 'members', 'ann');
      const stranger = await speaker.open(herald);
      speaker.subscribe(stranger, ['members']);
      if (speaker.name === 'lhttp') {
        // LHTTP cannot log in after opening: the connection is refused before any of its frames is handled.
        const closed = await deadline(stranger.closed, 2000, 'the refusal');
        assert.equal(closed.code, CloseCode.UNAUTHORIZED);
        assert.match(closed.reason, /login required/);
      } else {
        assert.equal(speaker.refusal(await stranger.next()), 'unauthorized');
      }
      await herald.publish('members', 'secret');
      assert.equal((await member.next()).message, 'secret');
      if (speaker.name === 'json') assert.equal((await stranger.request({ action: 'ping' })).ok, true);
      assert.deepEqual(publicationsOn(stranger, 'members'), []);
      assert.equal(internals(herald).hub.subscriberCount('members'), 1);

      // With a token on its URL, the same protocol is a member.
      const ann = await speaker.open(herald, 'ann');
      speaker.subscribe(ann, ['members']);
      await eventually(() => internals(herald).hub.subscriberCount('members') === 2, 'the member to subscribe');
      await herald.publish('members', 'welcome');
      assert.equal(speaker.publication(await ann.next(), 'members'), 'welcome');
      await herald.close();
    });

    it('publishing to another user\'s topic is refused, during the login window and after logging in', async () => {
      const herald = await startHerald(members);
      const alice = await watcher(herald, 'user:alice', 'alice');
      const stranger = await speaker.open(herald);
      speaker.publish(stranger, 'user:alice', 'forged while anonymous');
      if (speaker.name === 'lhttp') assert.equal((await deadline(stranger.closed, 2000, 'the refusal')).code, CloseCode.UNAUTHORIZED);
      else assert.equal(speaker.refusal(await stranger.next()), 'unauthorized');
      const bob = await speaker.open(herald, 'bob');
      speaker.publish(bob, 'user:alice', 'forged by bob');
      assert.equal(speaker.refusal(await bob.next()), 'forbidden');
      await herald.publish('user:alice', 'the real one');
      assert.deepEqual(await alice.next(), { action: 'publish', topic: 'user:alice', message: 'the real one' });
      await herald.close();
    });

    it('clientPublish and private topics: an anonymous connection may not publish or read what needs a login or a grant', async () => {
      const herald = await startHerald({ clientPublish: 'authenticated', auth: { jwt: { secret: SECRET } } });
      const reader = await watcher(herald, 'news');
      const anon = await speaker.open(herald);
      speaker.publish(anon, 'news', 'anonymous news');
      assert.equal(speaker.refusal(await anon.next()), 'forbidden');
      speaker.subscribe(anon, ['private:board']);
      assert.equal(speaker.refusal(await anon.next()), 'forbidden');
      const carol = await speaker.open(herald, 'carol');
      speaker.publish(carol, 'news', 'from carol');
      assert.equal((await reader.next()).message, 'from carol');
      assert.equal(publicationsOn(reader, 'news').length, 1, 'the anonymous publication never reached it');
      assert.equal(internals(herald).hub.subscriberCount('private:board'), 0);
      await herald.close();
    });

    it('the command rate limit applies to every frame', async () => {
      const herald = await startHerald({ limits: { commandsPerSecond: 5, commandBurst: 10 } });
      const reader = await watcher(herald, 'flood');
      const flooder = await speaker.open(herald);
      const sent = 50;
      for (let i = 0; i < sent; i++) speaker.publish(flooder, 'flood', `m${i}`);
      const refusals = (): string[] => flooder.received.map((f) => speaker.refusal(f)).filter((code): code is string => code !== null);
      // Every frame is either delivered or refused.
      await eventually(() => refusals().length + publicationsOn(reader, 'flood').length === sent, 'every frame to be handled');
      const delivered = publicationsOn(reader, 'flood').length;
      assert.ok(delivered >= 10 && delivered <= 15, `the burst and its refill pass (${delivered})`);
      assert.ok(refusals().every((code) => code === 'rate_limited'), refusals().join(','));
      // The neighbour is not affected.
      assert.equal((await reader.request({ action: 'ping' })).ok, true);
      await herald.close();
    });

    it('the per-connection topic limit applies', async () => {
      const herald = await startHerald({ limits: { maxTopicsPerConnection: 2 } });
      const client = await speaker.open(herald);
      speaker.subscribe(client, ['t1', 't2']);
      speaker.subscribe(client, ['t3']);
      assert.equal(speaker.refusal(await client.next()), 'too_many_topics');
      assert.deepEqual([internals(herald).hub.subscriberCount('t1'), internals(herald).hub.subscriberCount('t2'), internals(herald).hub.subscriberCount('t3')], [1, 1, 0]);
      await herald.close();
    });

    it('subscription churn, and the join/leave events it causes, are bounded per connection', async () => {
      const herald = await startHerald({ limits: { subscriptionsPerSecond: 1, subscriptionBurst: 3 }, presence: [{ pattern: 'room', joinLeave: true }] });
      const observer = await watcher(herald, 'room');
      const churner = await speaker.open(herald);
      const rounds = 10;
      for (let i = 0; i < rounds; i++) {
        speaker.subscribe(churner, ['room']);
        speaker.unsubscribe(churner, 'room');
      }
      const joins = (): number => observer.received.filter((f) => (f as { action?: string }).action === 'join').length;
      const refused = (): string[] => churner.received.map((f) => speaker.refusal(f)).filter((code): code is string => code !== null && code !== 'not_subscribed');
      await eventually(() => joins() + refused().length === rounds, 'every subscribe to be handled');
      assert.ok(joins() >= 3 && joins() <= 4, `the burst passes, not more (${joins()} joins)`);
      assert.ok(refused().every((code) => code === 'rate_limited'), refused().join(','));
      await herald.close();
    });
  });
}

describe('LHTTP: one message naming many topics', () => {
  it('a publish header pays one command per topic: one frame naming a topic 1,000 times does not publish 1,000 times', async () => {
    const herald = await startHerald({ limits: { commandsPerSecond: 5, commandBurst: 10 } });
    const reader = await watcher(herald, 'room');
    const flooder = await speakers[1]!.open(herald);
    const topics = 1000;
    flooder.send(`LHTTP/1.0 chat\r\npublish:${Array(topics).fill('room').join(' ')}\r\n\r\nx`);
    const refusal = await deadline(flooder.next(), 5000, 'the refusal of the topics over the rate');
    assert.equal(speakers[1]!.refusal(refusal), 'rate_limited');
    // The reader's reply comes after every publication made before it.
    assert.equal((await reader.request({ action: 'ping' })).ok, true);
    // The frame paid for its first topic and each further one was charged: the burst and a little refill pass, and publishing stops at the refusal.
    const delivered = publicationsOn(reader, 'room').length;
    assert.ok(delivered >= 10 && delivered <= 12, `the burst passes, not the ${topics} topics (${delivered})`);
    await herald.close();
  });
});
