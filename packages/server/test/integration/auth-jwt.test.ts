import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { CloseCode } from '../../src/index.js';
import { connect, deadline, startHerald, type TestClient } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';

const hs256 = signToken;

/** An unsigned token (`alg: none`), as an attacker would forge it. */
function unsigned(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

describe('JWT identity with a shared secret (HS256)', () => {
  let herald: Awaited<ReturnType<typeof startHerald>>;
  before(async () => {
    herald = await startHerald({ auth: { jwt: { secret: SECRET, clockTolerance: 0 }, expiryGrace: 400 } });
  });

  it('accepts a valid token on the URL and on login; sub is the uid', async () => {
    const viaUrl = await connect(herald, { path: `/ws?token=${await hs256({ sub: 'alice' })}` });
    await viaUrl.request({ action: 'ping' });
    assert.equal(herald.userConnections('alice'), 1);

    const viaLogin = await connect(herald);
    const reply = await viaLogin.request({ action: 'login', token: await hs256({ sub: 'bob' }, { exp: '1h' }) });
    assert.equal(reply.ok, true);
    assert.equal(reply.uid, 'bob');
    assert.equal(typeof reply.expiresAt, 'number');
    assert.equal(herald.userConnections('bob'), 1);
    assert.equal(herald.status().users, 2);
    await Promise.all([viaUrl.close(), viaLogin.close()]);
  });

  const refused: Array<[string, () => Promise<string> | string, RegExp]> = [
    ['an expired token', () => hs256({ sub: 'u' }, { exp: Math.floor(Date.now() / 1000) - 60 }), /token expired/],
    ['a token not yet valid', () => hs256({ sub: 'u' }, { nbf: Math.floor(Date.now() / 1000) + 3600 }), /not yet valid/],
    ['a token signed with another secret', () => hs256({ sub: 'u' }, { key: new TextEncoder().encode('another-secret-that-is-32-characters!') }), /bad signature/],
    ['an unsigned token (alg: none)', () => unsigned({ sub: 'u' }), /invalid token/],
    ['a token without sub', () => hs256({ name: 'nobody' }), /no "sub" claim/],
    ['garbage', () => 'not.a.jwt', /malformed token/],
  ];
  for (const [name, make, reason] of refused) {
    it(`refuses ${name} with unauthorized and says why`, async () => {
      const c = await connect(herald);
      const reply = await c.request({ action: 'login', token: await make() });
      assert.equal(reply.ok, false, JSON.stringify(reply));
      assert.equal(reply.error.code, 'unauthorized');
      assert.match(reply.error.message, reason);
      assert.equal((await c.request({ action: 'ping' })).ok, true, 'a refused login keeps the connection');
      await c.close();
    });
  }

  it('refuses an algorithm outside auth.jwt.algorithms', async () => {
    const strict = await startHerald({ auth: { jwt: { secret: SECRET, algorithms: ['HS256'] } } });
    const c = await connect(strict);
    assert.equal((await c.request({ action: 'login', token: await hs256({ sub: 'u' }) })).ok, true);
    const reply = await c.request({ action: 'login', token: await hs256({ sub: 'u' }, { alg: 'HS512' }) });
    assert.equal(reply.error.code, 'unauthorized');
    assert.match(reply.error.message, /algorithm not allowed/);
    await c.close();
    await strict.close();
  });

  it('refuses a bad token on the URL by closing with 4501 and the reason', async () => {
    const c = await connect(herald, { path: `/ws?token=${unsigned({ sub: 'mallory' })}` });
    const closed = await c.closed;
    assert.equal(closed.code, CloseCode.UNAUTHORIZED);
    assert.match(closed.reason, /invalid token/);
    assert.equal(herald.userConnections('mallory'), 0);
  });

  it('on expiry sends token_expired; a fresh login keeps the connection, no login closes it with 4001', async () => {
    const exp = Math.floor(Date.now() / 1000) + 1;
    const [renewer, sleeper] = await Promise.all([connect(herald), connect(herald)]);
    await renewer.request({ action: 'login', token: await hs256({ sub: 'carol' }, { exp }) });
    await sleeper.request({ action: 'login', token: await hs256({ sub: 'dave' }, { exp }) });

    const expired = await renewer.next(5000);
    assert.equal(expired.action, 'error');
    assert.equal(expired.error.code, 'token_expired');
    assert.ok(Date.now() >= exp * 1000, 'not before exp');
    const renewed = await renewer.request({ action: 'login', token: await hs256({ sub: 'carol' }, { exp: '1h' }) });
    assert.equal(renewed.ok, true);

    assert.equal((await sleeper.next(5000)).error.code, 'token_expired');
    const closed = await deadline(sleeper.closed, 5000, 'the 4001 close');
    assert.deepEqual(closed, { code: CloseCode.TOKEN_EXPIRED, reason: 'token expired' });

    // The renewed connection outlived the sleeper's grace period and still works.
    assert.equal((await renewer.request({ action: 'ping' })).ok, true);
    assert.equal(herald.userConnections('carol'), 1);
    await renewer.close();
  });

  it('re-login under another uid moves the connection and drops subscriptions it may no longer hold', async () => {
    const c = await connect(herald);
    await c.request({ action: 'login', token: await hs256({ sub: 'erin' }) });
    assert.equal((await c.request({ action: 'subscribe', topics: ['user:erin', 'public'] })).ok, true);
    const reply = await c.request({ action: 'login', token: await hs256({ sub: 'frank' }) });
    assert.deepEqual(reply.unsubscribed, ['user:erin']);
    assert.equal(herald.userConnections('erin'), 0);
    assert.equal(herald.userConnections('frank'), 1);
    assert.equal(internals(herald).hub.subscriberCount('public'), 1);
    await c.close();
  });
});

describe('JWT identity with public keys', () => {
  it('verifies RS256 tokens against a PEM public key and refuses HS256 forged with it', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const pem = await exportSPKI(publicKey);
    const herald = await startHerald({ auth: { jwt: { publicKey: pem } } });
    const good = await new SignJWT({ sub: 'rsa-user' }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    const c = await connect(herald);
    assert.equal((await c.request({ action: 'login', token: good })).uid, 'rsa-user');

    // The classic confusion attack: an HMAC token whose secret is the public key's PEM text.
    const forged = await new SignJWT({ sub: 'admin' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(pem));
    const reply = await c.request({ action: 'login', token: forged });
    assert.equal(reply.error.code, 'unauthorized');
    assert.match(reply.error.message, /algorithm not allowed/);

    const { privateKey: otherKey } = await generateKeyPair('RS256');
    const wrongKey = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256' }).sign(otherKey);
    assert.match((await c.request({ action: 'login', token: wrongKey })).error.message, /bad signature/);
    await c.close();
    await herald.close();
  });

  describe('JWKS from a local HTTP server', () => {
    let jwks: Server;
    const keys: JWK[] = [];
    let fetches = 0;
    before(async () => {
      jwks = createServer((_req, res) => {
        fetches++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys }));
      });
      await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    });
    after(() => new Promise<void>((resolve) => jwks.close(() => resolve())));

    it('verifies ES256 and EdDSA tokens by kid, caches the set, and fetches it again for an unknown kid', async () => {
      const es = await generateKeyPair('ES256');
      keys.push({ ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256' });
      const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
      const herald = await startHerald({ auth: { jwt: { jwksUrl: url, jwksCooldown: 0 } } });
      const c: TestClient = await connect(herald);
      const t1 = await new SignJWT({ sub: 'es-user' }).setProtectedHeader({ alg: 'ES256', kid: 'es-1' }).sign(es.privateKey);
      assert.equal((await c.request({ action: 'login', token: t1 })).uid, 'es-user');
      assert.equal((await c.request({ action: 'login', token: t1 })).uid, 'es-user');
      assert.equal(fetches, 1, 'the key set is cached');

      // Key rotation: a new key appears in the set; a token with its kid makes Herald fetch again.
      const ed = await generateKeyPair('EdDSA');
      keys.push({ ...(await exportJWK(ed.publicKey)), kid: 'ed-2', alg: 'EdDSA' });
      const t2 = await new SignJWT({ sub: 'ed-user' }).setProtectedHeader({ alg: 'EdDSA', kid: 'ed-2' }).sign(ed.privateKey);
      assert.equal((await c.request({ action: 'login', token: t2 })).uid, 'ed-user');
      assert.equal(fetches, 2);

      const stranger = await generateKeyPair('ES256');
      const t3 = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid: 'nobody' }).sign(stranger.privateKey);
      assert.match((await c.request({ action: 'login', token: t3 })).error.message, /no key of the JWKS matches/);
      await c.close();
      await herald.close();
    });
  });
});

describe('without a token configuration', () => {
  it('refuses login with a clear reason', async () => {
    const herald = await startHerald();
    const c = await connect(herald);
    const reply = await c.request({ action: 'login', token: 'x.y.z' });
    assert.equal(reply.error.code, 'unauthorized');
    assert.match(reply.error.message, /no auth\.jwt/);
    await c.close();
    await herald.close();
  });
});

