import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, it, mock } from 'node:test';
import { CloseCode } from '@herald/protocol';
import { Authenticator, CLOSED_WHILE_CONNECTING, closeCodeFor } from '../../src/auth/authenticator.js';
import { TokenVerifier } from '../../src/auth/jwt.js';
import { Permissions } from '../../src/auth/permissions.js';
import { validateConfig, type HeraldConfig, type HeraldConfigInput } from '../../src/config.js';
import { HeraldError } from '../../src/errors.js';
import type { ConnectHook } from '../../src/herald.js';
import { Hub } from '../../src/hub/hub.js';
import type { Session } from '../../src/hub/session.js';
import { FakeSessionHost, RecordingCodec, RecordingHandler, fakeSession } from '../helpers/fake-session.js';
import type { FakeTransport } from '../helpers/fake-transport.js';
import { SECRET, signToken } from '../helpers/tokens.js';

const GRACE = 30_000;
const TOLERANCE = 5_000;

function setup(options: { config?: HeraldConfigInput; onConnect?: ConnectHook; verifier?: (jwt: HeraldConfig['auth']['jwt']) => TokenVerifier } = {}) {
  const config = validateConfig({ ...options.config, auth: { jwt: { secret: SECRET }, ...options.config?.auth } });
  const online: string[] = [];
  const hub = new Hub({ onTopicOpened: () => undefined, onTopicClosed: () => undefined, onUserOnline: (uid) => online.push(uid) });
  const closed: Array<{ session: Session; code: number; reason: string }> = [];
  const auth = new Authenticator({
    config,
    tokens: options.verifier?.(config.auth.jwt) ?? new TokenVerifier(config.auth.jwt),
    permissions: new Permissions(config.auth, config.clientPublish),
    hub,
    onConnect: options.onConnect,
    topicProblem: () => null,
    closeSession: (session, code, reason) => {
      closed.push({ session, code, reason });
      session.close(code, reason);
    },
  });
  const host = new FakeSessionHost();
  const connection = (options: { codec?: RecordingCodec; canLogIn?: boolean; open?: boolean } = {}): { session: Session; transport: FakeTransport; codec: RecordingCodec } => {
    const codec = options.codec ?? new RecordingCodec('c');
    const made = fakeSession({ codec, handler: new RecordingHandler(options.canLogIn ?? true), host, open: options.open });
    hub.add(made.session);
    return { ...made, codec };
  };
  const frames = (transport: FakeTransport): string[] => {
    host.flush();
    return transport.texts();
  };
  return { auth, hub, config, closed, connection, frames, online };
}

const request = (url: string): IncomingMessage => ({ url, headers: { host: 'herald.test' } }) as IncomingMessage;
const seconds = (ms: number): number => Math.floor(ms / 1000);

