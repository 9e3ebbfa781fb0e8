import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { Redis } from 'ioredis';
import { connect, deadline, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { eventually, NatsServer, RedisServer, requireBinary } from '../helpers/servers.js';
import { internals } from '../helpers/internals.js';

/**
 * An idempotencyKey across a publish answered 503 in doubt: the broker got the
 * command and had not answered within publishTimeout (frozen by SIGSTOP), or
 * the connection dropped with it unanswered. A retry with the same key on the
 * same node must never publish a second copy (docs/history.md, "Idempotent
 * publish"; docs/scaling.md, "What a publish answer means").
 */
const PUBLISH_TIMEOUT = 1000;
/** A publish is answered within publishTimeout; this much more is allowed for a loaded machine. */
const MARGIN = 1500;

async function ready(herald: Herald): Promise<Herald> {
  await eventually(() => internals(herald).broker.state === 'ready', 'broker ready', 15_000);
  return herald;
}

/** A keyed publish through the HTTP API, with how long its answer took. */
async function post(herald: Herald, topic: string, message: unknown, idempotencyKey?: string) {
  const started = Date.now();
  const answer = await http(herald, 'POST', '/api/publish', { topic, message, ...(idempotencyKey ? { idempotencyKey } : {}) });
  return { status: answer.status, body: answer.body, ms: Date.now() - started };
}

/**
 * How many copies of each message `watcher` received before `marker` (a
 * publication made after the others, through the same node: per-node order
 * puts it last), counted by message text.
 */
async function copiesBefore(watcher: TestClient, marker: string): Promise<Map<string, number>> {
  const copies = new Map<string, number>();
  for (;;) {
    const frame = await watcher.next(10_000);
    if (frame.action !== 'publish') continue;
    if (frame.message === marker) return copies;
    copies.set(frame.message, (copies.get(frame.message) ?? 0) + 1);
  }
}

describe('idempotencyKey: a retry after an answer in doubt (Redis)', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  let a: Herald;
  let b: Herald;
  let watcher: TestClient;
  before(async () => {
    if (skip) return;
    await redis.start();
    const options = { broker: 'redis' as const, redis: { url: redis.url, prefix: 'idd:' }, publishTimeout: PUBLISH_TIMEOUT, history: [{ pattern: 'h:*', size: 100 }] };
    [a, b] = await Promise.all([startHerald(options).then(ready), startHerald(options).then(ready)]);
    watcher = await connect(b);
    for (const topic of ['plain', 'h:1']) assert.equal((await watcher.request({ action: 'subscribe', topic })).ok, true);
  });
  after(async () => {
    await watcher?.close();
    await Promise.all([a?.close(), b?.close()]);
    await redis.stop();
  });

  it('Redis frozen: 503 in doubt; a retry on the same node joins the stalled publish (503 while frozen, its result once Redis runs it), one copy delivered; with Redis history the key holds on every node', async (t) => {
    if (skip) return t.skip(skip);
    await redis.pause();
    const [plain, stored] = await Promise.all([post(a, 'plain', 'order-1', 'k-1'), post(a, 'h:1', 'order-2', 'k-2')]);
    for (const answer of [plain, stored]) {
      assert.equal(answer.status, 503);
      assert.match(answer.body.error.message, /did not answer within 1000 ms/);
      assert.ok(answer.ms < PUBLISH_TIMEOUT + MARGIN, `answered in ${answer.ms} ms`);
    }
    assert.equal(internals(a).idempotency.inDoubt, 1, 'the key of the topic without history is kept in doubt (the other is kept by Redis)');
    // Still frozen: the retry waits for the stalled publish, then is answered in doubt again; it sends nothing.
    const early = await post(a, 'plain', 'order-1', 'k-1');
    assert.equal(early.status, 503);
    assert.match(early.body.error.message, /still unanswered/);
    assert.ok(early.ms < PUBLISH_TIMEOUT + MARGIN, `answered in ${early.ms} ms`);

    redis.resume();
    await Promise.all([ready(a), ready(b)]);
    // The stalled publishes ran when Redis resumed: the retries answer their results and publish nothing.
    const retried = await post(a, 'plain', 'order-1', 'k-1');
    assert.deepEqual([retried.status, retried.body], [200, { ok: true }]);
    assert.equal(internals(a).idempotency.inDoubt, 0);
    const elsewhere = await post(b, 'h:1', 'order-2', 'k-2');
    assert.deepEqual([elsewhere.status, elsewhere.body.offset], [200, 1], 'the other node answers the stalled append\'s offset');
    assert.equal((await post(a, 'h:1', 'order-2', 'k-2')).body.offset, 1);

    // Both topics go out on a's command connection, in order: the last marker comes after everything else.
    assert.equal((await post(a, 'plain', 'end-plain')).status, 200);
    assert.equal((await post(a, 'h:1', 'end-h')).status, 200);
    const copies = await copiesBefore(watcher, 'end-h');
    assert.deepEqual([copies.get('order-1'), copies.get('order-2'), copies.get('end-plain')], [1, 1, 1], 'one copy of each');
  });

  it('Redis down before the publish was sent: it surely failed, the key is forgotten and a retry publishes', async (t) => {
    if (skip) return t.skip(skip);
    await redis.stop();
    await eventually(() => internals(a).broker.state !== 'ready', 'node a to see Redis down');
    const refused = await post(a, 'plain', 'order-3', 'k-3');
    assert.equal(refused.status, 503);
    assert.ok(refused.ms < PUBLISH_TIMEOUT, `answered at once (${refused.ms} ms)`);
    assert.equal(internals(a).idempotency.inDoubt, 0);
    await redis.start();
    await Promise.all([ready(a), ready(b)]);
    // b's subscriber link holds the channel again (Redis has its SUBSCRIBE) before a publishes.
    const admin = new Redis(redis.url);
    await eventually(async () => ((await admin.pubsub('NUMSUB', 'idd:plain')) as [string, number])[1] >= 1, 'b subscribed to plain again');
    admin.disconnect();
    const retried = await post(a, 'plain', 'order-3', 'k-3');
    assert.equal(retried.status, 200);
    assert.equal((await post(a, 'plain', 'end-3')).status, 200);
    assert.equal((await copiesBefore(watcher, 'end-3')).get('order-3'), 1);
  });

  it('the connection dropped with the publish unanswered: never known, so the key publishes nothing until the window ends; another key publishes', async (t) => {
    if (skip) return t.skip(skip);
    await redis.pause();
    const answered = a.publish('plain', 'order-4', 'library', { idempotencyKey: 'k-4' }).then(
      () => assert.fail('answered as published'),
      (err: Error) => err,
    );
    // The command is on the socket (written in publish's turn; Redis reads nothing): then Redis dies with it.
    await new Promise((resolve) => setImmediate(resolve));
    await redis.stop();
    const dropped = await deadline(answered, PUBLISH_TIMEOUT + MARGIN, 'the answer at the drop');
    assert.match(dropped.message, /connection dropped before Redis answered/);
    await redis.start();
    await Promise.all([ready(a), ready(b)]);
    const retried = await post(a, 'plain', 'order-4', 'k-4');
    assert.equal(retried.status, 503);
    assert.match(retried.body.error.message, /will never be known.*publish with a new key/);
    assert.equal((await post(a, 'plain', 'order-4', 'k-4-again')).status, 200);
  });
});

