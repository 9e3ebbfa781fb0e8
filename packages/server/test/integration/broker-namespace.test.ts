import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { createHerald, type Herald, type HeraldOptions } from '../../src/index.js';
import type { Logger } from '../../src/log.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { eventually, NatsServer, RedisServer, requireBinary } from '../helpers/servers.js';
import { internals } from '../helpers/internals.js';

/**
 * Herald's topics live in Herald's own namespace on a shared broker: a client
 * cannot reach another service's subjects or channels, nor the broker's own
 * ($JS, _INBOX, __keyevent@...), unless `rawTopics` opens exactly the topics it names.
 */

async function ready(herald: Herald): Promise<Herald> {
  await eventually(() => internals(herald).broker.state === 'ready', 'the broker to be ready', 10_000);
  return herald;
}

/** The next frame is `expected`: whatever else might have arrived before it did not. */
async function nextIs(client: TestClient, expected: unknown): Promise<void> {
  assert.deepEqual(await client.next(), expected);
}

describe('NATS: Herald\'s namespace on a shared NATS server with JetStream', () => {
  const skip = requireBinary('nats-server');
  const server = new NatsServer({ jetstream: true });
  let other: NatsConnection;

  /** Another service's stream: ORDERS on `orders.>`. */
  async function streamMessages(): Promise<number> {
    const answer = (await other.request('$JS.API.STREAM.INFO.ORDERS', '', { timeout: 2000 })).json<{ state?: { messages: number }; error?: unknown }>();
    assert.ok(answer.state, `the ORDERS stream exists: ${JSON.stringify(answer)}`);
    return answer.state.messages;
  }

  before(async () => {
    if (skip) return;
    await server.start();
    other = await natsConnect({ servers: server.url });
    const created = (await other.request('$JS.API.STREAM.CREATE.ORDERS', JSON.stringify({ name: 'ORDERS', subjects: ['orders.>'], storage: 'memory' }), { timeout: 2000 })).json<{ error?: unknown }>();
    assert.equal(created.error, undefined);
    other.publish('orders.new', '{"order":1}');
    await other.flush();
    await eventually(async () => (await streamMessages()) === 1, 'the first order to be stored');
  });
  after(async () => {
    await other?.close();
    await server.stop();
  });

  const node = async (nats: Record<string, unknown> = {}, options: HeraldOptions = {}): Promise<Herald> =>
    ready(await startHerald({ broker: 'nats', nats: { url: server.url, ...nats }, ...options }));

  it('by default, an anonymous client can neither touch JetStream nor another service\'s subjects', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await node();
    const client = await connect(herald);
    for (const topic of ['$JS.API.STREAM.PURGE.ORDERS', '$JS.API.STREAM.DELETE.ORDERS', '$JS.EVENT.ADVISORY.API', '_INBOX.abc']) {
      // Herald's own topic `$JS...` maps to `herald.$JS...`: harmless, and the publication goes nowhere near JetStream.
      const reply = await client.request({ action: 'publish', topic, message: {} });
      assert.equal(reply.ok, true, `${topic}: ${JSON.stringify(reply)}`);
    }
    assert.equal((await client.request({ action: 'publish', topic: 'orders.new', message: { forged: true } })).ok, true);
    const viaApi = await http(herald, 'POST', '/api/publish', { topic: 'orders.new', message: { forged: 'api' } });
    assert.equal(viaApi.status, 200);
    // The stream still exists, unpurged, and holds no forged order.
    assert.equal(await streamMessages(), 1);

    // A subscriber of `orders.new` hears Herald's topic, not the other service's subject.
    assert.equal((await client.request({ action: 'subscribe', topic: 'orders.new' })).ok, true);
    other.publish('orders.new', '{"order":"secret"}');
    other.publish('herald.orders.new', '"inside herald"');
    await other.flush();
    await nextIs(client, { action: 'publish', topic: 'orders.new', message: 'inside herald' });
    await herald.close();
  });

  it('rawTopics opens exactly the topics it names; $ and _INBOX subjects stay unreachable even with rawTopics ["*"]', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await node({ rawTopics: ['orders.*'] });
    const client = await connect(herald);
    const before = await streamMessages();
    assert.equal((await client.request({ action: 'publish', topic: 'orders.new', message: { order: 2 } })).ok, true);
    await eventually(async () => (await streamMessages()) === before + 1, 'the raw topic to reach the stream');
    assert.equal((await client.request({ action: 'publish', topic: 'billing.new', message: 1 })).ok, true);
    assert.equal(await streamMessages(), before + 1, 'a topic outside rawTopics stays in Herald\'s namespace');
    await herald.close();

    const open = await node({ rawTopics: ['*'] });
    const anyone = await connect(open);
    for (const topic of ['$JS.API.STREAM.DELETE.ORDERS', '$JS.EVENT.ADVISORY.API', '$SYS.REQ.SERVER.PING', '_INBOX.abc']) {
      for (const action of ['publish', 'subscribe']) {
        const reply = await anyone.request({ action, topic, message: 1 });
        assert.equal(reply.error?.code, 'invalid_topic', `${action} ${topic}: ${JSON.stringify(reply)}`);
      }
      const api = await http(open, 'POST', '/api/publish', { topic, message: 1 });
      assert.equal(api.status, 400, `API publish ${topic}`);
      assert.equal(api.body.error.code, 'invalid_topic');
    }
    const lhttp = await connect(open, { path: '/' });
    lhttp.send('LHTTP/1.0 chat\r\npublish:$JS.API.STREAM.PURGE.ORDERS\r\n\r\n{}');
    assert.match(await lhttp.next(), /^LHTTP\/1\.0 error\r\ncode:invalid_topic\r\n/);
    // A raw topic may not be a name inside Herald's namespace either (it would share a subject with another topic).
    assert.equal((await anyone.request({ action: 'subscribe', topic: 'herald.x' })).error?.code, 'invalid_topic');
    assert.equal(await streamMessages(), before + 1, 'the stream is untouched');
    await open.close();
  });

  it('maps Unicode topics to UTF-8 subjects and . to the token separator', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await node();
    const client = await connect(herald);
    for (const topic of ['聊天室', 'café', 'a&b', 'chat.room1']) {
      assert.equal((await client.request({ action: 'subscribe', topic })).ok, true, topic);
      other.publish(`herald.${topic}`, `"to ${topic}"`);
      await other.flush();
      await nextIs(client, { action: 'publish', topic, message: `to ${topic}` });
    }
    // A wildcard subscriber of another service sees dotted topics as tokens.
    const seen: string[] = [];
    const wildcard = other.subscribe('herald.chat.>', {
      callback: (_err, msg) => {
        seen.push(`${msg.subject} ${msg.string()}`);
      },
    });
    await other.flush();
    await herald.publish('chat.room2', 'hi');
    await eventually(() => seen.includes('herald.chat.room2 "hi"'), 'the wildcard subscriber');
    wildcard.unsubscribe();
    for (const topic of ['.lead', 'trail.', 'a..b']) assert.equal((await client.request({ action: 'subscribe', topic })).error?.code, 'invalid_topic', topic);
    await herald.close();
  });

  it('refuses at start-up a prefix that is empty or inside the server\'s own subjects', async (t) => {
    if (skip) return t.skip(skip);
    await assert.rejects(createHerald({ port: 0, log: { level: 'silent' }, broker: 'nats', nats: { url: server.url, prefix: '' } }), /nats\.prefix: must not be empty/);
    await assert.rejects(createHerald({ port: 0, log: { level: 'silent' }, broker: 'nats', nats: { url: server.url, prefix: '$JS.' } }), /nats\.prefix "\$JS\.": NATS subjects starting with \$/);
  });
});

