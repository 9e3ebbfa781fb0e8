import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { CLOSED_WHILE_CONNECTING } from '../../src/auth/authenticator.js';
import type { Logger } from '../../src/log.js';
import { CloseCode } from '../../src/index.js';
import { connect, deadline, startHerald, wsUrl } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';
import { eventually } from '../helpers/servers.js';

const token = (sub: string): Promise<string> => signToken({ sub });

/** Opens a WebSocket and resolves with 101 or the HTTP status that refused it. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; ws?: WebSocket; retryAfter?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('error', () => undefined);
  });
}

describe('abuse limits', () => {
  it('a client sending 10× its command budget gets rate_limited; other clients are unaffected', async () => {
    const herald = await startHerald({ limits: { commandsPerSecond: 5, commandBurst: 10 } });
    const [flooder, neighbour] = await Promise.all([connect(herald), connect(herald)]);
    await neighbour.request({ action: 'subscribe', topic: 'calm' });
    const frames = Array.from({ length: 100 }, (_, i) => ({ id: i, action: 'ping' }));
    flooder.send(frames);
    const replies = await flooder.collect(100);
    const limited = replies.filter((r) => r.error?.code === 'rate_limited');
    const passed = replies.filter((r) => r.ok === true);
    assert.ok(passed.length >= 10 && passed.length <= 12, `the burst passes (${passed.length})`);
    assert.equal(limited.length + passed.length, 100, 'every command got exactly one reply');
    assert.match(limited[0].error.message, /over 5 commands per second/);

    // The neighbour's commands all go through and it receives publications.
    for (let i = 0; i < 5; i++) assert.equal((await neighbour.request({ action: 'ping' })).ok, true);
    await herald.publish('calm', 'fine');
    assert.equal((await neighbour.next()).message, 'fine');
    await Promise.all([flooder.close(), neighbour.close()]);
    await herald.close();
  });

  it('new connections over the node rate are answered 503 with Retry-After', async () => {
    const herald = await startHerald({ limits: { connectionsPerSecond: 2 } });
    const results = await Promise.all(Array.from({ length: 12 }, () => upgradeStatus(wsUrl(herald))));
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 101).length >= 4, statuses.join(','));
    const refused = results.filter((r) => r.status === 503);
    assert.ok(refused.length >= 1, statuses.join(','));
    assert.equal(refused[0]!.retryAfter, '1');
    for (const r of results) r.ws?.close();
    await herald.close();
  });

  it('connections per address over the limit are answered 429', async () => {
    const herald = await startHerald({ limits: { maxConnectionsPerIp: 3 } });
    const open = await Promise.all([connect(herald), connect(herald), connect(herald)]);
    assert.equal((await upgradeStatus(wsUrl(herald))).status, 429);
    await open[0]!.close();
    // The count follows closes: a place is free again once the server has seen the close.
    while (herald.status().connections > 2) await new Promise((resolve) => herald.on('disconnect', resolve));
    const again = await upgradeStatus(wsUrl(herald));
    assert.equal(again.status, 101);
    again.ws!.close();
    await Promise.all(open.slice(1).map((c) => c.close()));
    await herald.close();
  });

  it('behind a proxy (trustProxy) the limit applies per forwarded address', async () => {
    const herald = await startHerald({ trustProxy: true, limits: { maxConnectionsPerIp: 1 } });
    const a = await upgradeStatus(wsUrl(herald), { 'x-forwarded-for': '198.51.100.1' });
    const b = await upgradeStatus(wsUrl(herald), { 'x-forwarded-for': '198.51.100.2, 10.0.0.1' });
    const a2 = await upgradeStatus(wsUrl(herald), { 'x-forwarded-for': '198.51.100.1' });
    assert.deepEqual([a.status, b.status, a2.status], [101, 101, 429]);
    a.ws!.close();
    b.ws!.close();
    await herald.close();
  });

  it('connections per user over the limit are closed with 4029', async () => {
    const herald = await startHerald({ limits: { maxConnectionsPerUser: 2 }, auth: { jwt: { secret: SECRET } } });
    const t = await token('busy');
    const first = await connect(herald, { path: `/ws?token=${t}` });
    const second = await connect(herald, { path: `/ws?token=${t}` });
    const third = await connect(herald, { path: `/ws?token=${t}` });
    const closed = await third.closed;
    assert.equal(closed.code, CloseCode.TOO_MANY_CONNECTIONS);
    assert.match(closed.reason, /too many connections for user busy/);
    // A login into a full uid is refused but the connection stays.
    const fourth = await connect(herald);
    const reply = await fourth.request({ action: 'login', token: t });
    assert.equal(reply.error.code, 'rate_limited');
    assert.equal(herald.userConnections('busy'), 2);
    await Promise.all([first.close(), second.close(), fourth.close()]);
    await herald.close();
  });

  it('an origin outside allowedOrigins is refused with 403; allowed and absent origins pass', async () => {
    const herald = await startHerald({ allowedOrigins: ['https://app.example'] });
    assert.equal((await upgradeStatus(wsUrl(herald), { origin: 'https://evil.example' })).status, 403);
    const allowed = await upgradeStatus(wsUrl(herald), { origin: 'https://app.example' });
    assert.equal(allowed.status, 101);
    const none = await upgradeStatus(wsUrl(herald));
    assert.equal(none.status, 101);
    allowed.ws!.close();
    none.ws!.close();
    await herald.close();
  });
});

describe('connect hook', () => {
  let backend: Server;
  let hookUrl: string;
  const seen: Array<Record<string, any>> = [];
  let pendingSlow: ServerResponse[] = [];
  /** Answers held back until the test gives them (cookie session=held). */
  const held: ServerResponse[] = [];

  before(async () => {
    backend = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        const request = JSON.parse(body) as Record<string, any>;
        seen.push(request);
        const cookie: string = request.headers.cookie ?? '';
        if (cookie.includes('session=good')) {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ uid: 'hooked', topics: ['room:1', 'private:hook-room'], info: { name: 'Hook' } }));
        } else if (cookie.includes('session=topics-only')) {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ topics: ['room:hooked'] }));
        } else if (cookie.includes('session=anon')) {
          res.end('');
        } else if (cookie.includes('session=banned')) {
          res.statusCode = 403;
          res.end('banned');
        } else if (cookie.includes('session=held')) {
          held.push(res);
        } else if (cookie.includes('session=slow')) {
          pendingSlow.push(res);
        } else if (cookie.includes('session=broken')) {
          res.statusCode = 500;
          res.end('oops');
        } else {
          res.statusCode = 401;
          res.end('who are you');
        }
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}/connect`;
  });
  after(async () => {
    for (const res of pendingSlow) res.end('{}');
    pendingSlow = [];
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  it('allows: the backend names the uid and the topics it joins, with the forwarded cookie', async () => {
    const herald = await startHerald({ auth: { connectHook: { url: hookUrl } } });
    const c = await connect(herald, { headers: { cookie: 'session=good', 'x-secret': 'not forwarded' } });
    assert.equal((await c.request({ action: 'ping' })).ok, true);
    assert.equal(herald.userConnections('hooked'), 1);
    assert.equal(internals(herald).hub.subscriberCount('room:1'), 1);
    assert.equal(internals(herald).hub.subscriberCount('private:hook-room'), 1);
    await herald.publish('private:hook-room', 'joined');
    assert.deepEqual(await c.next(), { action: 'publish', topic: 'private:hook-room', message: 'joined' });
    const request = seen.at(-1)!;
    assert.equal(request.headers.cookie, 'session=good');
    assert.equal(request.headers['x-secret'], undefined);
    assert.equal(request.ip, '127.0.0.1');
    assert.equal(request.url, '/ws');
    // An empty 200 admits an anonymous connection.
    const anon = await connect(herald, { headers: { cookie: 'session=anon' } });
    assert.equal((await anon.request({ action: 'ping' })).ok, true);
    await Promise.all([c.close(), anon.close()]);
    await herald.close();
  });

  it('denies: 401 closes with 4501, 403 with 4503, another status with 4000', async () => {
    const herald = await startHerald({ auth: { connectHook: { url: hookUrl } } });
    const stranger = await connect(herald);
    assert.deepEqual(await stranger.closed, { code: CloseCode.UNAUTHORIZED, reason: 'connect hook refused: who are you' });
    const banned = await connect(herald, { headers: { cookie: 'session=banned' } });
    assert.deepEqual(await banned.closed, { code: CloseCode.FORBIDDEN, reason: 'connect hook refused: banned' });
    const broken = await connect(herald, { headers: { cookie: 'session=broken' } });
    assert.deepEqual(await broken.closed, { code: CloseCode.RECONNECT, reason: 'connect hook answered 500' });
    assert.equal(herald.status().connections, 0);
    await herald.close();
  });

  it('a connection that closes before the backend answers is not subscribed nor indexed afterwards, and the application never hears of it (no ghost)', async () => {
    let hookDone!: () => void;
    const hookFinished = new Promise<void>((resolve) => (hookDone = resolve));
    // The gateway's debug line once it gave up on the connection: the event this test waits for.
    const logger = pino({ level: 'debug' }, { write: (line: string) => line.includes(CLOSED_WHILE_CONNECTING) && hookDone() }) as Logger;
    let connectCalls = 0;
    const herald = await startHerald({ logger, auth: { connectHook: { url: hookUrl } }, onConnect: () => void connectCalls++ });
    const gone = new Promise<void>((resolve) => herald.on('disconnect', () => resolve()));
    const client = await connect(herald, { headers: { cookie: 'session=held' } });
    await eventually(() => held.length === 1, 'the connect hook to be asked');
    await client.close();
    await gone;
    // Now the backend answers: a uid and a topic for a connection that is no more.
    const res = held.pop()!;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ uid: 'late', topics: ['room:late'] }));
    await hookFinished;
    assert.equal(connectCalls, 0, 'onConnect is not called for a connection that already disconnected');
    const hub = internals(herald).hub;
    assert.equal(hub.subscriberCount('room:late'), 0, 'no subscription for a closed connection');
    assert.equal(herald.userConnections('late'), 0, 'no user index entry for a closed connection');
    assert.deepEqual([herald.status().connections, herald.status().subscriptions, herald.status().users], [0, 0, 0]);
    await herald.close();
  });

  it("a connection refused as it opens (no identity, anonymous off, a protocol that cannot log in) is not subscribed to the hook's topics", async () => {
    const herald = await startHerald({ auth: { anonymous: false, connectHook: { url: hookUrl } } });
    const lhttp = await connect(herald, { path: '/', headers: { cookie: 'session=topics-only' } });
    assert.equal((await deadline(lhttp.closed, 5000, 'the refusal')).code, CloseCode.UNAUTHORIZED);
    const { hub } = internals(herald);
    assert.equal(hub.subscriberCount('room:hooked'), 0, 'no subscription left behind by a connection that is gone');
    assert.equal(hub.topicCount, 0);
    assert.equal(hub.subscriptions, 0);
    await herald.close();
  });

  it('times out: a backend that does not answer in time refuses the connection with 4000', async () => {
    const herald = await startHerald({ auth: { connectHook: { url: hookUrl, timeout: 200 } } });
    const startedAt = Date.now();
    const slow = await connect(herald, { headers: { cookie: 'session=slow' } });
    slow.send({ id: 1, action: 'ping' }); // held back until the hook decides; never answered
    const closed = await slow.closed;
    assert.deepEqual(closed, { code: CloseCode.RECONNECT, reason: 'connect hook did not answer within 200 ms' });
    assert.ok(Date.now() - startedAt >= 190);
    assert.equal(slow.received.length, 0, 'no frame of a refused connection was handled');
    await herald.close();
  });
});
