import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '@herald/protocol';
import type { Herald } from '../../src/index.js';
import { Backend, refusingUrl, type BackendRequest, type Behaviour } from '../helpers/backend.js';
import { connect, deadline, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { parsePrometheus, value } from '../helpers/metrics.js';
import { eventually } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** The backend's RPC proxy: its answer by method. */
function rpcAnswer(request: BackendRequest): Behaviour {
  const { method, data, uid } = request.body;
  const answers: Record<string, Behaviour> = {
    'app.echo': { json: { result: { you: data, uid } } },
    'app.none': { json: {} },
    'app.null': { json: { result: null } },
    'app.deny': { json: { error: { code: 'forbidden', message: 'admins only' } } },
    'app.missing': { json: { error: { code: 'not_found', message: 'no such profile' } } },
    'app.who': { text: 'who are you', status: 401 },
    'app.slow': { hold: true },
    'app.five': { status: 500 },
    'app.flaky': { status: 503 },
    'app.text': { text: '42 or so' },
  };
  return answers[method] ?? { status: 404 };
}

describe('rpc proxy', () => {
  let backend: Backend;
  let herald: Herald;
  before(async () => {
    backend = (await Backend.start()).route('/rpc', rpcAnswer);
    herald = await startHerald({
      auth: { jwt: { secret: SECRET } },
      proxy: {
        rpc: [
          { method: 'gone', url: await refusingUrl('/rpc') },
          { method: 'app.*', url: backend.url('/rpc'), timeout: 400, forwardHeaders: ['cookie'] },
        ],
      },
    });
  });
  after(() => backend.close());

  it("answers with the backend's result, its refusal, or unavailable when it fails; rpc is the protocol's own action", async () => {
    const c = await connect(herald, { headers: { cookie: 'session=7' } });
    assert.equal((await c.request({ action: 'login', token: await signToken({ sub: 'ann' }) })).ok, true);
    assert.deepEqual(await c.request({ action: 'rpc', method: 'app.echo', data: { q: 1 } }), { id: 2, action: 'rpc', ok: true, result: { you: { q: 1 }, uid: 'ann' } });
    const [asked] = backend.requestsTo('/rpc');
    assert.deepEqual(asked!.body, {
      proxy: 'rpc',
      requestId: asked!.headers['x-request-id'],
      conn: [...internals(herald).sessions.values()].at(-1)!.id,
      uid: 'ann',
      ip: '127.0.0.1',
      protocol: 'json',
      transport: 'websocket',
      headers: { cookie: 'session=7' },
      method: 'app.echo',
      data: { q: 1 },
    });
    assert.deepEqual(await c.request({ action: 'rpc', method: 'app.none' }), { id: 3, action: 'rpc', ok: true });
    assert.deepEqual(await c.request({ action: 'rpc', method: 'app.null' }), { id: 4, action: 'rpc', ok: true, result: null });
    const errors: Array<[string, { code: string; message: string }]> = [
      ['app.deny', { code: 'forbidden', message: 'admins only' }],
      ['app.missing', { code: 'not_found', message: 'no such profile' }],
      ['app.who', { code: 'unauthorized', message: 'rpc proxy refused: who are you' }],
      ['other', { code: 'not_found', message: 'no RPC method "other" (proxy.rpc)' }],
      ['app.slow', { code: 'unavailable', message: 'rpc proxy did not answer within 400 ms' }],
      ['app.five', { code: 'unavailable', message: 'rpc proxy answered 500' }],
      ['app.flaky', { code: 'unavailable', message: 'rpc proxy answered 503' }],
      ['app.text', { code: 'unavailable', message: 'rpc proxy answered something that is not JSON' }],
      ['gone', { code: 'unavailable', message: 'rpc proxy unreachable (ECONNREFUSED)' }],
    ];
    for (const [method, error] of errors) {
      const started = performance.now();
      const reply = await c.request({ action: 'rpc', method, data: 'x' });
      assert.deepEqual(reply.error, error, method);
      assert.ok(performance.now() - started < 400 + 300, `${method}: answered within the timeout`);
    }
    assert.equal(backend.requestsTo('/rpc').filter((r) => r.body.method === 'app.flaky').length, 1, 'an RPC is never sent twice');
    assert.equal((await c.request({ action: 'rpc', data: 1 })).error.code, 'bad_request');
    assert.throws(() => herald.handle('rpc', () => 1), /"rpc" is a built-in action/);

    const samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.equal(value(samples, 'herald_proxy_calls_total', { proxy: 'rpc' }), 11);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'rpc', reason: 'timeout' }), 1);
    assert.equal(value(samples, 'herald_proxy_errors_total', { proxy: 'rpc', reason: 'status' }), 2);
    await c.close();
  });

  it('an anonymous connection may not call when auth.anonymous is off (log in first)', async () => {
    const strict = await startHerald({ auth: { anonymous: false, jwt: { secret: SECRET } }, proxy: { rpc: [{ method: '*', url: backend.url('/rpc') }] } });
    const c = await connect(strict);
    const before = backend.requestsTo('/rpc').length;
    assert.equal((await c.request({ action: 'rpc', method: 'app.echo' })).error.code, 'unauthorized');
    assert.equal(backend.requestsTo('/rpc').length, before, 'the backend was not asked');
    await c.close();
    await strict.close();
  });
});

