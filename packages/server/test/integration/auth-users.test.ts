import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../../src/index.js';
import { connect, deadline, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { eventually } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';

const token = (claims: Record<string, unknown>): Promise<string> => signToken(claims);

/** Logs in the seed's way and waits until the server has handled it (replies keep order). */
async function seedLogin(c: TestClient, uid: string): Promise<void> {
  c.send({ uid });
  assert.equal((await c.request({ action: 'ping' })).ok, true);
}

describe('the push-centre seed flow (auth.insecureUidLogin)', () => {
  it('two tabs of uid 123 both get /send?uid=123&message=Hello%20World as the raw message', async () => {
    const herald = await startHerald({ auth: { insecureUidLogin: true } });
    const [tab1, tab2, other] = await Promise.all([connect(herald), connect(herald), connect(herald)]);
    await seedLogin(tab1, '123');
    await seedLogin(tab2, '123');
    await seedLogin(other, '456');

    const sent = await http(herald, 'GET', '/send?uid=123&message=Hello%20World');
    assert.equal(sent.status, 200);
    assert.equal(sent.text, '');
    assert.equal(await tab1.next(), 'Hello World');
    assert.equal(await tab2.next(), 'Hello World');

    // Form body, as the seed's r.FormValue reads it (the body wins over the query).
    const form = await http(herald, 'POST', '/send?uid=456&message=from-query', 'uid=123&message=form+body', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 200);
    assert.equal(await tab1.next(), 'form body');
    assert.equal(await tab2.next(), 'form body');

    // Closing one tab keeps the other reachable (the seed lost it: its map held one client per uid).
    await tab1.close();
    assert.equal((await http(herald, 'GET', '/send?uid=123&message=still')).status, 200);
    assert.equal(await tab2.next(), 'still');

    // Errors as the push centre answers them: 400 with an empty body; the reason in a header.
    const unknown = await http(herald, 'GET', '/send?uid=999&message=x');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.text, '');
    assert.equal(unknown.headers.get('content-length'), '0');
    assert.equal(unknown.headers.get('x-herald-error'), 'client not found: 999');
    for (const query of ['?message=x', '?uid=&message=x']) {
      const missing = await http(herald, 'GET', `/send${query}`);
      assert.equal(missing.status, 400);
      assert.equal(missing.text, '');
      assert.equal(missing.headers.get('x-herald-error'), 'uid is required');
    }
    const formMissing = await http(herald, 'POST', '/send', 'message=x', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(formMissing.status, 400);
    assert.equal(formMissing.text, '');

    // A missing message sends an empty text frame, as in the seed.
    assert.equal((await http(herald, 'GET', '/send?uid=456')).status, 200);
    assert.equal(await other.next(), '');
    assert.equal(other.received.length, 1);

    // The JSON API keeps PROTOCOL.md's shape for every connection, seed-logged ones included.
    assert.deepEqual((await http(herald, 'POST', '/api/send', { uid: '456', message: 'enveloped' })).body, { ok: true, delivered: 1, nodes: 0 });
    assert.deepEqual(await other.next(), { action: 'push', message: 'enveloped' });
    await Promise.all([tab2.close(), other.close()]);
    await herald.close();
  });

  it('re-login with another uid moves the connection; the old uid is no longer reachable', async () => {
    const herald = await startHerald({ auth: { insecureUidLogin: true } });
    const c = await connect(herald);
    await seedLogin(c, 'old');
    await seedLogin(c, 'new');
    assert.equal((await http(herald, 'GET', '/send?uid=old&message=x')).status, 400);
    assert.equal((await http(herald, 'GET', '/send?uid=new&message=y')).status, 200);
    assert.equal(await c.next(), 'y');
    await c.close();
    // After the close, the uid is gone: no crash, a 400 (the seed's handler panicked here).
    assert.equal((await http(herald, 'GET', '/send?uid=new&message=z')).status, 400);
    await herald.close();
  });

  it('the bare-uid login is refused when the mode is off', async () => {
    const herald = await startHerald();
    const c = await connect(herald);
    c.send({ uid: '123' });
    const error = await c.next();
    assert.equal(error.action, 'error');
    assert.equal(error.error.code, 'unauthorized');
    assert.match(error.error.message, /insecureUidLogin/);
    assert.equal(herald.userConnections('123'), 0);
    assert.equal((await http(herald, 'GET', '/send?uid=123&message=x')).status, 400);
    await c.close();
    await herald.close();
  });
});

describe("the push centre's console steps (seed 004), unchanged", () => {
  it('ws = new WebSocket(ws://…/ws); ws.send(\'{"uid": "123"}\'); curl "…/send?uid=123&message=Hello%20World"', async () => {
    const herald = await startHerald({ auth: { insecureUidLogin: true } });
    // The browser console's two lines: no subprotocol, the login as the article types it.
    const ws = await connect(herald, { path: '/ws' });
    assert.equal(ws.ws.protocol, '');
    ws.send('{"uid": "123"}');
    // The seed answers nothing to a login: wait for the server to hold the uid.
    await eventually(() => herald.userConnections('123') === 1, 'the login to be handled');
    // curl "http://localhost:8181/send?uid=123&message=Hello%20World", with curl's own headers.
    const curl = { 'user-agent': 'curl/8.5.0', accept: '*/*' };
    const sent = await http(herald, 'GET', '/send?uid=123&message=Hello%20World', undefined, curl);
    assert.equal(sent.status, 200);
    assert.equal(sent.text, '');
    assert.equal(await ws.next(), 'Hello World', 'the raw message, one text frame');
    // The same request for a uid nobody logged in as, and without a uid: what the push centre answers.
    for (const path of ['/send?uid=124&message=Hello%20World', '/send?message=Hello%20World']) {
      const refused = await http(herald, 'GET', path, undefined, curl);
      assert.equal(refused.status, 400);
      assert.equal(refused.text, '');
    }
    assert.equal(ws.received.length, 1, 'nothing else reached the page');
    await ws.close();
    await herald.close();
  });
});

describe('/send to a connection that logged in with a token', () => {
  it('delivers the push envelope', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } } });
    const c = await connect(herald, { path: `/ws?token=${await token({ sub: '77' })}` });
    await c.request({ action: 'ping' });
    assert.equal((await http(herald, 'GET', '/send?uid=77&message=Hello%20World')).status, 200);
    assert.deepEqual(await c.next(), { action: 'push', message: 'Hello World' });
    await c.close();
    await herald.close();
  });
});

