import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeLhttp } from '@herald/protocol';
import type { Herald } from '../../src/index.js';
import { Backend, refusingUrl, type BackendRequest, type Behaviour } from '../helpers/backend.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { parsePrometheus, value } from '../helpers/metrics.js';
import { eventually } from '../helpers/servers.js';

/** The backend's publish proxy: its verdict by topic. */
function publishVerdict(request: BackendRequest): Behaviour {
  const { topic, message } = request.body;
  switch (topic) {
    case 'chat:ok':
    case 'chat:marker':
      return { json: { allow: true } };
    case 'chat:mod':
      return { json: { allow: true, message: typeof message === 'string' ? message.toUpperCase() : { ...message, checked: true } } };
    case 'chat:deny':
      return { json: { error: { code: 'forbidden', message: 'be nice' } } };
    case 'chat:limit':
      return { json: { error: { code: 'rate_limited', message: 'slow down' } } };
    case 'chat:slow':
      return { hold: true };
    case 'chat:five':
      return { status: 500 };
    case 'chat:flaky':
      return { status: 503 };
    case 'chat:text':
      return { text: 'ok' };
    default:
      return { json: {} };
  }
}

/** The subscribe proxy, for the LHTTP-against-JSON comparison. */
function subscribeVerdict(request: BackendRequest): Behaviour {
  const verdicts: Record<string, unknown> = {
    'room:open': { allow: true, data: { welcome: 'hi' } },
    'room:closed': { error: { code: 'forbidden', message: 'members only' } },
    'room:nope': { allow: false },
    'room:busy': { error: { code: 'rate_limited', message: 'room is full' } },
    'private:vip': { allow: true },
  };
  return { json: verdicts[request.body.topic] ?? {} };
}

let backend: Backend;
let herald: Herald;
before(async () => {
  backend = (await Backend.start()).route('/publish', publishVerdict).route('/subscribe', subscribeVerdict);
  herald = await startHerald({
    // Without the backend's yes, clients may not publish: "the rules decide" refuses.
    clientPublish: 'none',
    proxy: {
      subscribe: [{ pattern: 'room:*', url: backend.url('/subscribe') }, { pattern: 'private:*', url: backend.url('/subscribe') }],
      publish: [
        { pattern: 'chat:gone', url: await refusingUrl('/publish') },
        { pattern: 'chat:*', url: backend.url('/publish'), timeout: 400 },
      ],
    },
  });
});
after(() => backend.close());

/** A JSON connection subscribed to `topics` (no proxy covers chat:* subscriptions). */
async function watcher(topics: string[]): Promise<TestClient> {
  const client = await connect(herald);
  assert.equal((await client.request({ action: 'subscribe', topics })).ok, true);
  return client;
}

function lhttp(command: string, headers: Record<string, string>, body = ''): string {
  return `LHTTP/1.0 ${command}\r\n${Object.entries(headers).map(([k, v]) => `${k}:${v}\r\n`).join('')}\r\n${body}`;
}

const CHAT = ['chat:ok', 'chat:mod', 'chat:deny', 'chat:limit', 'chat:default'];