describe('Authenticator.login', () => {
  it('makes a verified token the identity: user index, grants, info; answers the uid and expiry', async () => {
    const { auth, hub, connection } = setup();
    const { session } = connection();
    const exp = seconds(Date.now()) + 3600;
    const answer = await auth.login(session, await signToken({ sub: 'ann', topics: ['private:a'], publish: ['news'], info: { name: 'Ann' } }, { exp }));
    assert.deepEqual(answer, { uid: 'ann', expiresAt: exp * 1000 });
    assert.equal(session.uid, 'ann');
    assert.deepEqual([...hub.userSessions('ann')], [session]);
    assert.deepEqual(session.grants, { topics: ['private:a'], publish: ['news'] });
    assert.deepEqual(session.info, { name: 'Ann' });
    assert.equal(session.identity.expiresAt, exp * 1000);
    assert.equal(session.identity.rawPush, false);
  });

  it('a token without exp answers no expiresAt', async () => {
    const { auth, connection } = setup();
    const { session } = connection();
    assert.deepEqual(await auth.login(session, await signToken({ sub: 'ann' })), { uid: 'ann' });
  });

  it('refuses a bad token and leaves the connection as it was', async () => {
    const { auth, connection } = setup();
    const { session } = connection();
    await assert.rejects(auth.login(session, 'not a token'), (err: HeraldError) => err.code === 'unauthorized');
    await assert.rejects(auth.login(session, await signToken({ sub: 'x', topic: 'private:a' })), (err: HeraldError) => err.code === 'unauthorized' && /subscribe token/.test(err.message));
    assert.equal(session.uid, undefined);
  });

  it('refuses a connection that is closing', async () => {
    const { auth, connection } = setup();
    const { session } = connection();
    const token = await signToken({ sub: 'ann' });
    session.close(1000, 'bye');
    await assert.rejects(auth.login(session, token), (err: HeraldError) => err.code === 'unavailable' && err.message === 'connection is closing');
    assert.equal(session.uid, undefined);
  });

  it('drops the subscriptions the new identity does not allow, and says which', async () => {
    const { auth, hub, connection } = setup();
    const { session } = connection();
    await auth.login(session, await signToken({ sub: 'ann', topics: ['private:*'] }));
    for (const topic of ['user:ann', 'private:a', 'public']) hub.subscribe(session, topic);
    const answer = await auth.login(session, await signToken({ sub: 'bob' }));
    assert.deepEqual(answer.unsubscribed, ['user:ann', 'private:a']);
    assert.deepEqual([...session.topics], ['public']);
    assert.equal(hub.subscriberCount('private:a'), 0);
    assert.equal(hub.userSessions('ann').size, 0, 'moved to bob');
  });

  it("keeps a subscription that a subscribe token still grants: issued to the same uid and not expired (with clockTolerance)", async () => {
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      const { auth, hub, connection } = setup();
      const { session } = connection();
      await auth.login(session, await signToken({ sub: 'bob' }));
      for (const topic of ['private:kept', 'private:other-uid', 'private:expired', 'private:in-tolerance']) hub.subscribe(session, topic);
      const now = Date.now();
      session.keepSubscribeGrant('private:kept', { grant: 'private:kept', uid: 'bob', expiresAt: undefined });
      session.keepSubscribeGrant('private:other-uid', { grant: 'private:other-uid', uid: 'ann', expiresAt: undefined });
      session.keepSubscribeGrant('private:expired', { grant: 'private:expired', uid: 'bob', expiresAt: now - TOLERANCE });
      session.keepSubscribeGrant('private:in-tolerance', { grant: 'private:in-tolerance', uid: 'bob', expiresAt: now - TOLERANCE + 1 });
      const answer = await auth.login(session, await signToken({ sub: 'bob' }));
      assert.deepEqual(answer.unsubscribed, ['private:other-uid', 'private:expired']);
      assert.deepEqual([...session.topics], ['private:kept', 'private:in-tolerance']);
    } finally {
      mock.timers.reset();
    }
  });

  it('refuses a uid over maxConnectionsPerUser; the same uid logging in again is not counted twice', async () => {
    const { auth, connection } = setup({ config: { limits: { maxConnectionsPerUser: 2 } } });
    const token = await signToken({ sub: 'ann' });
    const [a, b, c] = [connection().session, connection().session, connection().session];
    await auth.login(a, token);
    await auth.login(b, token);
    await assert.rejects(auth.login(c, token), (err: HeraldError) => err.code === 'rate_limited' && err.message === 'too many connections for user ann (limit 2)');
    assert.equal(c.uid, undefined);
    await auth.login(b, token);
    assert.equal(b.uid, 'ann');
  });
});