describe('/api/send and /api/disconnect', () => {
  it('pushes to every connection of several uids and says how many it reached', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } } });
    const a1 = await connect(herald, { path: `/ws?token=${await token({ sub: 'a' })}` });
    const a2 = await connect(herald, { path: `/ws?token=${await token({ sub: 'a' })}` });
    const b = await connect(herald, { path: `/ws?token=${await token({ sub: 'b' })}` });
    const anonymous = await connect(herald);
    for (const c of [a1, a2, b]) await c.request({ action: 'ping' });

    const one = await http(herald, 'POST', '/api/send', { uid: 'b', message: { task: 7, progress: 50 } });
    assert.deepEqual(one.body, { ok: true, delivered: 1, nodes: 0 });
    assert.deepEqual(await b.next(), { action: 'push', message: { task: 7, progress: 50 } });

    const many = await http(herald, 'POST', '/api/send', { uids: ['a', 'b', 'nobody'], message: 'all of you' });
    assert.deepEqual(many.body, { ok: true, delivered: 3, nodes: 0 });
    for (const c of [a1, a2, b]) assert.deepEqual(await c.next(), { action: 'push', message: 'all of you' });

    assert.equal((await http(herald, 'POST', '/api/send', { uid: 'a' })).body.error.code, 'bad_request');
    assert.equal((await http(herald, 'POST', '/api/send', { uid: 'a', uids: ['b'], message: 1 })).status, 400);
    assert.deepEqual(await herald.send('a', 'from the library'), { delivered: 2, nodes: 0 });
    assert.deepEqual(await a1.next(), { action: 'push', message: 'from the library' });

    const closed = await http(herald, 'POST', '/api/disconnect', { uid: 'a' });
    assert.deepEqual(closed.body, { ok: true, closed: 2 });
    for (const c of [a1, a2]) assert.deepEqual(await c.closed, { code: CloseCode.DISCONNECTED, reason: 'disconnected by the server' });
    assert.equal((await http(herald, 'POST', '/api/disconnect', { uid: 'a' })).body.closed, 0);
    assert.equal(anonymous.received.length, 0, 'an anonymous connection gets no user push');
    await Promise.all([b.close(), anonymous.close()]);
    await herald.close();
  });
});

