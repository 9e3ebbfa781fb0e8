import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HeraldError, openResumableStream, type Herald, type HeraldOptions, type StreamPosition } from '../../src/index.js';
import { brokerReady, connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { RedisServer, requireBinary } from '../helpers/servers.js';
import { openSse, type SseStream } from '../helpers/sse.js';

const HISTORY = { history: [{ pattern: 'answer:*', size: 50, ttl: 600_000 }, { pattern: 'answers:*', size: 100, ttl: 600_000 }] } satisfies HeraldOptions;

/** What a stream message says, in a form to compare: `1 "Once"` for a chunk, `3 done` / `3 error: why` for the end. */
function said(message: any): string {
  const who = message.stream === undefined ? '' : `${message.stream} `;
  if (message.end === undefined) return `${who}${message.seq} ${JSON.stringify(message.text)}`;
  return `${who}${message.seq} ${message.end}${message.reason ? `: ${message.reason}` : ''}`;
}

/** The topic's whole history, as `said` writes each message. */
async function stored(herald: Herald, topic: string): Promise<string[]> {
  return (await herald.historyOf(topic)).publications.map((p) => said(p.message));
}

/** The next `count` publications of an SSE stream (after its subscribe event), as `said` writes them, with their event ids. */
async function sseMessages(stream: SseStream, count: number): Promise<Array<[string, string]>> {
  return (await stream.take(count)).map((e) => {
    assert.equal(e.event, 'message');
    return [said(e.json.message), e.lastEventId];
  });
}

async function wsMessages(client: TestClient, count: number): Promise<string[]> {
  const frames: any[] = [];
  for (let i = 0; i < count; i++) frames.push(await client.next());
  return frames.map((f) => said(f.message));
}

describe('resumable streams: openResumableStream', () => {
  it('refuses, with a clear error, a topic without history, a bad name, a used per-answer topic, a bad id', async () => {
    const herald = await startHerald(HISTORY);
    await assert.rejects(openResumableStream(herald, 'reply:1'), (err: HeraldError) => {
      assert.equal(err.code, 'bad_request');
      assert.match(err.message, /^topic reply:1 keeps no history, so a reader could not resume a stream on it: add a history rule that covers it/);
      assert.match(err.message, /pattern: "reply:\*"/);
      return true;
    });
    await assert.rejects(openResumableStream(herald, 'answer:a b'), { code: 'invalid_topic' });
    await herald.publish('answer:used', 'something');
    await assert.rejects(openResumableStream(herald, 'answer:used'), {
      code: 'bad_request',
      message: 'topic answer:used was already published to (offset 1): a stream without an id needs a topic of its own (a new answer:<id>), or pass an id to share the topic',
    });
    await assert.rejects(openResumableStream(herald, 'answers:u1', { id: '' }), { code: 'bad_request', message: 'a stream id is a string of 1 to 200 characters' });
    await herald.close();
  });

  it('publishes chunks in call order, awaited or not, then the end; each resolves with its position', async () => {
    const herald = await startHerald(HISTORY);
    const stream = await openResumableStream(herald, 'answer:order');
    const epoch = (await herald.historyOf('answer:order')).epoch;
    assert.deepEqual(stream.from, { offset: 0, epoch });
    assert.equal(stream.capacity, 49, 'the rule keeps 50: 49 chunks and the end');
    const positions = ['Once', ' upon', ' a', ' time', ' — ✓'].map((text) => stream.append(text));
    assert.equal(stream.chunks, 5);
    const end = stream.end();
    assert.deepEqual(await Promise.all([...positions, end]), [1, 2, 3, 4, 5, 6].map((offset) => ({ offset, epoch })));
    assert.deepEqual(await stored(herald, 'answer:order'), ['1 "Once"', '2 " upon"', '3 " a"', '4 " time"', '5 " — ✓"', '6 done']);
    assert.deepEqual((await herald.historyOf('answer:order')).publications[0]!.message, { seq: 1, text: 'Once' });
    assert.deepEqual((await herald.historyOf('answer:order')).publications[5]!.message, { seq: 6, end: 'done' });
    assert.equal(stream.ended, true);
    await assert.rejects(stream.append('more'), { code: 'bad_request', message: 'the stream on answer:order has ended: nothing more can be published to it' });
    await assert.rejects(stream.fail('late'), { code: 'bad_request' });
    await herald.close();
  });

  it('fail() ends with the reason; a chunk past capacity or one that fails to publish leaves only fail(), which still fits', async () => {
    const herald = await startHerald({ history: [{ pattern: 'answer:*', size: 3, ttl: 600_000 }], limits: { maxMessageBytes: 200 } });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const full = await openResumableStream(herald, 'answer:full');
    // As a token loop does: nothing awaited until the end.
    for (const text of ['a', 'b', 'c', 'd']) void full.append(text);
    await assert.rejects(full.end(), (err: HeraldError) => {
      assert.equal(err.code, 'too_large');
      assert.match(err.message, /^the stream on answer:full lost a chunk \(the stream on answer:full is full: 2 chunks \(its history rule answer:\* keeps 3 publications per topic, one kept for the end\)/);
      return true;
    });
    await full.fail('the answer is too long');
    assert.deepEqual(await stored(herald, 'answer:full'), ['1 "a"', '2 "b"', '3 error: the answer is too long'], 'readers are told it is not complete, and read it all from its start');
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(unhandled, [], 'appends nobody awaited leave no unhandled rejection');

    const failed = await openResumableStream(herald, 'answer:failed');
    await failed.append('x');
    await failed.fail('the model timed out');
    assert.deepEqual(await stored(herald, 'answer:failed'), ['1 "x"', '2 error: the model timed out']);

    const broken = await openResumableStream(herald, 'answer:broken');
    const lost = broken.append('y'.repeat(300));
    const after = broken.append('z');
    await assert.rejects(lost, { code: 'too_large' });
    await assert.rejects(after, (err: HeraldError) => err.code === 'too_large' && /^the stream on answer:broken lost a chunk/.test(err.message));
    await assert.rejects(broken.end(), { code: 'too_large' });
    assert.equal(broken.ended, false, 'an end that failed leaves the stream to fail()');
    await broken.fail('a chunk was too large');
    assert.deepEqual(await stored(herald, 'answer:broken'), ['3 error: a chunk was too large'], 'readers are told; seq 1 and 2 were never published');
    await herald.close();
  });
});

describe('resumable streams: readers resume at the exact chunk', () => {
  it('over SSE: from a middle position (lastEventId) the rest once, in order, then live chunks and the end; from 0. all of it', async () => {
    const herald = await startHerald(HISTORY);
    const stream = await openResumableStream(herald, 'answer:sse');
    const at: StreamPosition[] = [];
    for (const text of ['one', ' two', ' three', ' four']) at.push(await stream.append(text));
    const middle = `${at[1]!.offset}.${at[1]!.epoch}`;

    const resumed = await openSse(herald, ['answer:sse'], { query: { lastEventId: middle } });
    const fresh = await openSse(herald, ['answer:sse'], { query: { lastEventId: '0.' } });
    for (const reader of [resumed, fresh]) assert.equal((await reader.next()).json.recovered, true);
    const e = at[0]!.epoch;
    assert.deepEqual(await sseMessages(resumed, 2), [['3 " three"', `3.${e}`], ['4 " four"', `4.${e}`]]);
    assert.deepEqual((await sseMessages(fresh, 4)).map(([m]) => m), ['1 "one"', '2 " two"', '3 " three"', '4 " four"']);
    await stream.append(' five');
    await stream.end();
    for (const reader of [resumed, fresh]) assert.deepEqual(await sseMessages(reader, 2), [['5 " five"', `5.${e}`], ['6 done', `6.${e}`]]);
    assert.deepEqual([...resumed.rest(), ...fresh.rest()], [], 'nothing twice');
    resumed.destroy();
    fresh.destroy();
    await herald.close();
  });

  it('over WebSocket: a subscribe with since a middle position gets the rest once, then live chunks and the end', async () => {
    const herald = await startHerald(HISTORY);
    const stream = await openResumableStream(herald, 'answer:ws');
    const at: StreamPosition[] = [];
    for (const text of ['one', ' two', ' three']) at.push(await stream.append(text));
    const client = await connect(herald);
    const reply = await client.request({ action: 'subscribe', topic: 'answer:ws', since: at[0] });
    assert.deepEqual([reply.ok, reply.recovered, reply.offset], [true, true, 3]);
    assert.deepEqual(await wsMessages(client, 2), ['2 " two"', '3 " three"']);
    await stream.end();
    const end = await client.next();
    assert.deepEqual([said(end.message), end.offset], ['4 done', 4]);
    await client.close();
    await herald.close();
  });

  it('a backend in any language: chunks and the end by POST /api/publish, read over SSE', async () => {
    const herald = await startHerald(HISTORY);
    const reader = await openSse(herald, ['answer:curl'], { query: { lastEventId: '0.' } });
    await reader.next();
    const post = (message: unknown, key: string) => http(herald, 'POST', '/api/publish', { topic: 'answer:curl', message, idempotencyKey: key });
    assert.equal((await post({ seq: 1, text: 'Hello' }, 'answer:curl#1')).body.offset, 1);
    // A retry after an unclear answer publishes nothing twice.
    assert.equal((await post({ seq: 1, text: 'Hello' }, 'answer:curl#1')).body.offset, 1);
    assert.equal((await post({ seq: 2, text: ' from curl' }, 'answer:curl#2')).body.offset, 2);
    assert.equal((await post({ seq: 3, end: 'done' }, 'answer:curl#3')).body.offset, 3);
    assert.deepEqual((await sseMessages(reader, 3)).map(([m]) => m), ['1 "Hello"', '2 " from curl"', '3 done']);
    reader.destroy();
    await herald.close();
  });

  it('several streams on one shared topic: each reader starts from its stream’s `from` and picks its messages by id', async () => {
    const herald = await startHerald(HISTORY);
    await herald.publish('answers:u1', { unrelated: true });
    const a = await openResumableStream(herald, 'answers:u1', { id: 'a' });
    await a.append('a1');
    const b = await openResumableStream(herald, 'answers:u1', { id: 'b' });
    assert.deepEqual([a.from.offset, b.from.offset], [1, 2]);
    await b.append('b1');
    await a.append('a2');
    await b.end();
    await a.end();
    const readerOfB = await openSse(herald, ['answers:u1'], { query: { lastEventId: `${b.from.offset}.${b.from.epoch}` } });
    await readerOfB.next();
    const seen = (await sseMessages(readerOfB, 4)).map(([m]) => m);
    assert.deepEqual(seen, ['b 1 "b1"', 'a 2 "a2"', 'b 2 done', 'a 3 done']);
    assert.deepEqual(seen.filter((m) => m.startsWith('b ')), ['b 1 "b1"', 'b 2 done']);
    readerOfB.destroy();
    await herald.close();
  });
});

describe('resumable streams with history in Redis', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  it('a stream written on one node is read from its start (0.) and resumed from its middle on the other', async (t) => {
    if (skip) return t.skip(skip);
    const node = async (): Promise<Herald> => {
      const herald = await startHerald({ ...HISTORY, broker: 'redis', redis: { url: redis.url, prefix: 'resumable:' } });
      await brokerReady(herald);
      return herald;
    };
    const [a, b] = await Promise.all([node(), node()]);
    const stream = await openResumableStream(a, 'answer:redis');
    assert.deepEqual(stream.from, { offset: 0, epoch: '' }, 'nothing published yet: "seen nothing"');
    const first = await stream.append('one');
    const fromStart = await openSse(b, ['answer:redis'], { query: { lastEventId: '0.' } });
    assert.equal((await fromStart.next()).json.recovered, true);
    const second = await stream.append(' two');
    await stream.append(' three');
    const client = await connect(b);
    assert.equal((await client.request({ action: 'subscribe', topic: 'answer:redis', since: second })).recovered, true);
    await stream.end();
    assert.deepEqual((await sseMessages(fromStart, 4)).map(([m, id]) => [m, id]), [
      ['1 "one"', `1.${first.epoch}`],
      ['2 " two"', `2.${first.epoch}`],
      ['3 " three"', `3.${first.epoch}`],
      ['4 done', `4.${first.epoch}`],
    ]);
    assert.deepEqual(await wsMessages(client, 2), ['3 " three"', '4 done']);
    fromStart.destroy();
    await client.close();
    await Promise.all([a.close(), b.close()]);
  });
});
