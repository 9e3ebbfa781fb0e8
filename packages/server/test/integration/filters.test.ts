import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldClient } from '@herald/client';
import WebSocket from 'ws';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, http, startHerald, wsUrl, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { parsePrometheus, value } from '../helpers/metrics.js';
import { eventually, NatsServer, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';
import { openSse, refusedSse, ssePath } from '../helpers/sse.js';

/** Tagged publications, by index: what each filter below lets through is written out by hand. */
const PUBLICATIONS: Array<Record<string, string> | undefined> = [
  { region: 'eu', level: '3' },
  { region: 'us', level: '10' },
  { region: 'eu', level: '7', vip: 'yes' },
  { region: 'apac', level: 'high' },
  undefined,
  { level: '3' },
];

/** Filters and the indices of PUBLICATIONS they pass (null: no filter). */
const MATRIX: Array<[unknown, number[]]> = [
  [null, [0, 1, 2, 3, 4, 5]],
  [{ eq: ['region', 'eu'] }, [0, 2]],
  [{ ne: ['region', 'eu'] }, [1, 3]],
  [{ in: ['region', ['eu', 'apac']] }, [0, 2, 3]],
  [{ gt: ['level', 3] }, [1, 2]],
  [{ gte: ['level', 3] }, [0, 1, 2, 5]],
  [{ lt: ['level', 7] }, [0, 5]],
  [{ lte: ['level', 7] }, [0, 2, 5]],
  [{ eq: ['level', 3] }, [0, 5]],
  [{ and: [{ eq: ['region', 'eu'] }, { gt: ['level', 5] }] }, [2]],
  [{ or: [{ eq: ['vip', 'yes'] }, { eq: ['region', 'us'] }] }, [1, 2]],
  [{ not: { eq: ['region', 'eu'] } }, [1, 3, 4, 5]],
  [{ and: [{ not: { in: ['region', ['us', 'apac']] } }, { or: [{ lt: ['level', 4] }, { eq: ['vip', 'yes'] }] }] }, [0, 2, 5]],
];

/** Messages (their `n`) of the publication frames on `topic` before the `end` marker (published on the unfiltered topic `end` afterwards). */
async function untilEnd(client: TestClient, topic: string): Promise<Array<{ n: number; tags: unknown }>> {
  const got: Array<{ n: number; tags: unknown }> = [];
  for (;;) {
    const frame = await client.next(10_000);
    if (frame.action !== 'publish') continue;
    if (frame.topic === 'end') return got;
    if (frame.topic === topic) got.push({ n: frame.message.n, tags: frame.tags });
  }
}

/** Publishes PUBLICATIONS on `topic` through `herald` (the library API), in order, then the end marker. */
async function publishAll(herald: Herald, topic: string, first = 0): Promise<void> {
  for (const [index, tags] of PUBLICATIONS.entries()) await herald.publish(topic, { n: first + index }, 'library', tags ? { tags } : {});
  await herald.publish('end', 'end');
}

/** Cache-mode rules for cacheWithFilter: a topic keeping five entries, one keeping one. */
const CACHE_RULES = [
  { pattern: 'c5:*', size: 5, ttl: 600_000, cache: true },
  { pattern: 'c1:*', size: 1, ttl: 600_000, cache: true },
];

/** The publication frames (`[n, offset]`) on `topic` a client gets before the end marker. */
async function framesUntilEnd(client: TestClient, topic: string): Promise<Array<[number, number]>> {
  const got: Array<[number, number]> = [];
  for (;;) {
    const frame = await client.next(10_000);
    if (frame.action !== 'publish') continue;
    if (frame.topic === 'end') return got;
    if (frame.topic === topic) got.push([frame.message.n, frame.offset]);
  }
}

/**
 * A filtered subscription to a cache-mode topic gets the latest value its
 * filter passes (not the topic's latest, which it does not pass), with or
 * without `since`, and nothing when it has it already; on a size-1 topic
 * only when the latest passes. Published on `publisher`, subscribed on `subscriber`.
 */
async function cacheWithFilter(publisher: Herald, subscriber: Herald, suffix: string): Promise<void> {
  const topic = `c5:${suffix}`;
  const eu = { tags: { r: 'eu' } };
  const us = { tags: { r: 'us' } };
  const first = await publisher.publish(topic, { n: 1 }, 'library', eu);
  await publisher.publish(topic, { n: 2 }, 'library', us);
  const fresh = await connect(subscriber);
  await fresh.request({ action: 'subscribe', topic: 'end' });
  assert.equal((await fresh.request({ action: 'subscribe', topic, filter: { eq: ['r', 'eu'] } })).ok, true);
  const third = await publisher.publish(topic, { n: 3 }, 'library', eu);
  await publisher.publish('end', 'end');
  assert.deepEqual(await framesUntilEnd(fresh, topic), [[1, first.offset], [3, third.offset]], 'the latest eu value, not the latest (us), then the live one');
  const fourth = await publisher.publish(topic, { n: 4 }, 'library', eu);
  await publisher.publish(topic, { n: 5 }, 'library', us);
  const back = await connect(subscriber);
  await back.request({ action: 'subscribe', topic: 'end' });
  const reply = await back.request({ action: 'subscribe', topic, since: { offset: third.offset!, epoch: third.epoch! }, filter: { eq: ['r', 'eu'] } });
  assert.deepEqual([reply.ok, reply.recovered], [true, true], JSON.stringify(reply));
  await publisher.publish('end', 'end');
  assert.deepEqual(await framesUntilEnd(back, topic), [[4, fourth.offset]], 'missed: the current eu value');
  const current = await connect(subscriber);
  await current.request({ action: 'subscribe', topic: 'end' });
  const has = await current.request({ action: 'subscribe', topic, since: { offset: fourth.offset!, epoch: fourth.epoch! }, filter: { eq: ['r', 'eu'] } });
  assert.deepEqual([has.ok, has.recovered], [true, true]);
  await publisher.publish('end', 'end');
  assert.deepEqual(await framesUntilEnd(current, topic), [], 'it has the current eu value: nothing again');
  // A size-1 topic keeps the latest only: a filter it does not pass gets no value.
  const single = `c1:${suffix}`;
  await publisher.publish(single, { n: 1 }, 'library', eu);
  await publisher.publish(single, { n: 2 }, 'library', us);
  const one = await connect(subscriber);
  await one.request({ action: 'subscribe', topic: 'end' });
  await one.request({ action: 'subscribe', topic: single, filter: { eq: ['r', 'eu'] } });
  await publisher.publish('end', 'end');
  assert.deepEqual(await framesUntilEnd(one, single), []);
  for (const client of [fresh, back, current, one]) client.close();
}

describe('tags and filters on one node', () => {
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ history: [{ pattern: 'h:*', size: 100, ttl: 600_000 }, ...CACHE_RULES] });
  });

  it('a filtered subscription to a cache-mode topic gets the latest value its filter passes (memory store)', async () => {
    await cacheWithFilter(herald, herald, 'one');
  });

  it('a matrix of filters over JSON WebSocket subscribers: each gets exactly the publications its filter passes, with their tags', async () => {
    const clients = await Promise.all(MATRIX.map(() => connect(herald)));
    for (const [index, [filter]] of MATRIX.entries()) {
      const reply = await clients[index]!.request({ action: 'subscribe', topic: 'm', ...(filter ? { filter } : {}) });
      assert.equal(reply.ok, true, JSON.stringify(reply));
      await clients[index]!.request({ action: 'subscribe', topic: 'end' });
    }
    await publishAll(herald, 'm');
    for (const [index, [filter, expected]] of MATRIX.entries()) {
      const got = await untilEnd(clients[index]!, 'm');
      assert.deepEqual(got.map((g) => g.n), expected, JSON.stringify(filter));
      for (const g of got) assert.deepEqual(g.tags, PUBLICATIONS[g.n], 'the frame carries the tags');
    }
  });

  it('publications a filter does not pass count as filtered, not dropped; a topic whose subscribers have no filter is delivered as before', async () => {
    const metrics = async () => parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    const before = await metrics();
    const filtered = await connect(herald);
    await filtered.request({ action: 'subscribe', topic: 'count', filter: { eq: ['region', 'eu'] } });
    await filtered.request({ action: 'subscribe', topic: 'end' });
    const plain = await connect(herald);
    await plain.request({ action: 'subscribe', topic: 'count' });
    await publishAll(herald, 'count');
    assert.deepEqual((await untilEnd(filtered, 'count')).map((g) => g.n), [0, 2]);
    const after = await metrics();
    assert.equal(value(after, 'herald_messages_filtered_total') - value(before, 'herald_messages_filtered_total'), 4);
    assert.equal(value(after, 'herald_messages_dropped_total') - value(before, 'herald_messages_dropped_total'), 0);
  });

  it('a bad filter is bad_request naming where, subscribes nothing, and the connection goes on', async () => {
    const client = await connect(herald);
    const bad: Array<[unknown, RegExp]> = [
      [{ eq: ['region'] }, /filter\.eq: needs \[tag, value\]/],
      [{ gt: ['level', 'x'] }, /filter\.gt\[1\]: needs a finite number/],
      [{ regex: ['a', '.*'] }, /unknown operator "regex"/],
      [[{ eq: ['a', 'b'] }], /a filter is an object/],
      [JSON.parse(`${'{"not":'.repeat(9)}{"eq":["a","b"]}${'}'.repeat(9)}`), /nested deeper than 8 levels/],
    ];
    for (const [filter, message] of bad) {
      const reply = await client.request({ action: 'subscribe', topic: 'bad', filter });
      assert.deepEqual([reply.ok, reply.error.code], [false, 'bad_request'], JSON.stringify(filter));
      assert.match(reply.error.message, message);
    }
    assert.equal(internals(herald).hub.subscriberCount('bad'), 0, 'nothing subscribed');
    assert.equal((await client.request({ action: 'subscribe', topic: 'bad' })).ok, true, 'the connection goes on');
  });

  it('a subscribe again with another filter replaces it; one without a filter removes it; unsubscribing forgets it', async () => {
    const client = await connect(herald);
    await client.request({ action: 'subscribe', topic: 'end' });
    await client.request({ action: 'subscribe', topic: 'r', filter: { eq: ['region', 'eu'] } });
    await publishAll(herald, 'r');
    assert.deepEqual((await untilEnd(client, 'r')).map((g) => g.n), [0, 2]);
    await client.request({ action: 'subscribe', topic: 'r', filter: { eq: ['region', 'us'] } });
    await publishAll(herald, 'r', 10);
    assert.deepEqual((await untilEnd(client, 'r')).map((g) => g.n), [11]);
    await client.request({ action: 'subscribe', topic: 'r' });
    await publishAll(herald, 'r', 20);
    assert.deepEqual((await untilEnd(client, 'r')).map((g) => g.n), [20, 21, 22, 23, 24, 25]);
    await client.request({ action: 'subscribe', topic: 'r', filter: { eq: ['region', 'us'] } });
    const session = [...internals(herald).hub.sessions.values()].find((s) => s.topics.has('r'))!;
    assert.ok(internals(herald).hub.filterOf(session, 'r'));
    await client.request({ action: 'unsubscribe', topic: 'r' });
    assert.equal(internals(herald).hub.filterOf(session, 'r'), undefined);
  });

  it('a recovery replays only what the filter passes; the reply gives the topic\'s position, and the next recovery starts after the last one delivered', async () => {
    const start = await herald.publish('h:rec', { n: -1 });
    for (const [index, tags] of PUBLICATIONS.entries()) await herald.publish('h:rec', { n: index }, 'library', tags ? { tags } : {});
    const metrics = async () => value(parsePrometheus((await http(herald, 'GET', '/metrics')).text), 'herald_messages_filtered_total');
    const filteredBefore = await metrics();
    const client = await connect(herald);
    const reply = await client.request({ action: 'subscribe', topic: 'h:rec', since: { offset: start.offset!, epoch: start.epoch! }, filter: { eq: ['region', 'eu'] } });
    assert.deepEqual([reply.ok, reply.recovered, reply.offset], [true, true, start.offset! + PUBLICATIONS.length], 'the position is the topic\'s, filtered or not');
    await client.request({ action: 'subscribe', topic: 'end' });
    await herald.publish('h:rec', { n: 6 }, 'library', { tags: { region: 'us' } });
    await herald.publish('h:rec', { n: 7 }, 'library', { tags: { region: 'eu' } });
    await herald.publish('end', 'end');
    const frames: any[] = [];
    for (;;) {
      const frame = await client.next();
      if (frame.topic === 'end') break;
      frames.push(frame);
    }
    assert.deepEqual(frames.map((f) => [f.message.n, f.offset]), [[0, start.offset! + 1], [2, start.offset! + 3], [7, start.offset! + 8]], 'replayed, then live: the matching ones only, with their offsets');
    assert.equal(await metrics() - filteredBefore, 5, 'the four the replay left out and the live one count as filtered');
    // Recovering from the last offset delivered gives what passes after it, nothing twice.
    const again = await connect(herald);
    await herald.publish('h:rec', { n: 8 }, 'library', { tags: { region: 'eu' } });
    await again.request({ action: 'subscribe', topic: 'h:rec', since: { offset: start.offset! + 8, epoch: start.epoch! }, filter: { eq: ['region', 'eu'] } });
    assert.equal((await again.next()).message.n, 8);
  });

  it('SSE takes a filter for every topic (filter=) or one (filter.<topic>=); a bad one, one given twice, or one for a topic the stream lacks is 400', async () => {
    const both = await openSse(herald, ['s1', 's2'], { query: { filter: JSON.stringify({ eq: ['region', 'eu'] }), 'filter.s2': JSON.stringify({ eq: ['region', 'us'] }) } });
    await both.take(2); // the subscribe events
    for (const topic of ['s1', 's2']) for (const [index, tags] of PUBLICATIONS.entries()) await herald.publish(topic, { n: index, topic }, 'library', tags ? { tags } : {});
    await herald.publish('s1', { n: 99, topic: 's1' }, 'library', { tags: { region: 'eu' } });
    const events = await both.take(4);
    assert.deepEqual(events.map((e) => [e.json.topic, e.json.message.n]), [['s1', 0], ['s1', 2], ['s2', 1], ['s1', 99]]);
    const refused = await refusedSse(herald, ssePath(['s1'], { filter: '{"eq":["a"]}' }));
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /^filter\.eq: needs \[tag, value\]/, 'the parameter named once');
    const perTopic = await refusedSse(herald, ssePath(['s1'], { 'filter.s1': '{"and":[{"gt":["a","x"]}]}' }));
    assert.equal(perTopic.status, 400);
    assert.match(perTopic.body.error.message, /^filter\.s1\.and\[0\]\.gt\[1\]: needs a finite number/);
    const notJson = await refusedSse(herald, ssePath(['s1'], { 'filter.s1': '{eq' }));
    assert.match(notJson.body.error.message, /^filter\.s1: not JSON/);
    const elsewhere = await refusedSse(herald, ssePath(['s1'], { 'filter.s3': '{"eq":["a","b"]}' }));
    assert.deepEqual([elsewhere.status, elsewhere.body.error.code], [400, 'bad_request']);
    assert.match(elsewhere.body.error.message, /^filter\.s3 names a topic the stream does not subscribe/);
    const eq = (value: string) => encodeURIComponent(JSON.stringify({ eq: ['region', value] }));
    for (const name of ['filter', 'filter.s1']) {
      const twice = await refusedSse(herald, `${ssePath(['s1'])}&${name}=${eq('eu')}&${name}=${eq('us')}`);
      assert.deepEqual([twice.status, twice.body.error.code], [400, 'bad_request'], name);
      assert.match(twice.body.error.message, new RegExp(`^${name.replace('.', '\\.')} is given more than once`));
    }
  });

  it('the SDK publishes tags and an event and subscribes with a filter; its messages carry them', async () => {
    const client = new HeraldClient({ url: wsUrl(herald), WebSocket });
    const got: Array<{ message: unknown; tags: unknown; event: unknown }> = [];
    const subscription = client.subscribe('sdk', { filter: { and: [{ eq: ['region', 'eu'] }, { gte: ['level', 5] }] } });
    subscription.on('message', ({ message, context }) => got.push({ message, tags: context.tags, event: context.event }));
    const end = client.subscribe('end');
    const ended = new Promise<void>((resolve) => end.on('message', () => resolve()));
    client.connect();
    await deadline(Promise.all([subscription.ready, end.ready]), 5000, 'subscribed');
    await client.publish('sdk', 'low', { tags: { region: 'eu', level: '2' }, event: 'e1' });
    await client.publish('sdk', 'high', { tags: { region: 'eu', level: '9' }, event: 'e2' });
    await client.publish('sdk', 'us', { tags: { region: 'us', level: '9' } });
    await client.publish('sdk', 'none');
    await client.publish('end', 'end');
    await deadline(ended, 5000, 'the end marker');
    assert.deepEqual(got, [{ message: 'high', tags: { region: 'eu', level: '9' }, event: 'e2' }]);
    client.close();
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`filters on a cluster of two nodes (${kind} broker)`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
    let nodes: Herald[] = [];
    const options = (): HeraldOptions => ({
      broker: kind,
      [kind]: { url: server.url, prefix: kind === 'redis' ? 'flt:' : 'flt.' },
      cluster: { heartbeatInterval: 200 },
      history: kind === 'redis' ? [{ pattern: 'h:*', size: 100, ttl: 600_000 }, ...CACHE_RULES] : [],
    });

    before(async () => {
      if (skip) return;
      await server.start();
      for (let i = 0; i < 2; i++) {
        const herald = await startHerald(options());
        await brokerReady(herald);
        nodes.push(herald);
      }
      await eventually(() => nodes.every((n) => n.clusterView().length === 2), 'two nodes to see each other', 10_000);
    });
    after(async () => {
      await Promise.all(nodes.map((n) => n.close()));
      nodes = [];
      await server.stop();
    });

    it('subscribers on the other node get only what their filter passes, each filter of the matrix', async (t) => {
      if (skip) return t.skip(skip);
      const [a, b] = nodes as [Herald, Herald];
      const clients = await Promise.all(MATRIX.map(() => connect(b)));
      for (const [index, [filter]] of MATRIX.entries()) {
        await clients[index]!.request({ action: 'subscribe', topic: 'cm', ...(filter ? { filter } : {}) });
        await clients[index]!.request({ action: 'subscribe', topic: 'end' });
      }
      // One publisher node, one sequence of publishes: the marker on the other topic comes after the rest on B (one subscriber link).
      await publishAll(a, 'cm');
      for (const [index, [filter, expected]] of MATRIX.entries()) {
        assert.deepEqual((await untilEnd(clients[index]!, 'cm')).map((g) => g.n), expected, JSON.stringify(filter));
      }
    });

    // History shared by the nodes: Redis only (a NATS cluster keeps history per node).
    if (kind === 'redis') it('a filtered subscription to a cache-mode topic gets the latest value its filter passes, from the shared history on the other node', async (t) => {
      if (skip) return t.skip(skip);
      await cacheWithFilter(nodes[0]!, nodes[1]!, 'two');
    });

    // History shared by the nodes: Redis only (a NATS cluster keeps history per node).
    if (kind === 'redis') it('a filtered recovery from the shared history on the other node replays only what passes', async (t) => {
      if (skip) return t.skip(skip);
      const [a, b] = nodes as [Herald, Herald];
      const start = await a.publish('h:c', { n: -1 });
      for (const [index, tags] of PUBLICATIONS.entries()) await a.publish('h:c', { n: index }, 'library', tags ? { tags } : {});
      const client = await connect(b);
      const reply = await client.request({ action: 'subscribe', topic: 'h:c', since: { offset: start.offset!, epoch: start.epoch! }, filter: { in: ['region', ['us', 'apac']] } });
      assert.deepEqual([reply.recovered, reply.offset], [true, start.offset! + PUBLICATIONS.length]);
      await a.publish('h:c', { n: 6 }, 'library', { tags: { region: 'apac' } });
      const frames = [await client.next(), await client.next(), await client.next()];
      assert.deepEqual(frames.map((f) => f.message.n), [1, 3, 6]);
    });
  });
}
