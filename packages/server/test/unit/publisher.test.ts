import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Publication, PublishResult } from '../../src/broker/broker.js';
import { validateConfig, type HeraldConfigInput } from '../../src/config.js';
import { HeraldError } from '../../src/errors.js';
import { MemoryHistory, type HistoryStore } from '../../src/history/history.js';
import { LatestValues } from '../../src/history/latest.js';
import { Hub } from '../../src/hub/hub.js';
import { Metrics, type MetricsSource } from '../../src/metrics/metrics.js';
import { Publisher } from '../../src/publish/publisher.js';
import { Pusher } from '../../src/publish/push.js';
import { FakeBroker } from '../helpers/fake-broker.js';
import { FakeSharedStore } from '../helpers/fake-history.js';
import { FakeSessionHost, RecordingCodec, fakeSession } from '../helpers/fake-session.js';
import type { FakeTransport } from '../helpers/fake-transport.js';

const METRICS_SOURCE: MetricsSource = {
  connectionsByProtocol: () => new Map(),
  topics: () => 0,
  subscriptions: () => 0,
  users: () => 0,
  queuedBytes: () => [],
  brokerName: () => 'fake',
  brokerReady: () => true,
};

/**
 * A fake broker that also records how many local deliveries the hub had made
 * when each publication reached it (local first means: before), and fails
 * the publications it is told to (by their number, from 1) or all of them.
 */
class WatchingBroker extends FakeBroker {
  readonly deliveriesAtPublish: number[] = [];
  failing = new Set<number>();
  private count = 0;
  hub: Hub | undefined;

  override async publish(publication: Publication): Promise<PublishResult> {
    this.count++;
    this.deliveriesAtPublish.push(this.hub?.deliveries ?? -1);
    if (this.failing.has(this.count)) throw new Error('broker is down');
    return super.publish(publication);
  }
}

const value = async (metric: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}): Promise<number> => {
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
};

function setup(options: { config?: HeraldConfigInput; history?: HistoryStore } = {}) {
  const config = validateConfig(options.config ?? { history: [{ pattern: 'h:*' }] });
  const broker = new WatchingBroker();
  const hub = new Hub({ onTopicOpened: () => undefined, onTopicClosed: () => undefined });
  broker.hub = hub;
  const metrics = new Metrics(METRICS_SOURCE);
  const history = options.history ?? new MemoryHistory(config.historyMaxBytes);
  let closing = false;
  const publisher = new Publisher({
    config,
    broker,
    history,
    hub,
    metrics,
    latest: new LatestValues(config.historyMaxBytes),
    topicProblem: (topic) => (topic.startsWith('bad') ? `${topic} is not a topic` : null),
    closing: () => closing,
  });
  const host = new FakeSessionHost();
  const codec = new RecordingCodec('c');
  const subscriber = (topic: string, id?: string): FakeTransport => {
    const { session, transport } = fakeSession({ id, codec, host });
    hub.add(session);
    hub.subscribe(session, topic);
    return transport;
  };
  const frames = (transport: FakeTransport): string[] => {
    host.flush();
    return transport.texts();
  };
  return { config, broker, hub, metrics, history, publisher, subscriber, frames, host, codec, shutDown: () => (closing = true) };
}

const refusal = (code: string, message: string | RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof HeraldError, `a HeraldError: ${String(err)}`);
  assert.equal(err.code, code);
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  return true;
};

