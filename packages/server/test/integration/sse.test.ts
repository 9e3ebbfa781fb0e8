import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, startHerald } from '../helpers/helpers.js';
import { RedisServer, requireBinary } from '../helpers/servers.js';
import { openSse, type SseEvent, type SseStream } from '../helpers/sse.js';

const HISTORY = { history: [{ pattern: 'h:*', size: 1000, ttl: 600_000 }] } satisfies HeraldOptions;

/** What an event says, in a form to compare: its type, topic and offset (and message for publications). */
function summary(event: SseEvent): string {
  const { action, topic, offset, message, recovered } = event.json as Record<string, unknown>;
  if (event.event === 'message') return `${action} ${String(topic)} ${String(offset)} ${JSON.stringify(message)}`;
  return `${event.event} ${String(topic)}${recovered === undefined ? '' : ` recovered=${String(recovered)}`}`;
}

/** Publishes `values` to `topic`, in order. */
async function publishAll(herald: Herald, topic: string, values: unknown[]): Promise<void> {
  for (const value of values) await herald.publish(topic, value);
}

describe('SSE streams', () => {
  it('carries publications as default events whose id is their position, and other frames as named events', async () => {
    const herald = await startHerald({ ...HISTORY, presence: [{ pattern: 'h:*', joinLeave: true }] });
    const stream = await openSse(herald, ['h:news']);
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(stream.headers['cache-control'], 'no-store');
    assert.equal(stream.headers['x-accel-buffering'], 'no');

    const subscribed = await stream.next();
    assert.equal(stream.retry, 2000, 'the stream starts with retry:');
    const epoch = subscribed.json.epoch as string;
    assert.match(epoch, /^[0-9a-f]+$/);
    assert.equal(subscribed.event, 'subscribe');
    assert.deepEqual(subscribed.json, { action: 'subscribe', ok: true, topic: 'h:news', offset: 0, epoch });
    assert.equal(subscribed.lastEventId, `0.${epoch}`, 'the subscribe event gives the position a reconnect resumes from');

    const ws = await connect(herald);
    await ws.request({ action: 'subscribe', topic: 'h:news' });
    const join = await stream.next();
    assert.equal(join.event, 'join');
    assert.equal(join.json.topic, 'h:news');
    assert.equal(join.hasId, false, 'only positions move the id');

    await publishAll(herald, 'h:news', [{ n: 1 }, 'two', [3]]);
    const events = await stream.take(3);
    assert.deepEqual(
      events.map((e) => [e.event, e.lastEventId, e.hasId]),
      [
        ['message', `1.${epoch}`, true],
        ['message', `2.${epoch}`, true],
        ['message', `3.${epoch}`, true],
      ],
    );
    // The data is the JSON protocol's publication frame, as a WebSocket connection gets it.
    const frames = [await ws.next(), await ws.next(), await ws.next()];
    assert.deepEqual(
      events.map((e) => e.json),
      frames,
    );
    assert.deepEqual(frames[0], { action: 'publish', topic: 'h:news', message: { n: 1 }, offset: 1, epoch });

    // A topic without history: no id at all.
    const plain = await openSse(herald, ['plain']);
    const plainSubscribed = await plain.next();
    assert.deepEqual([plainSubscribed.json, plainSubscribed.hasId], [{ action: 'subscribe', ok: true, topic: 'plain' }, false]);
    await herald.publish('plain', 'x');
    const x = await plain.next();
    assert.deepEqual([x.event, x.json, x.lastEventId], ['message', { action: 'publish', topic: 'plain', message: 'x' }, '']);

    await ws.close();
    stream.destroy();
    plain.destroy();
    await herald.close();
  });

  it('resumes a one-topic stream from Last-Event-ID exactly: every missed publication once, in order, then live ones', async () => {
    const herald = await startHerald(HISTORY);
    const first = await openSse(herald, ['h:feed']);
    await first.next();
    await publishAll(herald, 'h:feed', [1, 2, 3, 4, 5]);
    await first.take(5);
    const left = first.lastEventId;
    first.destroy();
    await publishAll(herald, 'h:feed', [6, 7, 8]);

    const second = await openSse(herald, ['h:feed'], { lastEventId: left });
    const subscribed = await second.next();
    assert.equal(subscribed.json.recovered, true);
    assert.equal(subscribed.json.offset, 8);
    assert.deepEqual([subscribed.hasId, subscribed.lastEventId], [true, left], 'before the replay, the id is the position resumed from: a cut right after the reply resumes from there');
    await herald.publish('h:feed', 9);
    const resumed = await second.take(4);
    assert.deepEqual(
      resumed.map((e) => e.json.message),
      [6, 7, 8, 9],
    );
    assert.deepEqual(
      resumed.map((e) => e.lastEventId.split('.')[0]),
      ['6', '7', '8', '9'],
    );

    // After a reload the page passes its id in the query; a Last-Event-ID header, when sent too, wins.
    second.destroy();
    await herald.publish('h:feed', 10);
    const reloaded = await openSse(herald, ['h:feed'], { query: { lastEventId: resumed[3]!.lastEventId } });
    const again = await reloaded.next();
    assert.equal(again.json.recovered, true);
    assert.equal(again.lastEventId, resumed[3]!.lastEventId, 'the EventSource learns the position the page passed in the query');
    assert.equal((await reloaded.next()).json.message, 10);
    const both = await openSse(herald, ['h:feed'], { query: { lastEventId: resumed[0]!.lastEventId }, lastEventId: resumed[2]!.lastEventId });
    assert.equal((await both.next()).json.recovered, true);
    assert.deepEqual((await both.take(2)).map((e) => e.json.message), [9, 10], 'from the header, not the query');

    reloaded.destroy();
    both.destroy();
    await herald.close();
  });

  it('gives a multi-topic stream ids that hold every topic with history, and resumes each topic exactly', async () => {
    const herald = await startHerald(HISTORY);
    const topics = ['h:a,b', 'h:聊天', 'plain'];
    const first = await openSse(herald, topics);
    const subscribed = await first.take(3);
    assert.deepEqual(subscribed.map(summary), ['subscribe h:a,b', 'subscribe h:聊天', 'subscribe plain']);
    const ea = subscribed[0]!.json.epoch as string;
    const eb = subscribed[1]!.json.epoch as string;
    const a = (offset: number): string => `h:a%2Cb|${offset}.${ea}`;
    const b = (offset: number): string => `h:%E8%81%8A%E5%A4%A9|${offset}.${eb}`;
    assert.equal(first.lastEventId, `${a(0)},${b(0)}`, 'every topic with history, its name escaped; none for the topic without');

    await publishAll(herald, 'h:a,b', ['a1']);
    await publishAll(herald, 'h:聊天', ['b1']);
    await publishAll(herald, 'plain', ['p1']);
    await publishAll(herald, 'h:a,b', ['a2']);
    const live = await first.take(4);
    assert.deepEqual(
      live.map((e) => [e.json.message, e.lastEventId]),
      [
        ['a1', `${a(1)},${b(0)}`],
        ['b1', `${a(1)},${b(1)}`],
        ['p1', `${a(1)},${b(1)}`],
        ['a2', `${a(2)},${b(1)}`],
      ],
    );
    first.destroy();
    await publishAll(herald, 'h:a,b', ['a3']);
    await publishAll(herald, 'h:聊天', ['b2']);
    await publishAll(herald, 'plain', ['p2']);
    await publishAll(herald, 'h:a,b', ['a4']);

    const second = await openSse(herald, topics, { lastEventId: first.lastEventId });
    const resumed = await second.take(6);
    assert.deepEqual(resumed.map(summary), [
      'subscribe h:a,b recovered=true',
      'publish h:a,b 3 "a3"',
      'publish h:a,b 4 "a4"',
      'subscribe h:聊天 recovered=true',
      'publish h:聊天 2 "b2"',
      'subscribe plain',
    ]);
    assert.deepEqual(
      resumed.map((e) => e.lastEventId),
      [`${a(2)},${b(1)}`, `${a(3)},${b(1)}`, `${a(4)},${b(1)}`, `${a(4)},${b(1)}`, `${a(4)},${b(2)}`, `${a(4)},${b(2)}`],
    );
    await herald.publish('h:聊天', 'b3');
    const next = await second.next();
    assert.deepEqual([next.json.message, next.lastEventId], ['b3', `${a(4)},${b(3)}`]);
    assert.deepEqual(second.rest(), [], 'nothing else: no repeat');

    second.destroy();
    await herald.close();
  });

  it('reports a recovery that cannot be made in the subscribe event, with the position to go on from', async () => {
    const herald = await startHerald({ history: [{ pattern: 'h:*', size: 3, ttl: 600_000 }] });
    const first = await openSse(herald, ['h:short']);
    await first.next();
    await publishAll(herald, 'h:short', [1]);
    await first.next();
    const left = first.lastEventId;
    first.destroy();
    await publishAll(herald, 'h:short', [2, 3, 4, 5, 6, 7, 8, 9, 10]);

    const behind = await openSse(herald, ['h:short'], { lastEventId: left });
    const failed = await behind.next();
    const epoch = failed.json.epoch as string;
    assert.deepEqual(failed.json, { action: 'subscribe', ok: true, topic: 'h:short', recovered: false, reason: 'too_far_behind', offset: 10, epoch });
    assert.equal(failed.lastEventId, `10.${epoch}`, 'the stream goes on from the topic position');
    await herald.publish('h:short', 11);
    assert.equal((await behind.next()).json.offset, 11);

    const elsewhere = await openSse(herald, ['h:short'], { lastEventId: '4.an-epoch-long-gone' });
    const changed = await elsewhere.next();
    assert.deepEqual([changed.json.recovered, changed.json.reason, changed.json.offset], [false, 'epoch_changed', 11]);
    assert.equal(changed.lastEventId, `11.${epoch}`);

    behind.destroy();
    elsewhere.destroy();
    await herald.close();
  });

  it('stays on node\'s response (chunked) when its connection carries another request behind it, and works the same', async () => {
    // Under HTTP/1.x a stream's socket is taken from the HTTP server, unless the parser has already read a
    // pipelined request behind it: then the stream is written through node's response, as under HTTP/2.
    const herald = await startHerald();
    const socket = createConnection(herald.port, '127.0.0.1');
    let text = '';
    const arrived = (what: string): Promise<void> =>
      deadline(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (!text.includes(what)) return;
            socket.off('data', check);
            resolve();
          };
          socket.on('data', check);
          check();
        }),
        5000,
        what,
      );
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.write('GET /sse?topic=piped HTTP/1.1\r\nHost: herald\r\n\r\nGET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n');
    await arrived('event: subscribe');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\r\ntransfer-encoding: chunked\r\n/i);
    assert.match(text, /\r\ncontent-type: text\/event-stream; charset=utf-8\r\n/i);
    await herald.publish('piped', 'hello');
    await arrived('"message":"hello"');
    await herald.close();
    await arrived('event: close');
    socket.destroy();
  });
});

