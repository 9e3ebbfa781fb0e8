import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { DisconnectInfo } from '../../src/index.js';
import { connect, deadline, startHerald } from '../helpers/helpers.js';
import { openSse, refusedSse, ssePath, type SseStream } from '../helpers/sse.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** Resolves at the next `disconnect` of `herald` with this close code. */
function disconnected(herald: Awaited<ReturnType<typeof startHerald>>, code?: number): Promise<DisconnectInfo> {
  return new Promise((resolve) => {
    herald.on('disconnect', (_connection, info) => {
      if (code === undefined || info.code === code) resolve(info);
    });
  });
}

/** The publications a stream received, in order. */
function messages(stream: SseStream): unknown[] {
  return stream.events.filter((e) => e.event === 'message').map((e) => e.json.message);
}

describe('SSE admission: authentication, permissions and limits before the stream', () => {
  it('answers 401 without a valid token and 403 for a topic it may not read, with the JSON error body; a granted stream gets pushes and the server close', async () => {
    const herald = await startHerald({ auth: { anonymous: false, jwt: { secret: SECRET } } });
    const none = await refusedSse(herald, ssePath(['news']));
    assert.equal(none.status, 401);
    assert.match(String(none.headers['content-type']), /^application\/json/);
    assert.equal(none.body.ok, false);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.match(none.body.error.message, /login required/);
    const forged = await refusedSse(herald, ssePath(['news'], { token: 'not.a.token' }));
    assert.deepEqual([forged.status, forged.body.error.code], [401, 'unauthorized']);

    const token = await signToken({ sub: 'u1' });
    const privateTopic = await refusedSse(herald, ssePath(['news', 'private:team'], { token }));
    assert.deepEqual([privateTopic.status, privateTopic.body.error.code], [403, 'forbidden']);
    assert.match(privateTopic.body.error.message, /private:team/, 'the refusal names the topic');
    const otherUser = await refusedSse(herald, ssePath(['user:u2'], { token }));
    assert.equal(otherUser.status, 403);
    assert.match(otherUser.body.error.message, /user:u2/);
    assert.equal(herald.status().connections, 0, 'nothing is left of the refused streams');

    const granted = await openSse(herald, ['user:u1', 'private:team'], { query: { token: await signToken({ sub: 'u1', topics: ['private:team'] }) } });
    assert.deepEqual(
      (await granted.take(2)).map((e) => [e.event, e.json.topic]),
      [
        ['subscribe', 'user:u1'],
        ['subscribe', 'private:team'],
      ],
    );
    await herald.send('u1', { hi: 1 });
    const push = await granted.next();
    assert.deepEqual([push.event, push.json], ['push', { action: 'push', message: { hi: 1 } }]);
    assert.equal(herald.disconnect('u1'), 1);
    const close = await granted.next();
    assert.deepEqual([close.event, close.json], ['close', { code: 4504, reason: 'disconnected by the server' }]);
    await deadline(granted.ended, 5000, 'the end of the stream');
    await herald.close();
  });

  describe('with a connect hook', () => {
    let backend: Server;
    let hookUrl: string;
    before(async () => {
      backend = createServer((request, response) => {
        let body = '';
        request.on('data', (chunk: Buffer) => (body += chunk.toString()));
        request.on('end', () => {
          const { headers } = JSON.parse(body) as { headers: Record<string, string> };
          if (headers.cookie !== 'session=good') {
            response.writeHead(401).end('who are you');
            return;
          }
          response.setHeader('content-type', 'application/json');
          response.end(JSON.stringify({ uid: 'c1', topics: ['h:hooked'] }));
        });
      });
      await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
      hookUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/hook`;
    });
    after(async () => {
      backend.closeAllConnections();
      await new Promise<void>((resolve) => backend.close(() => resolve()));
    });

    it("passes the request's cookies to the hook; a refusal is the hook's status; the hook's topics come with named ids", async () => {
      const herald = await startHerald({ auth: { connectHook: { url: hookUrl } }, history: [{ pattern: 'h:*' }] });
      const stranger = await refusedSse(herald, ssePath(['h:t']));
      assert.deepEqual([stranger.status, stranger.body.error], [401, { code: 'unauthorized', message: 'connect hook refused: who are you' }]);

      const stream = await openSse(herald, ['h:t'], { headers: { cookie: 'session=good' } });
      const subscribed = await stream.next();
      assert.equal(herald.userConnections('c1'), 1);
      // The hook may subscribe a stream to more topics: its ids then name every topic.
      assert.equal(subscribed.lastEventId, `h:t|0.${subscribed.json.epoch as string}`);
      const { offset, epoch } = await herald.publish('h:hooked', 'from the hook');
      const hooked = await stream.next();
      assert.equal(hooked.json.message, 'from the hook');
      assert.equal(hooked.lastEventId, `h:t|0.${subscribed.json.epoch as string},h:hooked|${offset!}.${epoch!}`);
      stream.destroy();
      await herald.close();
    });
  });

  it('admits origins as a WebSocket upgrade, with CORS headers a page of another origin needs', async () => {
    const listed = await startHerald({ allowedOrigins: ['https://app.example'] });
    const evil = await refusedSse(listed, ssePath(['news']), { headers: { origin: 'https://evil.example' } });
    assert.deepEqual([evil.status, evil.body.error.code], [403, 'forbidden']);
    const app = await openSse(listed, ['news'], { headers: { origin: 'https://app.example' } });
    assert.equal(app.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(app.headers['access-control-allow-credentials'], 'true');
    const open = await startHerald();
    const any = await openSse(open, ['news'], { headers: { origin: 'https://any.example' } });
    assert.equal(any.headers['access-control-allow-origin'], '*', 'readable without cookies: the token is in the URL');
    assert.equal(any.headers['access-control-allow-credentials'], undefined);
    app.destroy();
    any.destroy();
    await Promise.all([listed.close(), open.close()]);
  });

  it('answers 400 for a request it cannot read and the WebSocket limits with their status; other streams go on', async () => {
    const herald = await startHerald({ limits: { maxTopicsPerConnection: 2, maxConnectionsPerIp: 2 }, history: [{ pattern: 'h:*' }] });
    const first = await openSse(herald, ['h:a']);
    await first.next();

    const noTopic = await refusedSse(herald, '/sse');
    assert.deepEqual([noTopic.status, noTopic.body.error.code], [400, 'bad_request']);
    const invalid = await refusedSse(herald, ssePath(['a b']));
    assert.deepEqual([invalid.status, invalid.body.error.code], [400, 'invalid_topic']);
    const tooMany = await refusedSse(herald, ssePath(['a', 'b', 'c']));
    assert.deepEqual([tooMany.status, tooMany.body.error.code], [400, 'too_many_topics']);

    const bad: Array<[string, Record<string, string>, string | undefined, RegExp]> = [
      ['h:a', {}, 'garbage', /^Last-Event-ID cannot be read: "garbage" is not a position/],
      ['h:a', { lastEventId: 'h:a|x.y' }, undefined, /^lastEventId cannot be read: "x\.y" is not a position/],
      ['h:a,h:b', {}, '3.abc', /names no topic: it is the id of a stream of one topic, and this stream has 2/],
      ['h:a', {}, 'h:a|1.e,h:a|2.e', /appears twice/],
      ['h:a', {}, 'h%E0%A4|1.e', /not valid percent-encoding/],
    ];
    for (const [topics, query, lastEventId, message] of bad) {
      const refused = await refusedSse(herald, ssePath(topics.split(','), query), lastEventId ? { lastEventId } : {});
      assert.deepEqual([refused.status, refused.body.error.code], [400, 'bad_request'], `${topics} ${JSON.stringify(query)} ${lastEventId}`);
      assert.match(refused.body.error.message, message);
    }
    // An id that names none of the stream's topics only gives no position.
    const second = await openSse(herald, ['h:a'], { lastEventId: 'h:other|3.e' });
    assert.deepEqual(Object.keys((await second.next()).json), ['action', 'ok', 'topic', 'offset', 'epoch']);

    const third = await refusedSse(herald, ssePath(['h:a']));
    assert.deepEqual([third.status, third.body.error.code, third.headers['retry-after']], [429, 'rate_limited', '10']);
    const gone = disconnected(herald);
    second.destroy();
    await deadline(gone, 5000, 'the server to see the stream go');
    const again = await openSse(herald, ['h:a']);
    await again.next();

    await herald.publish('h:a', 'still here');
    assert.equal((await first.next()).json.message, 'still here');
    assert.equal((await again.next()).json.message, 'still here');
    first.destroy();
    again.destroy();
    await herald.close();
  });
});

describe('SSE streams: slow readers, heartbeat, shutdown', () => {
  it('cuts a stream that stops reading at maxQueueBytes (1013), as a WebSocket, and ends it with event: close', async () => {
    const maxQueueBytes = 256 * 1024;
    const herald = await startHerald({ limits: { maxQueueBytes }, shutdown: { timeout: 10_000 } });
    const slow = await openSse(herald, ['firehose']);
    const fastStreams = await Promise.all([openSse(herald, ['firehose']), openSse(herald, ['firehose'])]);
    const ws = await connect(herald);
    await ws.request({ action: 'subscribe', topic: 'firehose' });
    for (const stream of [slow, ...fastStreams]) await stream.next();
    const cut = disconnected(herald, 1013);
    let slowCut = false;
    void cut.then(() => (slowCut = true));

    slow.pause();
    const payload = 'y'.repeat(4096);
    let published = 0;
    const caughtUp = async (): Promise<void> => {
      await Promise.all(fastStreams.map((s) => s.until(() => messages(s).length >= published, `${published} publications`, 10_000)));
      await ws.collect(published);
    };
    for (let batch = 0; batch < 1000 && !slowCut; batch++) {
      for (let i = 0; i < 64; i++) await herald.publish('firehose', { n: published++, payload });
      await caughtUp();
    }
    const info = await deadline(cut, 5000, 'the slow stream to be cut');
    assert.equal(info.by, 'server');
    assert.ok(published * 4096 > maxQueueBytes, 'the limit was really exceeded');

    for (let i = 0; i < 10; i++) await herald.publish('firehose', { n: published++, payload });
    await caughtUp();
    for (const stream of fastStreams) {
      const got = messages(stream) as Array<{ n: number }>;
      assert.equal(got.length, published);
      assert.ok(got.every((m, i) => m.n === i), 'every message exactly once, in order');
    }

    slow.resume();
    await deadline(slow.ended, 10_000, 'the slow stream to end');
    const last = slow.events.at(-1)!;
    assert.equal(last.event, 'close');
    assert.equal(last.json.code, 1013);
    assert.match(last.json.reason, /slow consumer/);
    assert.ok(messages(slow).length < published);
    assert.equal(herald.status().slowConsumerDisconnects, 1);
    assert.equal(herald.status().connections, 3);
    for (const stream of fastStreams) stream.destroy();
    await ws.close();
    await herald.close();
  });

  it('sends heartbeat comments that keep an idle stream open past http.idleTimeout', async () => {
    const herald = await startHerald({ heartbeat: { interval: 300, timeout: 1000 }, http: { idleTimeout: 100 } });
    const stream = await openSse(herald, ['quiet']);
    await stream.next();
    const since = Date.now();
    await stream.until(() => stream.comments >= 2, 'two heartbeat comments', 5000);
    assert.ok(Date.now() - since >= 300, 'a comment every heartbeat.interval');
    assert.equal(stream.finished, false);
    await herald.publish('quiet', 'after the silence');
    assert.equal((await stream.next()).json.message, 'after the silence');
    stream.destroy();
    await herald.close();
  });

  it('on shutdown ends every stream with event: close (1001) and refuses new ones with 503', async () => {
    const herald = await startHerald({ shutdown: { drainWindow: 600 } });
    const streams = await Promise.all([openSse(herald, ['news']), openSse(herald, ['news'])]);
    for (const stream of streams) await stream.next();
    const closing = herald.close();
    const late = await refusedSse(herald, ssePath(['news']));
    assert.deepEqual([late.status, late.body.error.code], [503, 'unavailable']);
    for (const stream of streams) {
      const close = await stream.next();
      assert.deepEqual([close.event, close.json], ['close', { code: 1001, reason: 'server shutting down: reconnect' }]);
      await deadline(stream.ended, 5000, 'the end of the stream');
    }
    await closing;
  });
});