describe('idempotencyKey: a retry after an answer in doubt (NATS)', () => {
  const skip = requireBinary('nats-server');
  const nats = new NatsServer();
  before(async () => {
    if (!skip) await nats.start();
  });
  after(() => nats.stop());

  it('a publication the frozen server confirms after publishTimeout: the retry answers 200 and publishes nothing', async (t) => {
    if (skip) return t.skip(skip);
    const options = { broker: 'nats' as const, nats: { url: nats.url, prefix: 'idd.' }, publishTimeout: PUBLISH_TIMEOUT };
    const [a, b] = await Promise.all([startHerald(options).then(ready), startHerald(options).then(ready)]);
    const watcher = await connect(b);
    assert.equal((await watcher.request({ action: 'subscribe', topic: 'news' })).ok, true);
    await nats.pause();
    const first = await post(a, 'news', 'n-1', 'k-n');
    assert.equal(first.status, 503);
    assert.match(first.body.error.message, /did not confirm the publication within 1000 ms/);
    nats.resume();
    const retried = await post(a, 'news', 'n-1', 'k-n');
    assert.equal(retried.status, 200);
    assert.equal((await post(a, 'news', 'end')).status, 200);
    assert.equal((await copiesBefore(watcher, 'end')).get('n-1'), 1);
    await watcher.close();
    await Promise.all([a.close(), b.close()]);
  });
});