describe('Publisher: the path of a publication', () => {
  it('without a shared store: this node first, then the broker; the message is JSON-encoded once', async () => {
    const { publisher, broker, subscriber, frames } = setup();
    const local = subscriber('news');
    const result = await publisher.publish('news', { headline: 'x' });
    assert.deepEqual(result, {}, 'no history: no position');
    assert.deepEqual(broker.deliveriesAtPublish, [1], 'delivered here before the broker saw it');
    assert.deepEqual(broker.published, [{ topic: 'news', payload: '{"headline":"x"}' }]);
    assert.deepEqual(frames(local), ['c:pub news {"headline":"x"}']);
    assert.equal(publisher.publications, 1);
  });

  it('a topic with history (memory store) gets its offset and epoch, here and for the other nodes', async () => {
    const { publisher, broker, subscriber, frames } = setup();
    const local = subscriber('h:1');
    const first = await publisher.publish('h:1', 'a');
    const second = await publisher.publish('h:1', 'b');
    assert.equal(first.offset, 1);
    assert.equal(second.offset, 2);
    assert.equal(first.epoch, second.epoch);
    assert.deepEqual(broker.published.map((p) => [p.offset, p.epoch]), [
      [1, first.epoch],
      [2, first.epoch],
    ]);
    assert.deepEqual(frames(local), [`c:pub h:1 "a" @1/${first.epoch}`, `c:pub h:1 "b" @2/${first.epoch}`]);
  });

  it("with a store that publishes: the store's append is the whole path (no local delivery, no broker), the key goes to the store", async () => {
    const store = new FakeSharedStore();
    const { publisher, broker, subscriber, frames, config } = setup({ history: store });
    const local = subscriber('h:1');
    const result = await publisher.publish('h:1', { n: 1 }, 'http', { idempotencyKey: 'k1' });
    assert.deepEqual(result, { offset: 1, epoch: 'E1' });
    assert.deepEqual(store.appends, [{ topic: 'h:1', payload: '{"n":1}', lhttp: undefined, idempotency: { key: 'k1', window: config.idempotencyWindow } }]);
    assert.deepEqual(broker.published, []);
    assert.deepEqual(frames(local), [], 'this node gets it back from the broker, in offset order');
    assert.equal(publisher.publications, 1);
    // A topic without a history rule still takes the local-first path.
    await publisher.publish('plain', 1);
    assert.equal(broker.published.length, 1);
    assert.equal(store.appends.length, 1);
  });

  it('a broker that does not take it: unavailable, saying how many connections here got it', async () => {
    const { publisher, broker, subscriber, frames } = setup();
    const a = subscriber('news');
    subscriber('news');
    broker.failing.add(1);
    await assert.rejects(publisher.publish('news', 1), refusal('unavailable', 'broker is down: delivered to 2 connection(s) on this node only, not to other nodes'));
    assert.deepEqual(frames(a), ['c:pub news 1'], 'local delivery kept working');
  });

  it('refuses a bad topic (invalid_topic) before anything else, and everything while shutting down (unavailable)', async () => {
    const { publisher, broker, subscriber, frames, shutDown } = setup();
    const local = subscriber('news');
    await assert.rejects(publisher.publish('bad!', 1), refusal('invalid_topic', 'bad! is not a topic'));
    shutDown();
    await assert.rejects(publisher.publish('bad!', 1), refusal('invalid_topic', 'bad! is not a topic'));
    await assert.rejects(publisher.publish('news', 1), refusal('unavailable', 'server is shutting down'));
    assert.deepEqual(broker.published, []);
    assert.deepEqual(frames(local), []);
  });

  it('receive hands another node\'s publication to local subscribers only', async () => {
    const { publisher, broker, subscriber, frames, metrics } = setup();
    const local = subscriber('news');
    publisher.receive({ topic: 'news', payload: '"from afar"' });
    assert.deepEqual(frames(local), ['c:pub news "from afar"']);
    assert.deepEqual(broker.published, []);
    assert.equal(publisher.publications, 0, 'not made on this node');
    assert.equal(await value(metrics.published, { source: 'broker' }), 1);
  });

  it('counts deliveries, and drops for subscribers that could not take it', async () => {
    const { publisher, subscriber, metrics, hub } = setup();
    subscriber('news');
    subscriber('news', 'closing-one');
    hub.sessions.get('closing-one')!.close(1000, 'bye');
    await publisher.publish('news', 1, 'client');
    assert.equal(await value(metrics.published, { source: 'client' }), 1);
    assert.equal(await value(metrics.delivered), 1);
    assert.equal(await value(metrics.dropped), 1);
  });
});