describe('the two kinds of token', () => {
  it('a subscribe token (it has a "topic" claim) is not a connection token, in ?token= or in login', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } } });
    const grant = await token({ sub: 'bob', topic: 'private:team-a' });
    const viaUrl = await connect(herald, { path: `/ws?token=${grant}` });
    const closed = await viaUrl.closed;
    assert.equal(closed.code, CloseCode.UNAUTHORIZED);
    assert.match(closed.reason, /subscribe token/);
    const c = await connect(herald);
    const login = await c.request({ action: 'login', token: grant });
    assert.equal(login.error.code, 'unauthorized');
    assert.equal(login.error.message, 'invalid token: this is a subscribe token (it has a "topic" claim), not a connection token');
    assert.equal(herald.userConnections('bob'), 0);
    await herald.close();
  });

  it('a connection token is not a subscribe token', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } } });
    const bobToken = await token({ sub: 'bob', topics: ['private:other'] });
    const bob = await connect(herald, { path: `/ws?token=${bobToken}` });
    const reply = await bob.request({ action: 'subscribe', topic: 'private:team-a', token: bobToken });
    assert.equal(reply.error.code, 'forbidden');
    assert.match(reply.error.message, /no "topic" claim/);
    assert.equal(internals(herald).hub.subscriberCount('private:team-a'), 0);
    await herald.close();
  });

  it('a subscribe token without "sub" is refused, for anonymous and logged-in connections alike (not a bearer capability)', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } } });
    const bearer = await token({ topic: 'private:team-a' });
    const anonymous = await connect(herald);
    const bob = await connect(herald, { path: `/ws?token=${await token({ sub: 'bob' })}` });
    for (const c of [anonymous, bob]) {
      const reply = await c.request({ action: 'subscribe', topic: 'private:team-a', token: bearer });
      assert.equal(reply.error.code, 'forbidden');
      assert.equal(reply.error.message, 'subscribe token: no "sub" claim: a subscribe token names the uid it is for');
    }
    assert.equal(internals(herald).hub.subscriberCount('private:team-a'), 0);
    // The same grant naming bob works for bob.
    assert.equal((await bob.request({ action: 'subscribe', topic: 'private:team-a', token: await token({ sub: 'bob', topic: 'private:team-a' }) })).ok, true);
    await herald.close();
  });
});

