import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { connect as natsConnect, headers as natsHeaders } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { eventually, NatsServer, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';

/** A publication's metadata (tags, event) as every path must keep it. */
const TAGS = { region: 'eu', level: '3', note: 'ü "quoted" <b>' };
const EVENT = 'order.created';

const HISTORY: HeraldOptions['history'] = [
  { pattern: 'h:*', size: 100, ttl: 600_000 },
  { pattern: 'c:*', size: 10, ttl: 600_000, cache: true },
];

/** The next publication frame (other frames skipped). */
async function nextPublication(client: TestClient): Promise<any> {
  for (;;) {
    const frame = await client.next(10_000);
    if (frame.action === 'publish') return frame;
  }
}

describe('publication metadata (tags, event) on one node, memory history', () => {
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ history: HISTORY });
  });

  it('a JSON client publishes tags and an event; subscribers get them in the frame, the sender too, and a publication without them has neither field', async () => {
    const sub = await connect(herald);
    await sub.request({ action: 'subscribe', topic: 'news' });
    const pub = await connect(herald);
    const reply = await pub.request({ action: 'publish', topic: 'news', message: { n: 1 }, tags: TAGS, event: EVENT });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.deepEqual(await nextPublication(sub), { action: 'publish', topic: 'news', message: { n: 1 }, event: EVENT, tags: TAGS });
    await pub.request({ action: 'publish', topic: 'news', message: { n: 2 } });
    assert.deepEqual(await nextPublication(sub), { action: 'publish', topic: 'news', message: { n: 2 } }, 'only additive fields, only when set');
  });

  it('the HTTP API and the library API publish tags and an event; bad ones are bad_request and publish nothing', async () => {
    const sub = await connect(herald);
    await sub.request({ action: 'subscribe', topic: 'api' });
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'api', message: 1, tags: TAGS, event: EVENT })).status, 200);
    assert.deepEqual(await nextPublication(sub), { action: 'publish', topic: 'api', message: 1, event: EVENT, tags: TAGS });
    assert.equal((await http(herald, 'POST', '/api/publish', [{ topic: 'api', message: 2, tags: { k: 'v' } }])).status, 200);
    assert.deepEqual((await nextPublication(sub)).tags, { k: 'v' });
    await herald.publish('api', 3, 'library', { event: 'lib' });
    assert.deepEqual(await nextPublication(sub), { action: 'publish', topic: 'api', message: 3, event: 'lib' });

    const bad: Array<[unknown, RegExp]> = [
      [{ topic: 'api', message: 0, tags: { level: 3 } }, /tags/],
      [{ topic: 'api', message: 0, tags: ['eu'] }, /tags/],
      [{ topic: 'api', message: 0, tags: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`t${i}`, 'v'])) }, /17 tags, over the limit of 16/],
      [{ topic: 'api', message: 0, tags: { ['x'.repeat(65)]: 'v' } }, /1 to 64 characters/],
      [{ topic: 'api', message: 0, tags: { k: 'v'.repeat(257) } }, /over 256 characters/],
      [{ topic: 'api', message: 0, event: '' }, /event must be 1 to 200 characters/],
      [{ topic: 'api', message: 0, event: 'e'.repeat(201) }, /event must be 1 to 200 characters/],
      [{ topic: 'api', message: 0, event: 'a\nb' }, /control or format character/],
      [{ topic: 'api', message: 0, event: 7 }, /event/],
    ];
    for (const [body, message] of bad) {
      const answer = await http(herald, 'POST', '/api/publish', body);
      assert.equal(answer.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(answer.body.error.code, 'bad_request');
      assert.match(answer.body.error.message, message);
    }
    const client = await connect(herald);
    const refused = await client.request({ action: 'publish', topic: 'api', message: 0, tags: { k: 'v'.repeat(300) } });
    assert.deepEqual([refused.ok, refused.error.code], [false, 'bad_request']);
    await assert.rejects(herald.publish('api', 0, 'library', { event: '' }), { code: 'bad_request' });
    // Nothing of the refused ones arrived: the next publication is the marker.
    await herald.publish('api', 'marker');
    assert.equal((await nextPublication(sub)).message, 'marker');
  });

  it('the tag name __proto__ (an own property, as JSON makes it), a non-string value under it, and control or format characters in tags and events are bad_request on every path', async () => {
    const sub = await connect(herald);
    await sub.request({ action: 'subscribe', topic: 'proto' });
    const client = await connect(herald);
    const bad: Array<[string, RegExp]> = [
      ['"tags":{"__proto__":"x","b":"1"}', /tags: the tag name "__proto__" is reserved/],
      ['"tags":{"__proto__":{"polluted":"1"}}', /tags: the tag name "__proto__" is reserved/],
      ['"tags":{"k":"v","__proto__":{"polluted":1}}', /tags: the tag name "__proto__" is reserved/],
      ['"tags":{"k":{"nested":"v"}}', /tags: tag "k" must be a string/],
      ['"tags":{"k":"a\\u200bb"}', /tags: tag "k" holds a control or format character/],
      ['"tags":{"k":"a\\u2028b"}', /tags: tag "k" holds a control or format character/],
      ['"tags":{"k":"a\\u0085b"}', /tags: tag "k" holds a control or format character/],
      ['"tags":{"a\\u202eb":"v"}', /tags: tag name .* holds a control or format character/],
      ['"event":"a\\u202eb"', /event: event holds a control or format character/],
      ['"event":"a\\ufeffb"', /event: event holds a control or format character/],
      ['"event":"a\\u2029b"', /event: event holds a control or format character/],
      ['"event":"a\\u009bb"', /event: event holds a control or format character/],
    ];
    for (const [fields, message] of bad) {
      // The JSON frame as text, so that "__proto__" is an own key as a client's JSON makes it.
      const reply = await client.request(JSON.parse(`{"action":"publish","topic":"proto","message":0,${fields}}`));
      assert.deepEqual([reply.ok, reply.error?.code], [false, 'bad_request'], fields);
      assert.match(reply.error.message, message, fields);
      const answer = await http(herald, 'POST', '/api/publish', JSON.parse(`{"topic":"proto","message":0,${fields}}`));
      assert.deepEqual([answer.status, answer.body.error.code], [400, 'bad_request'], fields);
      assert.match(answer.body.error.message, fields.includes('__proto__') ? /holds a "__proto__" key/ : message, fields);
      await assert.rejects(herald.publish('proto', 0, 'library', JSON.parse(`{${fields}}`)), (err: any) => err.code === 'bad_request' && message.test(err.message), fields);
    }
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
    await herald.publish('proto', 'marker');
    assert.equal((await nextPublication(sub)).message, 'marker', 'none of them was published');
  });

  it('memory history keeps them: a history page and a recovery carry tags and event', async () => {
    const first = await herald.publish('h:m', 'a', 'library', { tags: TAGS, event: EVENT });
    await herald.publish('h:m', 'b');
    const page = await herald.historyOf('h:m');
    assert.deepEqual(page.publications.map(({ message, tags, event }) => ({ message, tags, event })), [
      { message: 'a', tags: TAGS, event: EVENT },
      { message: 'b', tags: undefined, event: undefined },
    ]);
    const client = await connect(herald);
    const reply = await client.request({ action: 'subscribe', topic: 'h:m', since: { offset: first.offset! - 1, epoch: first.epoch! } });
    assert.equal(reply.recovered, true);
    assert.deepEqual(await nextPublication(client), { action: 'publish', topic: 'h:m', message: 'a', offset: first.offset, epoch: first.epoch, event: EVENT, tags: TAGS });
    const history = await client.request({ action: 'history', topic: 'h:m' });
    assert.deepEqual(history.publications[0].tags, TAGS);
  });

  it('cache mode keeps them: a late subscriber gets the latest value with its tags and event', async () => {
    await herald.publish('c:price', 1);
    const latest = await herald.publish('c:price', 2, 'library', { tags: { cur: 'eur' }, event: 'tick' });
    const client = await connect(herald);
    await client.request({ action: 'subscribe', topic: 'c:price' });
    assert.deepEqual(await nextPublication(client), { action: 'publish', topic: 'c:price', message: 2, offset: latest.offset, epoch: latest.epoch, event: 'tick', tags: { cur: 'eur' } });
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`publication metadata across two nodes (${kind} broker)`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
    let nodes: Herald[] = [];

    before(async () => {
      if (skip) return;
      await server.start();
      const prefix = kind === 'redis' ? 'meta:' : 'meta.';
      for (let i = 0; i < 2; i++) {
        const herald = await startHerald({ broker: kind, [kind]: { url: server.url, prefix }, cluster: { heartbeatInterval: 200 }, history: HISTORY });
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

    it('tags and event published on one node reach the other, with an exclusion still honoured', async (t) => {
      if (skip) return t.skip(skip);
      const [a, b] = nodes as [Herald, Herald];
      const first = await connect(b);
      await first.request({ action: 'subscribe', topic: 'live' });
      const second = await connect(b);
      await second.request({ action: 'subscribe', topic: 'live' });
      // The second connection's id (the newest session on B subscribed to the topic): it is excluded from n=1.
      const ids = [...internals(b).hub.sessions.values()].filter((s) => s.topics.has('live')).map((s) => s.id);
      assert.equal(ids.length, 2);
      await a.publish('live', { n: 1 }, 'library', { tags: TAGS, event: EVENT, exclude: ids[1]! });
      await a.publish('live', { n: 2 }, 'library', { tags: { only: 'tags' } });
      await a.publish('live', { n: 3 }, 'library', { event: 'only-event' });
      await a.publish('live', { n: 4 });
      const got = await Promise.all([first, second].map(async (c) => [await nextPublication(c), await nextPublication(c), await nextPublication(c)]));
      assert.deepEqual(got[0], [
        { action: 'publish', topic: 'live', message: { n: 1 }, event: EVENT, tags: TAGS },
        { action: 'publish', topic: 'live', message: { n: 2 }, tags: { only: 'tags' } },
        { action: 'publish', topic: 'live', message: { n: 3 }, event: 'only-event' },
      ]);
      assert.deepEqual(got[1]!.map((f) => f.message.n), [2, 3, 4], 'the excluded connection did not get n=1, and got the rest');
    });

    it('a forged Herald envelope (or Herald NATS headers) from a raw publisher on the broker: invalid tags or event are dropped, the payload kept', async (t) => {
      if (skip) return t.skip(skip);
      const client = await connect(nodes[1]!);
      await client.request({ action: 'subscribe', topic: 'forged' });
      const channel = kind === 'redis' ? 'meta:forged' : 'meta.forged';
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ t: { r: 'eu', n: { nested: [1, 2] }, x: 7 } }, 'nested and number tag values'],
        [{ t: { r: 'eu' }, e: `${'E'.repeat(300)}\u0000` }, 'a 300-character event with NUL'],
        [{ t: { r: 'eu' }, e: 'pusher:error' }, 'a pusher: event'],
        [{ t: JSON.parse('{"__proto__":{"r":"eu"}}') }, 'a __proto__ tag'],
        [{ e: 'a\u202eb' }, 'a format character'],
      ];
      const good = { t: { r: 'eu' }, e: 'forged.but.valid' };
      if (kind === 'redis') {
        const raw = new Redis(server.url);
        for (const [index, [meta]] of bad.entries()) await raw.publish(channel, `\x1eherald\x1ffake-node\x1f\x1c${JSON.stringify(meta)}\x1f{"m":${index}}`);
        await raw.publish(channel, `\x1eherald\x1ffake-node\x1f\x1c${JSON.stringify(good)}\x1f{"m":"good"}`);
        raw.disconnect();
      } else {
        const nc = await natsConnect({ servers: server.url });
        for (const [index, [meta]] of bad.entries()) {
          const marked = natsHeaders();
          marked.set('Herald-Node', 'fake-node');
          if (meta.t !== undefined) marked.set('Herald-Tags', JSON.stringify(meta.t));
          if (meta.e !== undefined) marked.set('Herald-Event', String(meta.e).replace('\u0000', '\u0001'));
          nc.publish(channel, `{"m":${index}}`, { headers: marked });
        }
        const marked = natsHeaders();
        marked.set('Herald-Node', 'fake-node');
        marked.set('Herald-Tags', JSON.stringify(good.t));
        marked.set('Herald-Event', good.e);
        nc.publish(channel, '{"m":"good"}', { headers: marked });
        await nc.drain();
      }
      for (const [index, [, what]] of bad.entries()) assert.deepEqual(await nextPublication(client), { action: 'publish', topic: 'forged', message: { m: index } }, what);
      assert.deepEqual(await nextPublication(client), { action: 'publish', topic: 'forged', message: { m: 'good' }, event: 'forged.but.valid', tags: { r: 'eu' } }, 'valid metadata is kept');
      client.close();
    });

    it('history across nodes keeps them: a recovery and a page on the other node carry tags and event', async (t) => {
      if (skip) return t.skip(skip);
      const [a, b] = nodes as [Herald, Herald];
      const before = await a.publish('h:x', 'zero');
      await a.publish('h:x', 'one', 'library', { tags: TAGS, event: EVENT });
      await a.publish('h:x', 'two', 'library', { tags: { k: 'v' } });
      if (kind === 'redis') {
        const client = await connect(b);
        const reply = await client.request({ action: 'subscribe', topic: 'h:x', since: { offset: before.offset!, epoch: before.epoch! } });
        const frames = [await nextPublication(client), await nextPublication(client)];
        // The Redis store is shared: the other node recovers from it.
        assert.equal(reply.recovered, true, JSON.stringify(reply));
        assert.deepEqual(frames.map(({ message, tags, event }) => ({ message, tags, event })), [
          { message: 'one', tags: TAGS, event: EVENT },
          { message: 'two', tags: { k: 'v' }, event: undefined },
        ]);
        const page = await b.historyOf('h:x');
        assert.deepEqual(page.publications.map((p) => p.tags), [undefined, TAGS, { k: 'v' }]);
        assert.deepEqual(page.publications.map((p) => p.event), [undefined, EVENT, undefined]);
      } else {
        // Memory history in each process: the publishing node's store keeps them.
        const page = await a.historyOf('h:x');
        assert.deepEqual(page.publications.map((p) => p.tags), [undefined, TAGS, { k: 'v' }]);
      }
    });

    it('cache mode on the other node gives the latest value with its tags and event', async (t) => {
      if (skip) return t.skip(skip);
      const [a, b] = nodes as [Herald, Herald];
      // The other node must carry the topic for a memory store to see it: a subscriber first.
      const watcher = await connect(b);
      await watcher.request({ action: 'subscribe', topic: 'c:rate' });
      await a.publish('c:rate', 1.1, 'library', { tags: { cur: 'usd' }, event: 'rate' });
      assert.equal((await nextPublication(watcher)).event, 'rate');
      const late = await connect(b);
      await late.request({ action: 'subscribe', topic: 'c:rate' });
      const latest = await nextPublication(late);
      assert.deepEqual([latest.message, latest.tags, latest.event], [1.1, { cur: 'usd' }, 'rate']);
    });
  });
}