describe('Authenticator: token expiry', () => {
  afterEach(() => mock.timers.reset());

  /** Mocked time from a whole second of the real clock (tokens are signed and verified at the mocked time). */
  function atNow(): number {
    const now = seconds(Date.now()) * 1000;
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now });
    return now;
  }

  it('at exp + clockTolerance: a token_expired error in the connection\'s protocol; after expiryGrace: 4001', async () => {
    const now = atNow();
    const { auth, closed, connection, frames } = setup();
    const { session, transport, codec } = connection();
    await auth.login(session, await signToken({ sub: 'ann' }, { exp: seconds(now) + 60 }));
    mock.timers.tick(60_000 + TOLERANCE - 1);
    assert.equal(codec.count('error'), 0, 'not before exp + clockTolerance');
    mock.timers.tick(1);
    assert.deepEqual(frames(transport), [`c:error token_expired token expired: log in with a fresh token within ${GRACE} ms`]);
    mock.timers.tick(GRACE - 1);
    assert.equal(closed.length, 0);
    mock.timers.tick(1);
    assert.deepEqual(closed.map(({ code, reason }) => [code, reason]), [[CloseCode.TOKEN_EXPIRED, 'token expired']]);
    assert.equal(CloseCode.TOKEN_EXPIRED, 4001);
    assert.equal(closed[0]!.session, session);
  });

  it('a protocol that cannot log in is told to reconnect; one without an error frame is closed all the same', async () => {
    const now = atNow();
    const { auth, closed, connection, frames } = setup();
    const lhttp = connection({ canLogIn: false });
    const silent = connection({ codec: new RecordingCodec('raw', ['error']) });
    const token = await signToken({ sub: 'ann' }, { exp: seconds(now) + 10 });
    await auth.login(lhttp.session, token);
    await auth.login(silent.session, token);
    mock.timers.tick(10_000 + TOLERANCE);
    assert.deepEqual(frames(lhttp.transport), [`c:error token_expired token expired: reconnect with a fresh token within ${GRACE} ms`]);
    assert.equal(silent.codec.count('error'), 1, 'asked');
    assert.deepEqual(frames(silent.transport), [], 'no frame: its protocol has none');
    mock.timers.tick(GRACE);
    assert.deepEqual(closed.map(({ session }) => session), [lhttp.session, silent.session]);
  });

  it('a fresh token during the grace period keeps the connection, and its own expiry takes over', async () => {
    const now = atNow();
    const { auth, closed, connection, frames } = setup();
    const { session, transport } = connection();
    await auth.login(session, await signToken({ sub: 'ann' }, { exp: seconds(now) + 10 }));
    mock.timers.tick(10_000 + TOLERANCE);
    assert.equal(frames(transport).length, 1);
    await auth.login(session, await signToken({ sub: 'ann' }, { exp: seconds(now) + 120 }));
    mock.timers.tick(GRACE);
    assert.deepEqual(closed, [], 'the old deadline is gone');
    mock.timers.tick(120_000 - 10_000 - GRACE);
    assert.equal(frames(transport).length, 2, 'the new token expires in turn');
  });

  it('a token without exp cancels the previous expiry', async () => {
    const now = atNow();
    const { auth, closed, connection, frames } = setup();
    const { session, transport } = connection();
    await auth.login(session, await signToken({ sub: 'ann' }, { exp: seconds(now) + 10 }));
    await auth.login(session, await signToken({ sub: 'ann' }));
    mock.timers.tick(10_000 + TOLERANCE + GRACE);
    assert.deepEqual(frames(transport), []);
    assert.deepEqual(closed, []);
  });

  it('a connection that is no longer open is not told', async () => {
    const now = atNow();
    const { auth, closed, connection, frames } = setup();
    const { session, transport, codec } = connection();
    await auth.login(session, await signToken({ sub: 'ann' }, { exp: seconds(now) + 10 }));
    session.close(1000, 'bye');
    mock.timers.tick(10_000 + TOLERANCE + GRACE);
    assert.equal(codec.count('error'), 0);
    assert.deepEqual(frames(transport), []);
    assert.deepEqual(closed, []);
  });

  it('an expiry further away than a timer can wait (2^31-1 ms) waits in steps, not 1 ms', async () => {
    const now = atNow();
    const { auth, connection } = setup();
    const { session, codec } = connection();
    const far = 40 * 24 * 3600; // 40 days
    await auth.login(session, await signToken({ sub: 'ann' }, { exp: seconds(now) + far }));
    mock.timers.tick(2 ** 31 - 1);
    assert.equal(codec.count('error'), 0);
    mock.timers.tick(far * 1000 + TOLERANCE - (2 ** 31 - 1) - 1);
    assert.equal(codec.count('error'), 0, 'one ms before');
    mock.timers.tick(1);
    assert.equal(codec.count('error'), 1);
  });
});

describe('Authenticator: the login deadline', () => {
  afterEach(() => mock.timers.reset());

  it('without anonymous connections, one with no identity is closed with 4001 after loginTimeout', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { auth, closed, connection } = setup({ config: { auth: { anonymous: false, loginTimeout: 2000 } } });
    const { session } = connection();
    auth.startLoginDeadline(session);
    mock.timers.tick(1999);
    assert.deepEqual(closed, []);
    mock.timers.tick(1);
    assert.deepEqual(closed.map(({ code, reason }) => [code, reason]), [[CloseCode.UNAUTHORIZED, 'login required']]);
  });

  it('no deadline with anonymous connections, or for a connection identified as it opened; a login in time cancels it', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const anonymous = setup();
    const open = anonymous.connection().session;
    anonymous.auth.startLoginDeadline(open);

    const strict = setup({ config: { auth: { anonymous: false, loginTimeout: 2000 } } });
    const identified = strict.connection().session;
    await strict.auth.login(identified, await signToken({ sub: 'ann' }));
    strict.auth.startLoginDeadline(identified);
    const late = strict.connection().session;
    strict.auth.startLoginDeadline(late);
    await strict.auth.login(late, await signToken({ sub: 'bob' }));

    mock.timers.tick(10_000);
    assert.deepEqual(anonymous.closed, []);
    assert.deepEqual(strict.closed, []);
  });
});