describe('refresh proxy', () => {
  let backend: Backend;
  let herald: Herald;
  /** What the refresh proxy answers for each uid (valid with nothing new by default). */
  const refreshAnswers = new Map<string, Behaviour>();
  before(async () => {
    backend = (await Backend.start())
      .route('/connect', (request) => {
        const user = /session=(\w+)/.exec(request.body.headers.cookie ?? '')?.[1];
        return user ? { json: { uid: user, topics: [`private:${user}`, 'room:1'], info: { name: user } } } : { status: 401 };
      })
      .route('/refresh', (request) => refreshAnswers.get(request.body.uid) ?? { json: {} });
    herald = await startHerald({
      auth: { jwt: { secret: SECRET }, connectHook: { url: backend.url('/connect') } },
      proxy: { refresh: { url: backend.url('/refresh'), interval: 150, timeout: 300, forwardHeaders: ['cookie'] } },
    });
  });
  after(() => backend.close());

  const refreshesOf = (uid: string): BackendRequest[] => backend.requestsTo('/refresh').filter((r) => r.body.uid === uid);
  const sessionOf = (uid: string) => [...internals(herald).hub.userSessions(uid)][0]!;

  async function hooked(user: string): Promise<TestClient> {
    const client = await connect(herald, { headers: { cookie: `session=${user}` } });
    assert.equal((await client.request({ action: 'ping' })).ok, true);
    return client;
  }

  it('asks periodically; the answer replaces info and grants (a withdrawn topic is dropped, and said so); a refusal closes with 4002', async () => {
    const alice = await hooked('alice');
    assert.deepEqual([...sessionOf('alice').topics].sort(), ['private:alice', 'room:1']);
    const [first] = await backend.received('/refresh', 1);
    assert.deepEqual(first!.body, {
      proxy: 'refresh',
      requestId: first!.headers['x-request-id'],
      conn: sessionOf('alice').id,
      uid: 'alice',
      ip: '127.0.0.1',
      protocol: 'json',
      transport: 'websocket',
      headers: { cookie: 'session=alice' },
    });
    refreshAnswers.set('alice', { json: { info: { name: 'Alice B.' }, topics: ['room:1'] } });
    assert.deepEqual(await alice.next(2000), {
      action: 'error',
      error: { code: 'forbidden', message: "unsubscribed from private:alice: the backend's refresh no longer allows them" },
    });
    assert.deepEqual([...sessionOf('alice').topics], ['room:1']);
    assert.deepEqual(sessionOf('alice').info, { name: 'Alice B.' });
    const asked = refreshesOf('alice').length;
    refreshAnswers.set('alice', { json: { error: { message: 'session ended' } } });
    assert.deepEqual(await deadline(alice.closed, 2000, 'the close'), { code: CloseCode.IDENTITY_REVOKED, reason: 'session ended' });
    assert.ok(refreshesOf('alice').length > asked);
  });

  it('a failing backend keeps the connection and is asked again; 401 and "allow": false refuse', async () => {
    const carol = await hooked('carol');
    refreshAnswers.set('carol', { hold: true });
    const before = refreshesOf('carol').length;
    await eventually(() => refreshesOf('carol').length > before, 'a refresh of carol the backend holds');
    refreshAnswers.set('carol', { status: 500 });
    await eventually(() => refreshesOf('carol').length >= before + 3, 'two more refreshes of carol');
    refreshAnswers.set('carol', { text: 'fine' });
    await eventually(() => refreshesOf('carol').length >= before + 5, 'two more refreshes of carol');
    assert.equal((await carol.request({ action: 'ping' })).ok, true, 'still connected after a timeout, 500s and malformed answers');
    const samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.ok(value(samples, 'herald_proxy_errors_total', { proxy: 'refresh', reason: 'timeout' }) >= 1);
    assert.ok(value(samples, 'herald_proxy_errors_total', { proxy: 'refresh', reason: 'status' }) >= 1);
    assert.ok(value(samples, 'herald_proxy_errors_total', { proxy: 'refresh', reason: 'malformed' }) >= 1);
    refreshAnswers.set('carol', { text: 'gone', status: 401 });
    assert.deepEqual(await deadline(carol.closed, 2000, 'the close'), { code: CloseCode.IDENTITY_REVOKED, reason: 'refresh proxy refused: gone' });
    const dave = await hooked('dave');
    refreshAnswers.set('dave', { json: { allow: false } });
    assert.deepEqual(await deadline(dave.closed, 2000, 'the close'), { code: CloseCode.IDENTITY_REVOKED, reason: 'refused by the backend' });
  });

  it('an unreachable refresh proxy keeps the connection, and is tried again', async () => {
    const unreachable = await startHerald({
      auth: { connectHook: { url: backend.url('/connect') } },
      proxy: { refresh: { url: await refusingUrl('/refresh'), interval: 100 } },
    });
    const grace = await connect(unreachable, { headers: { cookie: 'session=grace' } });
    assert.equal((await grace.request({ action: 'ping' })).ok, true);
    const failures = async (): Promise<number> => {
      const samples = parsePrometheus((await http(unreachable, 'GET', '/metrics')).text);
      return samples.some((s) => s.name === 'herald_proxy_errors_total') ? value(samples, 'herald_proxy_errors_total', { proxy: 'refresh', reason: 'unreachable' }) : 0;
    };
    await eventually(async () => (await failures()) >= 3, 'three failed refreshes');
    assert.equal((await grace.request({ action: 'ping' })).ok, true, 'still connected');
    await grace.close();
    await unreachable.close();
  });

  it('a connection that logs in with a token is no longer refreshed', async () => {
    const erin = await hooked('erin');
    const frank = await hooked('frank');
    await eventually(() => refreshesOf('erin').length >= 1, 'a refresh of erin');
    assert.equal((await erin.request({ action: 'login', token: await signToken({ sub: 'erin' }) })).ok, true);
    // A refresh of erin already on its way when she logged in has arrived once frank's next one has.
    const frankAtLogin = refreshesOf('frank').length;
    await eventually(() => refreshesOf('frank').length > frankAtLogin, 'the next refresh of frank');
    const erinCalls = backend.requestsTo('/refresh').filter((r) => r.body.conn === sessionOf('erin').id).length;
    const frankBefore = refreshesOf('frank').length;
    // Frank, still the hook's, is refreshed three more times meanwhile; erin never again.
    await eventually(() => refreshesOf('frank').length >= frankBefore + 3, 'three more refreshes of frank');
    assert.equal(backend.requestsTo('/refresh').filter((r) => r.body.conn === sessionOf('erin').id).length, erinCalls);
    await Promise.all([erin.close(), frank.close()]);
  });
});