describe('SSE streams on two nodes sharing history in Redis', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  async function node(): Promise<Herald> {
    const herald = await startHerald({ ...HISTORY, broker: 'redis', redis: { url: redis.url, prefix: 'sse:' }, cluster: { heartbeatInterval: 200 } });
    await brokerReady(herald);
    return herald;
  }

  /** The next `count` events of `stream`. */
  async function received(stream: SseStream, count: number): Promise<SseEvent[]> {
    return deadline(stream.take(count), 10_000, `${count} events`);
  }

  it('resumes on the other node what was published on both while the client was away, exactly', async (t) => {
    if (skip) return t.skip(skip);
    const [a, b] = await Promise.all([node(), node()]);

    const one = await openSse(a, ['h:x']);
    const many = await openSse(a, ['h:x', 'h:y']);
    await one.next();
    await many.take(2);
    await publishAll(b, 'h:x', [1, 2]);
    await publishAll(a, 'h:y', ['y1']);
    await received(one, 2);
    await received(many, 3);
    one.destroy();
    many.destroy();
    // While away: publications on both nodes.
    await publishAll(a, 'h:x', [3, 4]);
    await publishAll(b, 'h:x', [5]);
    await publishAll(b, 'h:y', ['y2']);
    await publishAll(a, 'h:y', ['y3']);

    // The reconnects land on the other node.
    const oneAgain = await openSse(b, ['h:x'], { lastEventId: one.lastEventId });
    const manyAgain = await openSse(b, ['h:x', 'h:y'], { lastEventId: many.lastEventId });
    const oneEvents = await received(oneAgain, 4);
    assert.deepEqual(oneEvents.map(summary), ['subscribe h:x recovered=true', 'publish h:x 3 3', 'publish h:x 4 4', 'publish h:x 5 5']);
    const manyEvents = await received(manyAgain, 7);
    const byTopic = (topic: string): string[] => manyEvents.filter((e) => e.json.topic === topic).map(summary);
    assert.deepEqual(byTopic('h:x'), ['subscribe h:x recovered=true', 'publish h:x 3 3', 'publish h:x 4 4', 'publish h:x 5 5']);
    assert.deepEqual(byTopic('h:y'), ['subscribe h:y recovered=true', 'publish h:y 2 "y2"', 'publish h:y 3 "y3"']);

    // Live again, from either node.
    await a.publish('h:x', 6);
    assert.equal((await oneAgain.next()).json.message, 6);
    assert.equal((await manyAgain.next()).json.message, 6);
    assert.match(manyAgain.lastEventId, /^h:x\|6\.[0-9a-f]+,h:y\|3\.[0-9a-f]+$|^h:y\|3\.[0-9a-f]+,h:x\|6\.[0-9a-f]+$/);
    assert.deepEqual([...oneAgain.rest(), ...manyAgain.rest()], [], 'no repeat');

    oneAgain.destroy();
    manyAgain.destroy();
    await Promise.all([a.close(), b.close()]);
  });
});