describe('publish proxy', () => {
  it('allows, replaces the message, refuses with the code and message, or lets the rules decide; failures publish nothing', async () => {
    const watch = await watcher([...CHAT, 'chat:slow', 'chat:five', 'chat:flaky', 'chat:text', 'chat:gone']);
    const c = await connect(herald, { headers: { cookie: 'not forwarded' } });
    const outcome = async (topic: string, message: unknown): Promise<unknown> => {
      const started = performance.now();
      const reply = await c.request({ action: 'publish', topic, message });
      assert.ok(performance.now() - started < 400 + 300, `${topic}: answered within the timeout`);
      return reply.ok ? 'ok' : reply.error;
    };
    assert.equal(await outcome('chat:ok', { text: 'hello' }), 'ok');
    assert.equal(await outcome('chat:mod', { text: 'hello' }), 'ok');
    assert.deepEqual(await outcome('chat:deny', 'rude'), { code: 'forbidden', message: 'be nice' });
    assert.deepEqual(await outcome('chat:limit', 'again'), { code: 'rate_limited', message: 'slow down' });
    assert.equal(((await outcome('chat:default', 'x')) as { code: string }).code, 'forbidden', 'clientPublish none decides');
    assert.deepEqual(await outcome('chat:slow', 'x'), { code: 'unavailable', message: 'publish proxy did not answer within 400 ms' });
    assert.deepEqual(await outcome('chat:five', 'x'), { code: 'unavailable', message: 'publish proxy answered 500' });
    assert.deepEqual(await outcome('chat:flaky', 'x'), { code: 'unavailable', message: 'publish proxy answered 503' });
    assert.deepEqual(await outcome('chat:text', 'x'), { code: 'unavailable', message: 'publish proxy answered something that is not JSON' });
    assert.deepEqual(await outcome('chat:gone', 'x'), { code: 'unavailable', message: 'publish proxy unreachable (ECONNREFUSED)' });
    // The backend may have stored what it was sent: a publish is never sent twice, not even after a 503.
    assert.equal(backend.requestsTo('/publish').filter((r) => r.body.topic === 'chat:flaky').length, 1);

    await herald.publish('chat:ok', 'end');
    assert.deepEqual(await watch.collect(3), [
      { action: 'publish', topic: 'chat:ok', message: { text: 'hello' } },
      { action: 'publish', topic: 'chat:mod', message: { text: 'hello', checked: true } },
      { action: 'publish', topic: 'chat:ok', message: 'end' },
    ]);
    const asked = backend.requestsTo('/publish')[0]!;
    assert.deepEqual(asked.body, {
      proxy: 'publish',
      requestId: asked.headers['x-request-id'],
      conn: [...internals(herald).sessions.values()].at(-1)!.id,
      ip: '127.0.0.1',
      protocol: 'json',
      transport: 'websocket',
      headers: {},
      topic: 'chat:ok',
      message: { text: 'hello' },
    });
    const samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'publish', reason: 'status' }), 2);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'publish', reason: 'timeout' }), 1);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'publish', reason: 'malformed' }), 1);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'publish', reason: 'unreachable' }), 1);
    assert.equal(value(samples, 'herald_proxy_calls_total', { proxy: 'publish' }), 10);
    assert.equal(value(samples, 'herald_proxy_call_seconds_count', { proxy: 'publish' }), 10);
    await Promise.all([watch.close(), c.close()]);
  });

  it('LHTTP gets the same subscribe and publish decisions as JSON (one policy), in its own words', async () => {
    const rooms = ['room:open', 'room:closed', 'room:nope', 'room:busy', 'room:rules', 'private:vip', 'private:other'];
    // JSON: each topic's outcome.
    const json = await connect(herald);
    const jsonSubscribe: Record<string, string> = {};
    for (const topic of rooms) {
      const reply = await json.request({ action: 'subscribe', topic });
      jsonSubscribe[topic] = reply.ok ? 'ok' : reply.error.code;
    }
    const jsonPublish: Record<string, string> = {};
    for (const topic of CHAT) {
      const reply = await json.request({ action: 'publish', topic, message: 'hello' });
      jsonPublish[topic] = reply.ok ? 'ok' : reply.error.code;
    }

    // LHTTP: the same commands; frames are handled in order, so the watcher's marker comes after all of them.
    const listener = await connect(herald, { path: '/' });
    listener.send(lhttp('chat', { subscribe: 'chat:mod' }));
    await eventually(() => internals(herald).hub.subscriberCount('chat:mod') === 1, 'the LHTTP listener on chat:mod');
    const watch = await watcher([...CHAT, 'chat:marker']);
    const l = await connect(herald, { path: '/' });
    for (const topic of rooms) l.send(lhttp('chat', { subscribe: topic }));
    for (const topic of CHAT) l.send(lhttp('chat', { publish: topic }, 'hello'));
    l.send(lhttp('chat', { publish: 'chat:marker' }, 'marker'));
    const seen: Array<{ topic: string; message: unknown }> = [];
    for (;;) {
      const frame = await watch.next();
      if (frame.topic === 'chat:marker') break;
      seen.push({ topic: frame.topic, message: frame.message });
    }
    const session = [...internals(herald).sessions.values()].find((s) => s.codec.name === 'lhttp' && s.topics.has('room:open'))!;
    const messages = l.received.map((text) => decodeLhttp(String(text)));
    assert.equal(l.received[0], lhttp('subscribe', { subscribe: 'room:open' }, '{"welcome":"hi"}'), "the backend's payload, first");
    const errors = messages.filter((m) => m.command === 'error').map((m) => m.headers.get('code'));

    const lhttpSubscribe = Object.fromEntries(rooms.map((topic) => [topic, session.topics.has(topic) ? 'ok' : 'refused']));
    const lhttpPublish = Object.fromEntries(CHAT.map((topic) => [topic, seen.some((s) => s.topic === topic) ? 'ok' : 'refused']));
    const refusedCodes = [...Object.values(jsonSubscribe), ...Object.values(jsonPublish)].filter((code) => code !== 'ok');
    assert.deepEqual(lhttpSubscribe, Object.fromEntries(Object.entries(jsonSubscribe).map(([t, o]) => [t, o === 'ok' ? 'ok' : 'refused'])));
    assert.deepEqual(lhttpPublish, Object.fromEntries(Object.entries(jsonPublish).map(([t, o]) => [t, o === 'ok' ? 'ok' : 'refused'])));
    assert.deepEqual(errors, refusedCodes, 'the same codes, in order');
    assert.deepEqual(refusedCodes, ['forbidden', 'forbidden', 'rate_limited', 'forbidden', 'forbidden', 'rate_limited', 'forbidden']);
    // The replaced body: for JSON subscribers a string, for LHTTP ones the message under its command and headers.
    assert.deepEqual(seen.find((s) => s.topic === 'chat:mod'), { topic: 'chat:mod', message: 'HELLO' });
    assert.equal(await listener.next(), lhttp('chat', { publish: 'chat:mod' }, 'HELLO'));
    const asked = backend.requestsTo('/publish').filter((r) => r.body.protocol === 'lhttp' && r.body.topic === 'chat:mod').at(-1)!.body;
    assert.deepEqual([asked.message, asked.lhttp], ['hello', { command: 'chat', headers: { publish: 'chat:mod' } }]);
    await Promise.all([json.close(), watch.close(), l.close(), listener.close()]);
  });
});
