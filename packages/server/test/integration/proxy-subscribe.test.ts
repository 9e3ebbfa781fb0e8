import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '@herald/protocol';
import type { Herald } from '../../src/index.js';
import { Backend, refusingUrl, type BackendRequest, type Behaviour } from '../helpers/backend.js';
import { connect, deadline, http, startHerald, TestClient, wsUrl } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { parsePrometheus, value } from '../helpers/metrics.js';
import { requestSse, ssePath, SseStream } from '../helpers/sse.js';
import { StreamClient } from '../helpers/stream-client.js';

/** The backend's subscribe proxy: its verdict by topic. */
function subscribeVerdict(request: BackendRequest): Behaviour {
  switch (request.body.topic) {
    case 'room:open':
    case 'room:open2':
      return { json: { allow: true, info: { role: 'guest' }, data: { welcome: 'hi' } } };
    case 'room:closed':
      return { json: { error: { code: 'forbidden', message: 'members only' } } };
    case 'room:nope':
      return { json: { allow: false } };
    case 'private:vip':
      return { json: { allow: true } };
    case 'room:flaky':
      // A 503 the first time: the subscribe proxy only asks, so Herald tries again.
      return backend.requestsTo('/subscribe').filter((r) => r.body.topic === 'room:flaky').length === 1 ? { status: 503 } : { json: { allow: true } };
    case 'room:slow':
    case 'slow:1':
      return { hold: true };
    case 'room:stall':
      return { stallBody: true };
    case 'room:five':
      return { status: 500 };
    case 'room:text':
      return { text: 'yes, why not' };
    case 'room:array':
      return { json: [true] };
    case 'room:code':
      return { json: { error: { code: 'no_such_code' } } };
    case 'room:both':
      return { json: { allow: true, error: { message: 'which one?' } } };
    default:
      // room:rules, private:other: Herald's own rules decide.
      return { json: {} };
  }
}

let backend: Backend;
let herald: Herald;
before(async () => {
  backend = (await Backend.start()).route('/subscribe', subscribeVerdict);
  const url = backend.url('/subscribe');
  herald = await startHerald({
    presence: [{ pattern: 'room:*' }],
    raw: [
      { path: '/raw-open', topics: ['room:open'] },
      { path: '/raw-closed', topics: ['room:closed'] },
    ],
    proxy: {
      subscribe: [
        { pattern: 'room:gone', url: await refusingUrl('/subscribe'), timeout: 1000 },
        { pattern: 'slow:*', url, timeout: 2000 },
        { pattern: 'room:*', url, timeout: 400, forwardHeaders: ['cookie'] },
        { pattern: 'private:*', url },
      ],
    },
  });
});
after(() => backend.close());

/** The newest connection's session (its id, what it holds). */
function newestSession() {
  return [...internals(herald).sessions.values()].at(-1)!;
}