describe('topic permissions', () => {
  it('private topics need a topics claim or a subscribe token; user topics are for their uid only', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } } });
    const alice = await connect(herald, { path: `/ws?token=${await token({ sub: 'alice', topics: ['private:team-a', 'private:orders.*'] })}` });
    const bob = await connect(herald, { path: `/ws?token=${await token({ sub: 'bob' })}` });
    const anonymous = await connect(herald);

    assert.equal((await alice.request({ action: 'subscribe', topic: 'private:team-a' })).ok, true);
    assert.equal((await alice.request({ action: 'subscribe', topic: 'private:orders.42' })).ok, true);
    const noGrant = await alice.request({ action: 'subscribe', topic: 'private:team-b' });
    assert.equal(noGrant.error.code, 'forbidden');
    assert.match(noGrant.error.message, /private/);

    for (const c of [bob, anonymous]) assert.equal((await c.request({ action: 'subscribe', topic: 'private:team-a' })).error.code, 'forbidden');

    // A subscribe token: sub must be the connection's uid, topic names what it grants.
    const grant = await token({ sub: 'bob', topic: 'private:team-a' });
    assert.equal((await bob.request({ action: 'subscribe', topic: 'private:team-a', token: grant })).ok, true);
    assert.equal((await bob.request({ action: 'subscribe', topic: 'private:team-b', token: grant })).error.code, 'forbidden');
    const stolen = await anonymous.request({ action: 'subscribe', topic: 'private:team-a', token: grant });
    assert.equal(stolen.error.code, 'forbidden');
    assert.match(stolen.error.message, /sub/);

    assert.equal((await alice.request({ action: 'subscribe', topic: 'user:alice' })).ok, true);
    assert.equal((await bob.request({ action: 'subscribe', topic: 'user:alice' })).error.code, 'forbidden');
    assert.equal((await anonymous.request({ action: 'subscribe', topic: 'user:alice' })).error.code, 'forbidden');
    // A multi-topic subscribe with one forbidden topic subscribes to none.
    assert.equal((await bob.request({ action: 'subscribe', topics: ['public-x', 'user:alice'] })).error.code, 'forbidden');
    assert.equal(internals(herald).hub.subscriberCount('public-x'), 0);

    await herald.publish('private:team-a', 'secret');
    assert.equal((await alice.next()).message, 'secret');
    assert.equal((await bob.next()).message, 'secret');
    await Promise.all([alice.close(), bob.close(), anonymous.close()]);
    await herald.close();
  });

  it('clientPublish modes and the publish claim', async () => {
    const modes = ['all', 'authenticated', 'none'] as const;
    for (const mode of modes) {
      const herald = await startHerald({ clientPublish: mode, auth: { jwt: { secret: SECRET } } });
      const user = await connect(herald, { path: `/ws?token=${await token({ sub: 'u' })}` });
      const anonymous = await connect(herald);
      const publisher = await connect(herald, { path: `/ws?token=${await token({ sub: 'p', publish: ['announce*', 'private:board'] })}` });
      const publish = async (c: TestClient, topic: string) => (await c.request({ action: 'publish', topic, message: 1 })).ok as boolean;
      assert.equal(await publish(user, 'chat'), mode !== 'none', `${mode}: user`);
      assert.equal(await publish(anonymous, 'chat'), mode === 'all', `${mode}: anonymous`);
      assert.equal(await publish(publisher, 'announcements'), true, `${mode}: claim`);
      assert.equal(await publish(publisher, 'private:board'), true, `${mode}: claim on a private topic`);
      assert.equal(await publish(user, 'private:board'), false, `${mode}: private without claim`);
      assert.equal(await publish(user, 'user:u'), false, `${mode}: user topic without claim`);
      await Promise.all([user.close(), anonymous.close(), publisher.close()]);
      await herald.close();
    }
  });
});

describe('without anonymous connections (auth.anonymous: false)', () => {
  it('refuses commands before login, closes with 4501 when no login comes, and works after login', async () => {
    const herald = await startHerald({ auth: { anonymous: false, loginTimeout: 300, jwt: { secret: SECRET } } });
    const late = await connect(herald);
    const refused = await late.request({ action: 'subscribe', topic: 'news' });
    assert.equal(refused.error.code, 'unauthorized');
    assert.equal((await late.request({ action: 'ping' })).ok, true, 'ping is allowed before login');
    assert.deepEqual(await deadline(late.closed, 5000, 'the login timeout'), { code: CloseCode.UNAUTHORIZED, reason: 'login required' });

    const prompt = await connect(herald);
    assert.equal((await prompt.request({ action: 'login', token: await token({ sub: 'z' }) })).ok, true);
    assert.equal((await prompt.request({ action: 'subscribe', topic: 'news' })).ok, true);
    const viaUrl = await connect(herald, { path: `/ws?token=${await token({ sub: 'y' })}` });
    assert.equal((await viaUrl.request({ action: 'subscribe', topic: 'news' })).ok, true);
    // Both outlive the login timeout.
    await herald.publish('news', 'ok');
    assert.equal((await prompt.next()).message, 'ok');
    await new Promise<void>((resolve) => setTimeout(resolve, 400)); // longer than loginTimeout: proving a non-event
    assert.equal((await prompt.request({ action: 'ping' })).ok, true);
    assert.equal((await viaUrl.request({ action: 'ping' })).ok, true);
    await Promise.all([prompt.close(), viaUrl.close()]);
    await herald.close();
  });
});
