import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { DisconnectInfo, Herald, HeraldOptions } from '../../src/index.js';
import { brokerReady, connect, deadline, http, startHerald } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { eventually, NatsServer, RedisServer, requireBinary, type ServerProcess } from '../helpers/servers.js';
import { StreamClient } from '../helpers/stream-client.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** The parts of a session token: node (base64url), key, secret. */
function parts(token: string): [string, string, string] {
  const split = token.split('.');
  assert.equal(split.length, 3, `a token of three parts: ${token}`);
  return split as [string, string, string];
}

describe('HTTP streaming', () => {
  it('opens a stream: NDJSON headers, the first line names the session; tokens are distinct, carry 144 random bits and name the node', async () => {
    const herald = await startHerald({ nodeId: 'node-α' });
    const stream = await StreamClient.open(herald.url);
    const headers = stream.response.headers;
    assert.equal(headers['content-type'], 'application/x-ndjson; charset=utf-8');
    assert.equal(headers['cache-control'], 'no-store');
    assert.equal(headers['x-accel-buffering'], 'no');
    assert.deepEqual(stream.frames[0], { action: 'stream', session: stream.session });
    const [node, , secret] = parts(stream.session);
    assert.equal(Buffer.from(node, 'base64url').toString('utf8'), 'node-α');
    assert.ok(Buffer.from(secret, 'base64url').length >= 16, 'at least 128 bits of secret');
    // The body is optional, even with a JSON content type.
    const others = await Promise.all(Array.from({ length: 5 }, (_, i) => StreamClient.open(herald.url, i === 0 ? { headers: { 'content-type': 'application/json' } } : {})));
    const tokens = new Set([stream.session, ...others.map((s) => s.session)]);
    assert.equal(tokens.size, 6, 'every stream has its own token');
    assert.equal(new Set([...tokens].map((t) => parts(t)[2])).size, 6, 'and its own secret');
    assert.equal(herald.status().connections, 6);
    // The names of the stream's own first and last lines are no application's action.
    for (const reserved of ['stream', 'close']) assert.throws(() => herald.handle(reserved, () => 1), /built-in action/, reserved);
    assert.deepEqual((await stream.request({ action: 'ping' })).ok, true);
    for (const s of [stream, ...others]) s.destroy();
    await herald.close();
  });

  it('carries the JSON protocol: login, subscribe, publish, history, presence by POST, replies by id on the stream, publications and pushes arrive', async () => {
    const herald = await startHerald({
      auth: { jwt: { secret: SECRET } },
      history: [{ pattern: 'h:*', size: 100 }],
      presence: [{ pattern: 'room:*', joinLeave: true }],
    });
    const stream = await StreamClient.open(herald.url);
    const login = await stream.request({ action: 'login', token: await signToken({ sub: 'alice' }) });
    assert.equal(login.ok, true);
    assert.equal(login.uid, 'alice');
    const subscribed = await stream.request({ action: 'subscribe', topic: 'h:news' });
    assert.deepEqual([subscribed.ok, subscribed.offset], [true, 0]);

    // A publication from a WebSocket client, from the HTTP API, and from the stream itself.
    const ws = await connect(herald);
    await ws.request({ action: 'subscribe', topic: 'h:news' });
    const first = await ws.request({ action: 'publish', topic: 'h:news', message: { from: 'ws' } });
    assert.equal(first.offset, 1);
    const { epoch } = first;
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'h:news', message: { from: 'api' } })).status, 200);
    const published = await stream.request({ action: 'publish', topic: 'h:news', message: { from: 'stream', text: 'two\nlines' } });
    assert.deepEqual([published.ok, published.offset, published.epoch], [true, 3, epoch]);
    assert.deepEqual(await stream.next(), { action: 'publish', topic: 'h:news', message: { from: 'ws' }, offset: 1, epoch });
    assert.deepEqual(await stream.next(), { action: 'publish', topic: 'h:news', message: { from: 'api' }, offset: 2, epoch });
    assert.deepEqual(await stream.next(), { action: 'publish', topic: 'h:news', message: { from: 'stream', text: 'two\nlines' }, offset: 3, epoch });
    assert.deepEqual((await ws.collect(3)).map((f) => f.message.from), ['ws', 'api', 'stream']);

    const history = await stream.request({ action: 'history', topic: 'h:news', since: { offset: 1, epoch } });
    assert.deepEqual(history.publications.map((p: { offset: number }) => p.offset), [2, 3]);

    await stream.request({ action: 'subscribe', topic: 'room:1' });
    const bob = await connect(herald, { path: `/ws?token=${await signToken({ sub: 'bob' })}` });
    await bob.request({ action: 'subscribe', topic: 'room:1' });
    const joined = await stream.next();
    assert.deepEqual([joined.action, joined.topic, joined.info.uid], ['join', 'room:1', 'bob']);
    const presence = await stream.request({ action: 'presence', topic: 'room:1' });
    assert.deepEqual([presence.connections, presence.users], [2, 2]);

    assert.equal((await herald.send('alice', { hello: 'alice' })).delivered, 1);
    assert.deepEqual(await stream.next(), { action: 'push', message: { hello: 'alice' } });

    // A command the protocol refuses is answered on the stream, as on a WebSocket.
    const refused = await stream.request({ action: 'subscribe', topic: 'user:bob' });
    assert.deepEqual([refused.ok, refused.error.code], [false, 'forbidden']);
    const unsubscribed = await stream.request({ action: 'unsubscribe', topic: 'room:1' });
    assert.equal(unsubscribed.ok, true);
    assert.equal((await bob.next()).action, 'leave');
    stream.destroy();
    await herald.close();
  });

  it('handles the commands of the POST /stream body first, in order; takes a Bearer or ?token= identity; a bad token ends the stream with 4501', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET }, anonymous: false } });
    const body = [
      { id: 1, action: 'login', token: await signToken({ sub: 'carol' }) },
      { id: 2, action: 'subscribe', topic: 'news' },
      { id: 3, action: 'ping' },
    ];
    const withBody = await StreamClient.open(herald.url, { body });
    assert.deepEqual((await withBody.collect(4)).slice(1).map((f) => [f.id, f.action, f.ok]), [[1, 'login', true], [2, 'subscribe', true], [3, 'ping', true]]);
    await herald.publish('news', 'first');
    assert.deepEqual(await withBody.next(), { action: 'publish', topic: 'news', message: 'first' });

    // text/plain is JSON too (a page can send it without a CORS preflight).
    const plain = await StreamClient.open(herald.url, { body: JSON.stringify([{ id: 7, action: 'ping' }, { id: 8, action: 'subscribe', topic: 'news' }]), headers: { 'content-type': 'text/plain' } });
    assert.deepEqual(await plain.next(), { id: 7, action: 'ping', ok: true });
    const anonymous = await plain.next();
    assert.deepEqual([anonymous.id, anonymous.ok, anonymous.error.code], [8, false, 'unauthorized'], 'no identity yet: only login and ping');

    const bearer = await StreamClient.open(herald.url, { headers: { authorization: `Bearer ${await signToken({ sub: 'dave' })}` } });
    assert.equal((await bearer.request({ action: 'subscribe', topic: 'user:dave' })).ok, true, 'the Bearer token is the identity');
    const query = await StreamClient.open(herald.url, { query: `?token=${await signToken({ sub: 'erin' })}` });
    assert.equal((await query.request({ action: 'subscribe', topic: 'user:erin' })).ok, true, 'so is ?token=');
    assert.equal(herald.status().users, 3, 'carol, dave and erin');

    const bad = await StreamClient.open(herald.url, { headers: { authorization: 'Bearer not-a-jwt' } });
    const frames = await bad.ended();
    assert.equal(frames.at(-1).action, 'close');
    assert.equal(frames.at(-1).code, 4501);
    for (const s of [withBody, plain, bearer, query]) s.destroy();
    await herald.close();
  });

  it('answers bad sends with 400, 413, 415 or 404 session_not_found, opens nothing for a bad body, and the stream goes on', async () => {
    const herald = await startHerald({ limits: { maxHttpBodyBytes: 4096, maxFrameBytes: 1024 } });
    const stream = await StreamClient.open(herald.url);
    const send = (body: unknown, headers: Record<string, string> = {}) => http(herald, 'POST', '/stream/send', body, headers);
    const cases: Array<[unknown, Record<string, string>, number, string]> = [
      ['{"session":', { 'content-type': 'text/plain' }, 400, 'bad_request'],
      ['{"session":', {}, 400, 'bad_request'],
      [[stream.session], {}, 400, 'bad_request'],
      [{ commands: [{ action: 'ping' }] }, {}, 400, 'bad_request'],
      [{ session: stream.session }, {}, 400, 'bad_request'],
      [{ session: stream.session, commands: [] }, {}, 400, 'bad_request'],
      [{ session: stream.session, commands: { action: 'ping' } }, {}, 400, 'bad_request'],
      [{ session: stream.session, command: { action: 'ping' }, commands: [{ action: 'ping' }] }, {}, 400, 'bad_request'],
      [`session=${stream.session}`, { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'bad_request'],
      [{ session: stream.session, command: { action: 'publish', topic: 'x', message: 'y'.repeat(1100) } }, {}, 413, 'too_large'],
      [{ session: stream.session, command: { action: 'publish', topic: 'x', message: 'y'.repeat(5000) } }, {}, 413, 'too_large'],
      [{ session: 'nope', command: { action: 'ping' } }, {}, 404, 'session_not_found'],
      [{ session: `${parts(stream.session)[0]}.AAAAAAAAAAAA.${parts(stream.session)[2]}`, command: { action: 'ping' } }, {}, 404, 'session_not_found'],
    ];
    for (const [body, headers, status, code] of cases) {
      const answer = await send(body, headers);
      assert.equal(answer.status, status, `${JSON.stringify(body).slice(0, 80)}: ${answer.text}`);
      assert.equal(answer.body.ok, false);
      assert.equal(answer.body.error.code, code, answer.text);
    }
    assert.match((await send({ session: 'nope', command: {} })).body.error.message, /no stream with this session token/);

    // A bad POST /stream opens no stream and holds no slot.
    assert.equal((await http(herald, 'POST', '/stream', '[{"action":')).status, 400);
    assert.equal((await http(herald, 'POST', '/stream', { action: 'publish', topic: 'x', message: 'y'.repeat(1100) })).status, 413);
    assert.equal((await http(herald, 'POST', '/stream', 'a=b', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
    assert.equal(herald.status().connections, 1);

    // A command that is not one is the protocol's business: an error on the stream, which stays open.
    assert.equal((await send({ session: stream.session, command: 42 })).status, 202);
    assert.deepEqual(await stream.next(), { action: 'error', error: { code: 'bad_request', message: 'a command must be a JSON object' } });
    assert.equal((await stream.request({ action: 'ping' })).ok, true);
    assert.equal(stream.frames.filter((f) => f.id !== undefined).length, 0, 'nothing else was answered');
    stream.destroy();
    await herald.close();
  });

  it('a session token cannot be forged: another secret, another stream\'s secret or another node gives 404 and feeds nothing', async () => {
    const herald = await startHerald();
    const [a, b] = await Promise.all([StreamClient.open(herald.url), StreamClient.open(herald.url)]);
    const [node, key, secret] = parts(a.session);
    const flipped = `${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`;
    const forged = [
      `${node}.${key}.${parts(b.session)[2]}`,
      `${node}.${key}.${flipped}`,
      `${node}.${key}.${secret.slice(0, -1)}`,
      `${node}.${key}.${secret}A`,
      `${node}.${parts(b.session)[1]}.${secret}`,
      `${Buffer.from('another-node').toString('base64url')}.${key}.${secret}`,
      `${node}.${key}.${secret}.x`,
    ];
    for (const [i, token] of forged.entries()) {
      const answer = await http(herald, 'POST', '/stream/send', { session: token, command: { id: 100 + i, action: 'publish', topic: 'x', message: 'forged' } });
      assert.equal(answer.status, 404, token);
      assert.equal(answer.body.error.code, 'session_not_found');
    }
    // Sends are fed in order: once the genuine ping's reply is there, a forged command would have been answered before it.
    assert.equal((await a.request({ action: 'ping' })).ok, true);
    assert.equal((await b.request({ action: 'ping' })).ok, true);
    for (const s of [a, b]) assert.deepEqual(s.frames.slice(1), [], 'no reply to a forged command');
    a.destroy();
    b.destroy();
    await herald.close();
  });

  it('rate-limits commands as on a WebSocket: the same replies for the same commands', async () => {
    const herald = await startHerald({ limits: { commandsPerSecond: 0.1, commandBurst: 3 } });
    const commands = Array.from({ length: 6 }, (_, i) => ({ id: i + 1, action: 'ping' }));
    const ws = await connect(herald);
    for (const command of commands) ws.send(command);
    const overWs = await ws.collect(6);
    const stream = await StreamClient.open(herald.url);
    assert.equal((await stream.send({ commands })).status, 202);
    const overStream = (await stream.collect(7)).slice(1);
    assert.deepEqual(overStream, overWs);
    assert.deepEqual(overStream.map((f) => f.ok), [true, true, true, false, false, false]);
    assert.equal(overStream[3].error.code, 'rate_limited');
    stream.destroy();
    await herald.close();
  });

  it('heartbeat: an idle stream that reads gets an empty line on every interval and is kept', async () => {
    const interval = 100;
    const timeout = 150;
    const herald = await startHerald({ heartbeat: { interval, timeout } });
    const stream = await StreamClient.open(herald.url);
    const start = Date.now();
    // Five intervals: far past interval + timeout, which would cut a pinged connection showing no sign of life.
    await stream.until((s) => s.heartbeats >= 5, 'five heartbeat lines');
    assert.ok(Date.now() - start >= 4 * interval, `heartbeats come on the interval (${Date.now() - start} ms)`);
    assert.equal(herald.status().connections, 1, 'the idle stream is kept');
    assert.equal((await stream.request({ action: 'ping' })).ok, true);
    assert.deepEqual(stream.frames.slice(1), [], 'heartbeats are empty lines, no frame');
    stream.destroy();
    await herald.close();
  });

  it('cuts a reader that stops reading with the queue bound of a WebSocket (1013); the others get everything', async () => {
    const maxQueueBytes = 256 * 1024;
    const herald = await startHerald({ limits: { maxQueueBytes } });
    const slowStream = await StreamClient.open(herald.url);
    const slowWs = await connect(herald);
    const fast = await Promise.all([StreamClient.open(herald.url), StreamClient.open(herald.url)]);
    for (const c of [slowStream, ...fast]) await c.request({ action: 'subscribe', topic: 'firehose' });
    await slowWs.request({ action: 'subscribe', topic: 'firehose' });
    const cuts: DisconnectInfo[] = [];
    const bothCut = new Promise<void>((resolve) => {
      herald.on('disconnect', (_connection, info) => {
        if (info.code === 1013) cuts.push(info);
        if (cuts.length === 2) resolve();
      });
    });
    let cut = false;
    void bothCut.then(() => (cut = true));

    slowStream.pause();
    slowWs.ws.pause();
    const payload = 'y'.repeat(4096);
    let published = 0;
    for (let batch = 0; batch < 1000 && !cut; batch++) {
      for (let i = 0; i < 64; i++) await herald.publish('firehose', { n: published++, payload });
      await Promise.all(fast.map((c) => c.until((s) => s.frames.length >= 1 + published, `${published} publications`)));
    }
    await deadline(bothCut, 5000, 'both slow readers to be cut');
    assert.ok(published * 4096 > maxQueueBytes, 'the limit was really exceeded');
    assert.equal(herald.status().slowConsumerDisconnects, 2, 'the stream and the WebSocket alike');
    for (const c of fast) {
      const frames = (await c.collect(1 + published)).slice(1);
      assert.ok(frames.every((f, i) => f.message.n === i), 'every publication once, in order');
    }

    // Reading again, the slow stream finds what was queued, then the close line, then the end.
    slowStream.resume();
    const frames = await slowStream.ended();
    const last = frames.at(-1);
    assert.equal(last.action, 'close');
    assert.equal(last.code, 1013);
    assert.match(last.reason, /slow consumer/);
    assert.ok(frames.length - 2 < published, 'the slow stream got fewer publications than were published');
    slowWs.ws.resume();
    assert.equal((await slowWs.closed).code, 1013);
    for (const c of fast) c.destroy();
    await herald.close();
  });

  it('admission as a WebSocket: a refused origin is 403, a full address 429, and a stream gives its slot back when it ends', async () => {
    const herald = await startHerald({ allowedOrigins: ['https://app.example.com'], limits: { maxConnectionsPerIp: 1 } });
    const foreign = await http(herald, 'POST', '/stream', undefined, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.deepEqual(foreign.body, { ok: false, error: { code: 'forbidden', message: 'origin https://evil.example is not allowed' } });
    const first = await StreamClient.open(herald.url, { headers: { origin: 'https://app.example.com' } });
    const full = await http(herald, 'POST', '/stream');
    assert.equal(full.status, 429);
    assert.equal(full.body.error.code, 'rate_limited');
    assert.equal(full.headers.get('retry-after'), '10');
    const gone = new Promise<DisconnectInfo>((resolve) => herald.on('disconnect', (_c, info) => resolve(info)));
    first.destroy();
    const info = await deadline(gone, 5000, 'the stream to end');
    assert.deepEqual([info.code, info.by], [1006, 'client']);
    const again = await StreamClient.open(herald.url);
    assert.equal((await again.request({ action: 'ping' })).ok, true);
    again.destroy();
    await herald.close();
  });

  it('shutdown: new streams get 503 while it drains, every stream ends with a close line 1001', async () => {
    const herald = await startHerald({ shutdown: { drainWindow: 1500, timeout: 2000 } });
    const base = herald.url;
    const streams = await Promise.all(Array.from({ length: 4 }, () => StreamClient.open(base)));
    const closing = herald.close();
    const late = await http(base, 'POST', '/stream');
    assert.equal(late.status, 503);
    assert.equal(late.body.error.code, 'unavailable');
    assert.ok(streams.some((s) => !s.done), 'the drain is spread: not every stream has ended yet');
    await closing;
    for (const s of streams) {
      const frames = await s.ended();
      assert.deepEqual(frames.at(-1), { action: 'close', code: 1001, reason: 'server shutting down: reconnect' });
    }
    assert.equal(internals(herald).sessions.size, 0);
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`HTTP streaming on two nodes (${kind} broker): commands may land on any node`, () => {
    const skip = requireBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
    const server: ServerProcess = kind === 'redis' ? new RedisServer() : new NatsServer();
    before(async () => {
      if (!skip) await server.start();
    });
    after(() => server.stop());

    let tests = 0;
    /** Two nodes on the broker, in a namespace of their own, that see each other. */
    async function pair(options: HeraldOptions = {}): Promise<[Herald, Herald]> {
      const prefix = kind === 'redis' ? `hs${++tests}:` : `hs${++tests}.`;
      const make = (): Promise<Herald> => startHerald({ broker: kind, [kind]: { url: server.url, prefix, rawTopics: ['feed'] }, cluster: { heartbeatInterval: 200 }, ...options });
      const nodes = await Promise.all([make(), make()]);
      await Promise.all(nodes.map((node) => brokerReady(node)));
      await eventually(() => nodes.every((node) => node.clusterView().length === 2), 'the two nodes to see each other');
      return nodes as [Herald, Herald];
    }

    it('commands POSTed to the node that does not hold the stream are handled by the one that does, in order; replies and publications on the stream', async (t) => {
      if (skip) return t.skip(skip);
      const [a, b] = await pair({ auth: { jwt: { secret: SECRET } }, history: [{ pattern: 'h:*', size: 100 }] });
      const stream = await StreamClient.open(a.url);
      assert.equal(Buffer.from(parts(stream.session)[0], 'base64url').toString(), internals(a).cluster.nodeId, 'the token names the node holding the stream');

      const login = await stream.request({ action: 'login', token: await signToken({ sub: 'frank' }) }, b.url);
      assert.deepEqual([login.ok, login.uid], [true, 'frank']);
      assert.equal((await stream.request({ action: 'subscribe', topic: 'h:orders' }, b.url)).ok, true);
      await eventually(() => b.isUserConnected('frank'), 'node B to know frank is connected on A');

      // One send of twenty commands through B: handled in order on A.
      const commands = Array.from({ length: 20 }, (_, i) => ({ id: 100 + i, action: 'publish', topic: 'h:orders', message: i }));
      assert.equal((await stream.send({ commands }, b.url)).status, 202);
      const replies: any[] = [];
      for (const command of commands) replies.push(await stream.reply(command.id));
      assert.deepEqual(replies.map((r) => r.offset), Array.from({ length: 20 }, (_, i) => i + 1), 'offsets in the order of the commands');
      const publications = await stream.collect(1 + 20);
      assert.deepEqual(publications.slice(1).map((p) => p.message), Array.from({ length: 20 }, (_, i) => i));

      // Sends alternating between the nodes keep their order (one at a time, as a client sends them).
      const subscriber = await connect(b);
      await subscriber.request({ action: 'subscribe', topic: 'plain' });
      await stream.request({ action: 'subscribe', topic: 'plain' }, b.url);
      for (let i = 0; i < 10; i++) assert.equal((await stream.request({ action: 'publish', topic: 'plain', message: i }, i % 2 === 0 ? b.url : a.url)).ok, true);
      assert.deepEqual((await subscriber.collect(10)).map((f) => f.message), Array.from({ length: 10 }, (_, i) => i), 'a subscriber on B gets them in order');
      assert.deepEqual((await stream.collect(1 + 20 + 10)).slice(21).map((f) => f.message), Array.from({ length: 10 }, (_, i) => i));

      // A push to the stream's user from B, and a forged or stale token through B.
      assert.deepEqual(await b.send('frank', 'hi'), { delivered: 0, nodes: 1 }, 'delivered by node A, not B');
      assert.deepEqual(await stream.next(), { action: 'push', message: 'hi' });
      const [node, key, secret] = parts(stream.session);
      for (const session of [`${node}.${key}.${'A'.repeat(24)}`, `${node}.AAAAAAAAAAAA.${secret}`]) {
        const answer = await http(b, 'POST', '/stream/send', { session, command: { id: 999, action: 'ping' } });
        assert.equal(answer.status, 404, answer.text);
        assert.equal(answer.body.error.code, 'session_not_found');
      }
      assert.equal((await stream.request({ action: 'ping' }, b.url)).ok, true);
      assert.equal(stream.frames.some((f) => f.id === 999), false, 'nothing forged was handled');

      // The stream ended: its token names no stream any more, from either node.
      const ended = new Promise<void>((resolve) => a.on('disconnect', () => resolve()));
      stream.destroy();
      await deadline(ended, 5000, 'the stream to end on A');
      for (const via of [a, b]) assert.equal((await http(via, 'POST', '/stream/send', { session: stream.session, command: { action: 'ping' } })).status, 404);

      // A node no node has heard of holds nothing: 404 at once, once B has run for three heartbeats (before, it may not have heard from every node yet).
      await eventually(() => !internals(b).cluster.mayBeLive('gone'), 'node B to have run for three heartbeats');
      const gone = await http(b, 'POST', '/stream/send', { session: `${Buffer.from('gone').toString('base64url')}.${key}.${secret}`, command: { action: 'ping' } });
      assert.deepEqual([gone.status, gone.body.error.code], [404, 'session_not_found']);
    });

    it('answers 504 when the node holding the stream does not take the commands within stream.relayTimeout', async (t) => {
      if (skip) return t.skip(skip);
      const relayTimeout = 300;
      const [a, b] = await pair({ stream: { relayTimeout } });
      // A command that never answers holds the stream's next frames; past 64 of them the stream takes no more.
      a.handle('stall', () => new Promise(() => undefined));
      const stream = await StreamClient.open(a.url);
      const commands = [{ id: 1, action: 'stall' }, ...Array.from({ length: 70 }, (_, i) => ({ id: i + 2, action: 'ping' }))];
      const start = Date.now();
      const answer = await stream.send({ commands }, b.url);
      assert.equal(answer.status, 504, answer.text);
      assert.equal(answer.body.error.code, 'unavailable');
      assert.ok(Date.now() - start >= relayTimeout, `after the relay timeout (${Date.now() - start} ms)`);
      stream.destroy();
    });

    if (kind === 'redis') {
      it("a raw publisher's pretty-printed JSON arrives as one line", async (t) => {
        if (skip) return t.skip(skip);
        const [a] = await pair();
        const stream = await StreamClient.open(a.url);
        await stream.request({ action: 'subscribe', topic: 'feed' });
        const php = new Redis(server.url);
        assert.ok((await php.publish('feed', '{\n  "booked": 1,\r\n  "room": "a b"\n}')) >= 1);
        php.disconnect();
        assert.deepEqual(await stream.next(), { action: 'publish', topic: 'feed', message: { booked: 1, room: 'a b' } });
        stream.destroy();
      });
    }
  });
}