describe('Authenticator: connecting', () => {
  it('needs work only with a URL token, a connect hook or onConnect', () => {
    assert.equal(setup().auth.needed(request('/ws')), false);
    assert.equal(setup().auth.needed(request('/ws?token=abc')), true);
    assert.equal(setup({ config: { auth: { connectHook: { url: 'http://127.0.0.1:1/hook' } } } }).auth.needed(request('/ws')), true);
    assert.equal(setup({ onConnect: () => undefined }).auth.needed(request('/ws')), true);
  });

  it('?token= becomes the identity before onConnect, which sees it', async () => {
    const seen: Array<{ id: string; uid: string | undefined; url: string }> = [];
    const { auth, connection } = setup({ onConnect: (info) => void seen.push({ id: info.id, uid: info.uid, url: info.url }) });
    const { session } = connection({ open: false });
    const token = await signToken({ sub: 'ann', topics: ['private:a'] });
    const topics = await auth.connect(session, request(`/ws?token=${token}`));
    assert.deepEqual(topics, []);
    assert.equal(session.uid, 'ann');
    assert.deepEqual(session.grants.topics, ['private:a']);
    assert.deepEqual(seen, [{ id: session.id, uid: 'ann', url: `/ws?token=${token}` }]);
  });

  it('a connection that closed while its URL token was being verified is not put back in the user index', async () => {
    let verify!: () => void;
    const verified = new Promise<void>((resolve) => (verify = resolve));
    /** A verifier that waits for the test before it answers. */
    class SlowVerifier extends TokenVerifier {
      override async identity(token: unknown) {
        await verified;
        return super.identity(token);
      }
    }
    const { auth, hub, online, connection } = setup({ verifier: (jwt) => new SlowVerifier(jwt) });
    const { session, transport } = connection({ open: false });
    const connecting = auth.connect(session, request(`/ws?token=${await signToken({ sub: 'ann' })}`));
    // The peer goes away meanwhile: the gateway takes the session out of the hub.
    transport.closeEvent(1001, 'gone');
    hub.remove(session);
    verify();
    await assert.rejects(connecting, { code: 'unavailable', message: CLOSED_WHILE_CONNECTING }, 'gives up: the gateway tells nobody of it');
    assert.equal(hub.userSessions('ann').size, 0, 'no dead session in the user index');
    assert.equal(hub.userCount, 0);
    assert.deepEqual(online, [], 'the user is not announced online here');
  });

  it('a bad URL token refuses the connection (unauthorized), and onConnect is not asked', async () => {
    let asked = 0;
    const { auth, connection } = setup({ onConnect: () => void asked++ });
    const { session } = connection({ open: false });
    await assert.rejects(auth.connect(session, request('/ws?token=nope')), (err: HeraldError) => err.code === 'unauthorized');
    assert.equal(asked, 0);
  });

  it('onConnect refusing refuses the connection with its error', async () => {
    const { auth, connection } = setup({ onConnect: () => Promise.reject(new HeraldError('forbidden', 'not today')) });
    const { session } = connection({ open: false });
    await assert.rejects(auth.connect(session, request('/ws')), (err: HeraldError) => err.code === 'forbidden' && err.message === 'not today');
  });

  it("insecureLogin: refused unless auth.insecureUidLogin; then the seed's raw-push identity", () => {
    const off = setup();
    const a = off.connection().session;
    assert.throws(() => off.auth.insecureLogin(a, '123'), (err: HeraldError) => err.code === 'unauthorized' && /insecureUidLogin/.test(err.message));
    assert.equal(a.uid, undefined);
    const on = setup({ config: { auth: { insecureUidLogin: true } } });
    const b = on.connection().session;
    on.auth.insecureLogin(b, '123');
    assert.equal(b.uid, '123');
    assert.equal(b.identity.rawPush, true);
    assert.deepEqual(b.grants, { topics: [], publish: [] });
  });

  it('closeCodeFor: the close code that refuses a connection for each error', () => {
    assert.equal(closeCodeFor('unauthorized'), CloseCode.UNAUTHORIZED);
    assert.equal(closeCodeFor('token_expired'), CloseCode.UNAUTHORIZED);
    assert.equal(closeCodeFor('forbidden'), CloseCode.FORBIDDEN);
    assert.equal(closeCodeFor('rate_limited'), CloseCode.TOO_MANY_CONNECTIONS);
    assert.equal(closeCodeFor('unavailable'), CloseCode.RECONNECT);
    assert.equal(closeCodeFor('internal'), CloseCode.RECONNECT);
  });
});