describe('Publisher: messages', () => {
  it('a message must be a JSON value', async () => {
    const { publisher } = setup();
    await assert.rejects(publisher.publish('news', undefined), refusal('bad_request', 'message must be a JSON value'));
    await assert.rejects(publisher.publish('news', () => 1), refusal('bad_request', 'message must be a JSON value'));
    await assert.rejects(publisher.publish('news', { n: 1n }), refusal('bad_request', /^message is not serialisable as JSON: /));
  });

  it('the size limit is on the UTF-8 bytes of the JSON text: exactly the limit passes, one byte more does not', () => {
    const { publisher } = setup({ config: { limits: { maxMessageBytes: 64 } } });
    assert.equal(publisher.encodeMessage('x'.repeat(62)).length, 64);
    assert.throws(() => publisher.encodeMessage('x'.repeat(63)), refusal('too_large', 'message is 65 bytes, over the limit of 64'));
    assert.equal(Buffer.byteLength(publisher.encodeMessage('é'.repeat(31))), 64);
    assert.throws(() => publisher.encodeMessage('é'.repeat(32)), refusal('too_large', 'message is 66 bytes, over the limit of 64'), 'counted in bytes, not characters');
  });

  it('the JSON text is escaped for HTML contexts (< > & and the line separators)', () => {
    const { publisher } = setup();
    const payload = publisher.encodeMessage('<script>&\u2028');
    assert.ok(!/[<>&\u2028]/.test(payload), payload);
    assert.equal(JSON.parse(payload), '<script>&\u2028');
  });
});

describe('Publisher: idempotency', () => {
  it('a retry with the same key on the same topic publishes nothing and answers the first result', async () => {
    const { publisher, broker } = setup();
    const first = await publisher.publish('h:1', 'a', 'http', { idempotencyKey: 'k' });
    const again = await publisher.publish('h:1', 'changed', 'http', { idempotencyKey: 'k' });
    assert.deepEqual(again, first);
    assert.equal(broker.published.length, 1);
    const elsewhere = await publisher.publish('h:2', 'a', 'http', { idempotencyKey: 'k' });
    assert.equal(elsewhere.offset, 1, 'keys are per topic');
    assert.equal(broker.published.length, 2);
  });

  it('a failed publication is not remembered: the retry publishes', async () => {
    const { publisher, broker } = setup();
    broker.failing.add(1);
    await assert.rejects(publisher.publish('news', 1, 'http', { idempotencyKey: 'k' }), refusal('unavailable', /broker is down/));
    await publisher.publish('news', 1, 'http', { idempotencyKey: 'k' });
    assert.equal(broker.published.length, 1);
  });

  it('a refused publication (bad topic) is not remembered either', async () => {
    const { publisher } = setup();
    await assert.rejects(publisher.publish('bad', 1, 'http', { idempotencyKey: 'k' }));
    assert.equal(publisher.idempotency.size, 0);
  });
});

