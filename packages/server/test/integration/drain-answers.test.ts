import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { deadline, startHerald, TestClient, wsUrl } from '../helpers/helpers.js';
import { eventually, RedisServer, requireBinary } from '../helpers/servers.js';
import { internals } from '../helpers/internals.js';

/**
 * A node that drains (herald.close(), SIGTERM) while a connection has
 * publishes in flight: every publish the connection sent before the close
 * frame is answered before it. The one the broker is handling gets its
 * result (or its 503 within publishTimeout); the ones waiting behind it are
 * refused, not run. Before: they got no reply and the close came at once,
 * while the first was stored and delivered all the same.
 */
const PUBLISH_TIMEOUT = 1000;

describe('a drain answers the publishes in flight before the close frame', () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  /** A node with one connection that sent eight publishes while Redis was frozen: the first is with Redis, seven wait behind it. */
  async function eightInFlight(): Promise<{ herald: Herald; client: TestClient }> {
    const herald = await startHerald({
      broker: 'redis',
      redis: { url: redis.url, prefix: 'drain:' },
      history: [{ pattern: 'h:*', size: 100 }],
      publishTimeout: PUBLISH_TIMEOUT,
      shutdown: { drainWindow: 0, timeout: 5000 },
    });
    await eventually(() => internals(herald).broker.state === 'ready', 'broker ready', 15_000);
    const client = await TestClient.open(wsUrl(herald));
    await redis.pause();
    for (let id = 1; id <= 8; id++) client.send({ id, action: 'publish', topic: 'h:drain', message: id });
    const [session] = internals(herald).sessions.values();
    await eventually(() => session!.framesIn === 8, 'the eight frames to arrive');
    return { herald, client };
  }

  /** Every reply the client got, by id, and whether each came before the close. */
  async function repliesBeforeClose(client: TestClient): Promise<Map<number, { ok: boolean; offset?: number; error?: { code: string; message: string } }>> {
    const closed = await deadline(client.closed, 10_000, 'the close');
    assert.equal(closed.code, 1001);
    const replies = new Map();
    for (const frame of client.received as Array<{ id?: number }>) if (frame.id !== undefined) replies.set(frame.id, frame);
    return replies;
  }

  it('Redis resumes during the drain: the publish in progress gets its offset, the seven behind it are refused, all before the close frame', async (t) => {
    if (skip) return t.skip(skip);
    const { herald, client } = await eightInFlight();
    const closing = herald.close();
    redis.resume();
    const replies = await repliesBeforeClose(client);
    await closing;
    assert.deepEqual([...replies.keys()].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8], 'every publish answered');
    assert.equal(replies.get(1)!.ok, true);
    assert.equal(replies.get(1)!.offset, 1, 'the stalled publish was stored, and the client is told where');
    for (let id = 2; id <= 8; id++) {
      assert.equal(replies.get(id)!.error?.code, 'unavailable');
      assert.match(replies.get(id)!.error!.message, /not handled: the connection is closing/);
    }
    // Nothing but the first was run: the next append in Redis is offset 2.
    const check = await startHerald({ broker: 'redis', redis: { url: redis.url, prefix: 'drain:' }, history: [{ pattern: 'h:*', size: 100 }] });
    await eventually(() => internals(check).broker.state === 'ready', 'broker ready', 15_000);
    assert.equal((await check.publish('h:drain', 'next')).offset, 2);
    await check.close();
  });

  it('Redis stays frozen: the publish in progress is answered 503 within publishTimeout, then the close frame', async (t) => {
    if (skip) return t.skip(skip);
    const { herald, client } = await eightInFlight();
    const started = Date.now();
    const closing = herald.close();
    const replies = await repliesBeforeClose(client);
    assert.equal(replies.size, 8, 'every publish answered');
    assert.equal(replies.get(1)!.error?.code, 'unavailable');
    assert.match(replies.get(1)!.error!.message, /did not answer within 1000 ms/);
    assert.ok(Date.now() - started < PUBLISH_TIMEOUT + 2000, `closed after the answer (${Date.now() - started} ms)`);
    redis.resume();
    await closing;
  });
});