describe('Redis: Herald\'s namespace on a Redis shared with another app', () => {
  const skip = requireBinary('redis-server');
  const server = new RedisServer();
  let app: Redis;

  before(async () => {
    if (skip) return;
    await server.start();
    app = new Redis(server.url);
    await app.config('SET', 'notify-keyspace-events', 'KEA');
  });
  after(async () => {
    app?.disconnect();
    await server.stop();
  });

  const node = async (redis: Record<string, unknown> = {}, options: HeraldOptions = {}): Promise<Herald> =>
    ready(await startHerald({ broker: 'redis', redis: { url: server.url, ...redis }, ...options }));

  it('by default, a client hears neither keyspace events nor another app\'s channels, and cannot publish into them', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await node();
    const client = await connect(herald);
    for (const topic of ['__keyevent@0__:set', 'app:events']) assert.equal((await client.request({ action: 'subscribe', topic })).ok, true);
    await app.set('app:secret-key', 'x');
    await app.publish('app:events', 'secret');
    await app.publish('herald:app:events', '"inside herald"');
    await nextIs(client, { action: 'publish', topic: 'app:events', message: 'inside herald' });

    // Herald's publication to `app:events` lands on `herald:app:events`, not on the app's channel.
    const listener = new Redis(server.url);
    const heard: string[] = [];
    listener.on('message', (channel: string, message: string) => heard.push(`${channel} ${message}`));
    await listener.subscribe('app:events', 'herald:app:events');
    const publisher = await connect(herald);
    assert.equal((await publisher.request({ action: 'publish', topic: 'app:events', message: 'forged' })).ok, true);
    await app.publish('app:events', 'marker');
    await eventually(() => heard.includes('app:events marker'), 'the marker');
    assert.deepEqual(heard.filter((line) => line.startsWith('app:events ')), ['app:events marker']);
    assert.ok(heard.some((line) => line.startsWith('herald:app:events ')), heard.join('\n'));
    listener.disconnect();
    await herald.close();
  });

  it('rawTopics opens exactly the topics it names; __ channels stay unreachable even with rawTopics ["*"]', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await node({ rawTopics: ['bookings', 'chat:*'] });
    const client = await connect(herald);
    for (const topic of ['bookings', 'chat:1', 'app:events']) assert.equal((await client.request({ action: 'subscribe', topic })).ok, true);
    await eventually(async () => ((await app.call('PUBSUB', 'NUMSUB', 'bookings')) as [string, number])[1] === 1, 'the bare channel subscription');
    await app.publish('app:events', 'secret');
    await app.publish('bookings', '{"booked":1}');
    await app.publish('chat:1', 'hello');
    await nextIs(client, { action: 'publish', topic: 'bookings', message: { booked: 1 } });
    await nextIs(client, { action: 'publish', topic: 'chat:1', message: 'hello' });
    await herald.close();

    const open = await node({ rawTopics: ['*'] });
    const anyone = await connect(open);
    for (const topic of ['__keyevent@0__:set', '__keyspace@0__:app:secret-key', '__redis__:invalidate', '__sentinel__:hello']) {
      for (const action of ['subscribe', 'publish']) {
        const reply = await anyone.request({ action, topic, message: 1 });
        assert.equal(reply.error?.code, 'invalid_topic', `${action} ${topic}`);
        assert.match(reply.error.message, /Redis channels starting with __ are the server's own/);
      }
    }
    const lhttp = await connect(open, { path: '/' });
    lhttp.send('LHTTP/1.0 chat\r\nsubscribe:__keyevent@0__:set\r\n\r\n');
    assert.match(await lhttp.next(), /^LHTTP\/1\.0 error\r\ncode:invalid_topic\r\n/);
    await open.close();
  });

  it('npm start\'s configuration with broker=redis: `redis-cli PUBLISH bookings` reaches the bookings topic, as the page says', async (t) => {
    if (skip) return t.skip(skip);
    const demo = parseYaml(readFileSync(fileURLToPath(new URL('../../../../../demo/herald.yaml', import.meta.url)), 'utf8')) as HeraldOptions & { redis: object };
    const herald = await node({}, { ...demo, redis: { ...demo.redis, url: server.url }, demo: { enabled: false, backend: false } });
    const client = await connect(herald);
    for (const topic of ['bookings', 'chat:lobby', 'danmaku:live']) assert.equal((await client.request({ action: 'subscribe', topic })).ok, true);
    await eventually(async () => ((await app.call('PUBSUB', 'NUMSUB', 'bookings')) as [string, number])[1] === 1, 'the bare channel subscription');
    await app.publish('danmaku:live', 'not raw: never delivered');
    await app.publish('bookings', '{"id":2,"show":"Carmen","customer":"Linus","seats":1,"amount":55}');
    await app.publish('chat:lobby', '"hello from redis"');
    const booking = await client.next();
    assert.equal(booking.topic, 'bookings');
    assert.deepEqual(booking.message, { id: 2, show: 'Carmen', customer: 'Linus', seats: 1, amount: 55 });
    const chat = await client.next();
    assert.equal(chat.topic, 'chat:lobby');
    assert.equal(chat.message, 'hello from redis');
    await herald.close();
  });

  it('warns at start-up about the topics rawTopics opens', async (t) => {
    if (skip) return t.skip(skip);
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const logger = pino({ level: 'info' }, stream) as Logger;
    const quiet = await node({}, { logger });
    await quiet.close();
    assert.equal(lines.filter((line) => line.includes('rawTopics')).length, 0, 'no warning without rawTopics');
    const herald = await node({ rawTopics: ['bookings'] }, { logger });
    const warning = lines.map((line) => JSON.parse(line) as { level: number; msg: string; rawTopics?: string[] }).find((line) => line.msg.includes('rawTopics'));
    assert.ok(warning, lines.join('\n'));
    assert.equal(warning.level, 40);
    assert.deepEqual(warning.rawTopics, ['bookings']);
    assert.match(warning.msg, /bare redis channels, outside Herald's namespace "herald:": any redis client can publish to them and read them/);
    await herald.close();
  });
});