describe('Publisher.publishMany', () => {
  it('publishes every item in order, one result each', async () => {
    const { publisher, broker } = setup();
    const results = await publisher.publishMany([
      { topic: 'h:1', message: 'a' },
      { topic: 'plain', message: 'b' },
      { topic: 'h:1', message: 'c' },
    ]);
    assert.deepEqual(results.map((r) => r.offset), [1, undefined, 2]);
    assert.deepEqual(broker.published.map((p) => p.payload), ['"a"', '"b"', '"c"']);
  });

  it('checks every item before publishing any: a bad one anywhere publishes nothing, named by its index or label', async () => {
    const { publisher, broker } = setup({ config: { limits: { maxMessageBytes: 16 } } });
    await assert.rejects(publisher.publishMany([{ topic: 'a', message: 1 }, { topic: 'b', message: 2 }, { topic: 'bad', message: 3 }]), refusal('invalid_topic', 'item 2: bad is not a topic'));
    await assert.rejects(publisher.publishMany([{ topic: 'a', message: 1 }, { topic: 'b', message: 'x'.repeat(20), label: 'line 7' }]), refusal('too_large', 'line 7: message is 22 bytes, over the limit of 16'));
    await assert.rejects(publisher.publishMany([{ topic: 'a', message: 1 }, { topic: 'b', message: undefined }]), refusal('bad_request', 'item 1: message must be a JSON value'));
    assert.deepEqual(broker.published, []);
  });

  it('a batch of one names no item', async () => {
    const { publisher } = setup();
    await assert.rejects(publisher.publishMany([{ topic: 'bad', message: 1 }]), refusal('invalid_topic', 'bad is not a topic'));
    await assert.rejects(publisher.publishMany([{ topic: 'bad', message: 1, label: 'mine' }]), refusal('invalid_topic', 'mine: bad is not a topic'));
  });

  it('when the broker fails half way, the earlier items stay published and the error says how many', async () => {
    const { publisher, broker } = setup();
    broker.failing.add(3);
    const items = ['a', 'b', 'c', 'd'].map((message) => ({ topic: 'news', message }));
    await assert.rejects(publisher.publishMany(items), refusal('unavailable', 'item 2: broker is down: delivered to 0 connection(s) on this node only, not to other nodes (the 2 before it were published, the rest were not)'));
    assert.deepEqual(broker.published.map((p) => p.payload), ['"a"', '"b"']);
    assert.equal(publisher.publications, 3, 'the third was made (and delivered here) before the broker refused it; the fourth never was');
  });

  it('a failure on the first item says nothing was published; a batch of one fails with the plain error', async () => {
    const { publisher, broker } = setup();
    broker.failing = new Set([1, 2]);
    await assert.rejects(publisher.publishMany([{ topic: 'x', message: 1 }, { topic: 'y', message: 2 }]), refusal('unavailable', /^item 0: broker is down: .* \(nothing was published\)$/));
    await assert.rejects(publisher.publishMany([{ topic: 'x', message: 1 }]), refusal('unavailable', 'broker is down: delivered to 0 connection(s) on this node only, not to other nodes'));
  });

  it('shutting down refuses the items as they come', async () => {
    const { publisher, broker, shutDown } = setup();
    shutDown();
    await assert.rejects(publisher.publishMany([{ topic: 'x', message: 1 }, { topic: 'y', message: 2 }]), refusal('unavailable', 'item 0: server is shutting down (nothing was published)'));
    assert.deepEqual(broker.published, []);
  });

  it('items with an idempotency key are remembered like single publications', async () => {
    const { publisher, broker } = setup();
    const [first] = await publisher.publishMany([{ topic: 'h:1', message: 'a', idempotencyKey: 'k' }]);
    const results = await publisher.publishMany([
      { topic: 'h:1', message: 'a', idempotencyKey: 'k' },
      { topic: 'h:1', message: 'b' },
    ]);
    assert.deepEqual(results[0], first);
    assert.equal(results[1]!.offset, 2);
    assert.equal(broker.published.length, 2);
    const single = await publisher.publish('h:1', 'a', 'library', { idempotencyKey: 'k' });
    assert.deepEqual(single, first, 'the same window for both entry points');
  });
});

describe('Publisher.publishLhttp', () => {
  const message = (text: string) => ({ text, command: 'publish', headers: [['publish', 'room']] as Array<[string, string]> });

  it('LHTTP subscribers get the text; the publication carries the body as JSON text', async () => {
    const { publisher, broker } = setup();
    await publisher.publishLhttp('room', message('LHTTP/1.0 publish\r\n\r\nhi'), 'hi');
    assert.deepEqual(broker.published, [{ topic: 'room', payload: '"hi"', lhttp: message('LHTTP/1.0 publish\r\n\r\nhi') }]);
  });

  it('the size limit is on the LHTTP text; the topic rule and shutdown apply', async () => {
    const { publisher, shutDown } = setup({ config: { limits: { maxMessageBytes: 10 } } });
    await assert.rejects(publisher.publishLhttp('room', message('x'.repeat(11)), 'x'), refusal('too_large', 'message is 11 bytes, over the limit of 10'));
    await assert.rejects(publisher.publishLhttp('bad', message('x'), 'x'), refusal('invalid_topic', 'bad is not a topic'));
    shutDown();
    await assert.rejects(publisher.publishLhttp('room', message('x'), 'x'), refusal('unavailable', 'server is shutting down'));
  });
});