describe('subscribe proxy', () => {
  it('allows (presence info, a payload in the reply), refuses with the code and message, or lets the rules decide; tells the backend who asks', async () => {
    const c = await connect(herald, { headers: { cookie: 'session=1', 'x-other': 'kept out' } });
    const open = await c.request({ action: 'subscribe', topic: 'room:open', data: { seat: 3 } });
    assert.deepEqual(open, { id: 1, action: 'subscribe', ok: true, data: { welcome: 'hi' } });
    const [asked] = backend.requestsTo('/subscribe');
    const session = newestSession();
    assert.deepEqual(asked!.body, {
      proxy: 'subscribe',
      requestId: asked!.headers['x-request-id'],
      conn: session.id,
      ip: '127.0.0.1',
      protocol: 'json',
      transport: 'websocket',
      headers: { cookie: 'session=1' },
      topic: 'room:open',
      data: { seat: 3 },
    });
    assert.match(String(asked!.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(herald.presence('room:open').list[0]!.info, { role: 'guest' }, "the backend's info is what presence shows");

    assert.deepEqual((await c.request({ action: 'subscribe', topic: 'room:closed' })).error, { code: 'forbidden', message: 'members only' });
    assert.deepEqual((await c.request({ action: 'subscribe', topic: 'room:nope' })).error, { code: 'forbidden', message: 'refused by the backend' });
    assert.equal((await c.request({ action: 'subscribe', topic: 'room:rules' })).ok, true, 'a public topic the backend leaves to the rules');
    assert.equal((await c.request({ action: 'subscribe', topic: 'private:vip' })).ok, true, 'a private topic the backend allows');
    const other = await c.request({ action: 'subscribe', topic: 'private:other' });
    assert.equal(other.error.code, 'forbidden', 'a private topic the backend leaves to the rules');
    // All or nothing: one refusal, nothing subscribed; the payloads of a multi-topic subscribe are by topic.
    assert.equal((await c.request({ action: 'subscribe', topics: ['room:open2', 'room:closed'] })).error.code, 'forbidden');
    assert.equal(session.topics.has('room:open2'), false);
    assert.deepEqual(await c.request({ action: 'subscribe', topics: ['room:open2', 'room:rules2'] }), { id: 8, action: 'subscribe', ok: true, data: { 'room:open2': { welcome: 'hi' } } });
    assert.deepEqual([...session.topics].sort(), ['private:vip', 'room:open', 'room:open2', 'room:rules', 'room:rules2']);
    // A topic already held is not asked about again.
    const asks = backend.requestsTo('/subscribe').length;
    assert.equal((await c.request({ action: 'subscribe', topic: 'room:open' })).ok, true);
    assert.equal(backend.requestsTo('/subscribe').length, asks);
    await herald.publish('private:vip', 'for the vip');
    assert.deepEqual(await c.next(), { action: 'publish', topic: 'private:vip', message: 'for the vip' });
    await c.close();
  });

  it('failures answer unavailable within the timeout, and the commands after wait no longer; 503 is retried', async () => {
    const c = await connect(herald);
    const failures: Array<[string, string]> = [
      ['room:slow', 'subscribe proxy did not answer within 400 ms'],
      ['room:stall', 'subscribe proxy did not answer within 400 ms'],
      ['room:five', 'subscribe proxy answered 500'],
      ['room:gone', 'subscribe proxy unreachable (ECONNREFUSED)'],
      ['room:text', 'subscribe proxy answered something that is not JSON'],
      ['room:array', 'subscribe proxy answered JSON that is not an object'],
      ['room:both', 'subscribe proxy answered an invalid body: "allow": true and an "error" at once'],
    ];
    for (const [topic, message] of failures) {
      const started = performance.now();
      c.send({ id: `s-${topic}`, action: 'subscribe', topic });
      c.send({ id: `p-${topic}`, action: 'ping' });
      const reply = await c.next(3000);
      const ping = await c.next(3000);
      const waited = performance.now() - started;
      assert.deepEqual(reply, { id: `s-${topic}`, action: 'subscribe', ok: false, error: { code: 'unavailable', message } });
      assert.deepEqual(ping, { id: `p-${topic}`, action: 'ping', ok: true }, 'the next command is answered after it, in order');
      assert.ok(waited < 400 + 300, `${topic}: answered after ${Math.round(waited)} ms, the timeout is 400 ms`);
      if (topic === 'room:slow' || topic === 'room:stall') assert.ok(waited >= 390, `${topic}: waited the timeout (${Math.round(waited)} ms)`);
    }
    const code = await c.request({ action: 'subscribe', topic: 'room:code' });
    assert.equal(code.error.code, 'unavailable');
    assert.match(code.error.message, /^subscribe proxy answered an invalid body: field "error.code": error.code must be one of Herald's error codes/);
    assert.equal((await c.request({ action: 'subscribe', topic: 'room:flaky' })).ok, true, 'a 503 is tried again');
    assert.equal(backend.requestsTo('/subscribe').filter((r) => r.body.topic === 'room:flaky').length, 2);
    assert.equal(backend.requestsTo('/subscribe').filter((r) => r.body.topic === 'room:five').length, 1, 'a 500 is not');

    const samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'subscribe', reason: 'timeout' }), 2);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'subscribe', reason: 'status' }), 1);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'subscribe', reason: 'unreachable' }), 1);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'subscribe', reason: 'malformed' }), 4);
    // Retried: the 503, and the refused connection (the request cannot have reached a backend).
    assert.equal(value(samples, 'herald_proxy_retries_total', { proxy: 'subscribe' }), 2);
    const calls = value(samples, 'herald_proxy_calls_total', { proxy: 'subscribe' });
    assert.equal(value(samples, 'herald_proxy_call_seconds_count', { proxy: 'subscribe' }), calls);
    assert.ok(value(samples, 'herald_proxy_call_seconds_sum', { proxy: 'subscribe' }) >= 0.8, 'the two timeouts are in the latency sum');
    await c.close();
  });

  it('a slow backend holds only the connections that wait for it: the others are answered at once', async () => {
    const waiting = await Promise.all(Array.from({ length: 40 }, () => connect(herald)));
    const before = backend.requestsTo('/subscribe').length;
    const started = performance.now();
    for (const w of waiting) {
      w.send({ id: 1, action: 'subscribe', topic: 'slow:1' });
      w.send({ id: 2, action: 'ping' });
    }
    await backend.received('/subscribe', before + 40); // every call is in flight, none answered
    const other = await connect(herald);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = performance.now();
      await other.request({ action: 'ping' });
      times.push(performance.now() - sent);
    }
    assert.equal((await other.request({ action: 'subscribe', topic: 'elsewhere' })).ok, true);
    await other.request({ action: 'publish', topic: 'elsewhere', message: 'fine' });
    assert.deepEqual(await other.next(), { action: 'publish', topic: 'elsewhere', message: 'fine' });
    assert.ok(Math.max(...times) < 250, `pings of another connection answered in at most ${Math.round(Math.max(...times))} ms (the backend holds 40 calls for 2 s)`);
    for (const w of waiting) {
      assert.equal((await w.next(3000)).error.code, 'unavailable');
      assert.deepEqual(await w.next(3000), { id: 2, action: 'ping', ok: true });
    }
    const all = performance.now() - started;
    assert.ok(all >= 1990 && all < 2000 + 1000, `every waiting connection answered at the timeout (${Math.round(all)} ms, the timeout is 2 s)`);
    await Promise.all([...waiting, other].map((client) => client.close()));
  });

  it('SSE, HTTP streaming and raw endpoints go through the same proxy: refusals, payloads first', async () => {
    const refused = await requestSse(herald, ssePath(['room:closed']));
    assert.ok(!(refused instanceof SseStream));
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body, { ok: false, error: { code: 'forbidden', message: 'members only' } });
    const stream = await requestSse(herald, ssePath(['room:open']));
    assert.ok(stream instanceof SseStream);
    const event = await stream.next();
    assert.equal(event.event, 'subscribe');
    assert.deepEqual(event.json, { action: 'subscribe', ok: true, topic: 'room:open', data: { welcome: 'hi' } });
    const asked = backend.requestsTo('/subscribe').at(-1)!.body;
    assert.deepEqual([asked.protocol, asked.transport], ['sse', 'sse']);
    stream.destroy();

    const streaming = await StreamClient.open(herald.url, { body: { id: 1, action: 'subscribe', topic: 'room:open' } });
    await streaming.until((client) => client.frames.some((frame) => frame.id === 1), 'the reply');
    assert.deepEqual(streaming.frames.find((frame) => frame.id === 1), { id: 1, action: 'subscribe', ok: true, data: { welcome: 'hi' } });
    const fromStream = backend.requestsTo('/subscribe').at(-1)!.body;
    assert.deepEqual([fromStream.protocol, fromStream.transport], ['json', 'http-stream']);
    streaming.destroy();

    const raw = await TestClient.open(wsUrl(herald, '/raw-open'));
    assert.deepEqual(await raw.next(), { welcome: 'hi' }, 'the payload is the first frame');
    await herald.publish('room:open', 'after it');
    assert.equal(await raw.next(), 'after it');
    const closed = await TestClient.open(wsUrl(herald, '/raw-closed'));
    assert.deepEqual(await deadline(closed.closed, 3000, 'the refusal'), { code: CloseCode.FORBIDDEN, reason: 'members only' });
    await raw.close();
  });
});