describe('Pusher', () => {
  function pushSetup() {
    const { hub, metrics, publisher, host } = setup();
    const forwarded: Array<{ uids: readonly string[]; payload: string; raw: string | null }> = [];
    let forwardError: Error | undefined;
    let closing = false;
    const pusher = new Pusher({
      hub,
      metrics,
      cluster: {
        forwardPush: async (uids, payload, raw) => {
          forwarded.push({ uids, payload, raw });
          if (forwardError) throw forwardError;
          return 2;
        },
      },
      encodeMessage: (message) => publisher.encodeMessage(message),
      closing: () => closing,
    });
    const user = (uid: string, seedLogin = false): FakeTransport => {
      const { session, transport } = fakeSession({ host, codec: new RecordingCodec('c') });
      hub.add(session);
      hub.setUser(session, uid);
      if (seedLogin) session.setIdentity({ ...session.identity, rawPush: true });
      return transport;
    };
    const frames = (transport: FakeTransport): string[] => {
      host.flush();
      return transport.texts();
    };
    return {
      pusher,
      metrics,
      forwarded,
      user,
      frames,
      failForwarding: (err: Error) => (forwardError = err),
      shutDown: () => (closing = true),
    };
  }

  it("send reaches the user's connections here and is forwarded to the nodes that hold them", async () => {
    const { pusher, forwarded, user, frames, metrics } = pushSetup();
    const ann = user('ann');
    const bob = user('bob');
    const eve = user('eve');
    assert.deepEqual(await pusher.send(['ann', 'bob'], { n: 1 }), { delivered: 2, nodes: 2 });
    assert.deepEqual(await pusher.send('ann', 'x'), { delivered: 1, nodes: 2 });
    assert.deepEqual(frames(ann), ['c:push {"n":1}', 'c:push "x"']);
    assert.deepEqual(frames(bob), ['c:push {"n":1}']);
    assert.deepEqual(frames(eve), []);
    assert.deepEqual(forwarded, [
      { uids: ['ann', 'bob'], payload: '{"n":1}', raw: null },
      { uids: ['ann'], payload: '"x"', raw: null },
    ]);
    assert.equal(await value(metrics.pushes), 2);
  });

  it("sendSeed: the seed's own logins get the text as it is, the others the push envelope; the text is forwarded as both", async () => {
    const { pusher, forwarded, user, frames } = pushSetup();
    const seed = user('u1', true);
    const modern = user('u1');
    assert.deepEqual(await pusher.sendSeed('u1', 'hello'), { delivered: 2, nodes: 2 });
    assert.deepEqual(frames(seed), ['hello']);
    assert.deepEqual(frames(modern), ['c:push "hello"']);
    assert.deepEqual(forwarded, [{ uids: ['u1'], payload: '"hello"', raw: 'hello' }]);
  });

  it('other nodes unreachable: unavailable, saying how many connections here got it', async () => {
    const { pusher, user, frames, failForwarding } = pushSetup();
    const ann = user('ann');
    failForwarding(new Error('broker is down'));
    await assert.rejects(pusher.send('ann', 1), refusal('unavailable', 'broker is down: pushed to 1 connection(s) on this node only'));
    assert.deepEqual(frames(ann), ['c:push 1']);
  });

  it('shutting down refuses before anything is pushed or counted; a bad message is refused too', async () => {
    const { pusher, user, frames, forwarded, metrics, shutDown } = pushSetup();
    const ann = user('ann');
    await assert.rejects(pusher.send('ann', undefined), refusal('bad_request', 'message must be a JSON value'));
    shutDown();
    await assert.rejects(pusher.send('ann', 1), refusal('unavailable', 'server is shutting down'));
    assert.deepEqual(frames(ann), []);
    assert.deepEqual(forwarded, []);
    assert.equal(await value(metrics.pushes), 0);
  });
});
