import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Pusher from 'pusher';
import { md5, parseQuery, signatureProblem, stringToSign, type SignedRequest } from '../../src/pusher/signature.js';

const APP = { key: 'the-key', secret: 'the-secret-of-the-app' };
const NOW = 1_700_000_000_000;

/** A request as the `pusher` library signs it (its own createSignedQueryString, stamped at `at` ms). */
function signedByLibrary(method: string, path: string, options: { body?: string; params?: Record<string, string>; at?: number; secret?: string } = {}): SignedRequest {
  const pusher = new Pusher({ appId: '1', key: APP.key, secret: options.secret ?? APP.secret, host: 'localhost' });
  const realNow = Date.now;
  Date.now = () => options.at ?? NOW;
  try {
    const query = pusher.createSignedQueryString({ method, path, ...(options.body !== undefined ? { body: options.body } : {}), ...(options.params ? { params: options.params } : {}) });
    return { method, rawPath: path, query: parseQuery(query), body: options.body ?? '' };
  } finally {
    Date.now = realNow;
  }
}

describe('Pusher request signatures (pusher/signature.ts)', () => {
  it('accept what the pusher library signs: GET with params, POST with a body', () => {
    assert.equal(signatureProblem(signedByLibrary('GET', '/apps/1/channels', { params: { filter_by_prefix: 'presence-', info: 'user_count' } }), APP, 600, NOW), null);
    const body = JSON.stringify({ name: 'e', data: '{"é":"聊"}', channels: ['a', 'b'] });
    assert.equal(signatureProblem(signedByLibrary('POST', '/apps/1/events', { body }), APP, 600, NOW), null);
  });

  it('the string to sign: method upper case, keys lower-cased and sorted, auth_signature left out, values unescaped', () => {
    assert.equal(stringToSign('get', '/p', [['b', '2'], ['A', '1'], ['auth_signature', 'x'], ['c', 'x,y']]), 'GET\n/p\na=1&b=2&c=x,y');
  });

  it('query values may arrive escaped: the signature over the decoded values holds', () => {
    const request = signedByLibrary('GET', '/apps/1/channels', { params: { filter_by_prefix: 'a,b;c' } });
    const escaped = request.query.map((p) => `${p.rawKey}=${p.key === 'filter_by_prefix' ? encodeURIComponent(p.rawValue) : p.rawValue}`).join('&');
    assert.match(escaped, /%2C/);
    assert.equal(signatureProblem({ ...request, query: parseQuery(escaped) }, APP, 600, NOW), null);
  });

  it('a path the client escaped (a user id with a space) is checked as signed, unescaped', () => {
    const request = signedByLibrary('POST', '/apps/1/users/a b/terminate_connections', { body: '{}' });
    assert.equal(signatureProblem({ ...request, rawPath: '/apps/1/users/a%20b/terminate_connections' }, APP, 600, NOW), null);
  });

  it('refuse a wrong secret, naming the string to sign but never the secret', () => {
    const problem = signatureProblem(signedByLibrary('GET', '/apps/1/channels', { secret: 'another-secret' }), APP, 600, NOW);
    assert.equal(problem?.status, 401);
    assert.match(problem!.message, /^Invalid signature: you should have sent HmacSHA256Hex\("GET\\n\/apps\/1\/channels\\nauth_key=the-key&auth_timestamp=1700000000&auth_version=1.0", your_secret_key\), but you sent "[0-9a-f]{64}"$/);
    assert.ok(!problem!.message.includes(APP.secret));
  });

  it('a rotation: requests signed with a previous secret verify, with any other secret they do not', () => {
    const rotating = { ...APP, secret: 'the-new-secret-of-the-app', previousSecrets: [APP.secret] };
    assert.equal(signatureProblem(signedByLibrary('GET', '/apps/1/channels'), rotating, 600, NOW), null, 'the previous secret');
    assert.equal(signatureProblem(signedByLibrary('GET', '/apps/1/channels', { secret: rotating.secret }), rotating, 600, NOW), null, 'the new secret');
    assert.equal(signatureProblem(signedByLibrary('GET', '/apps/1/channels', { secret: 'a-third-secret-of-it' }), rotating, 600, NOW)?.status, 401);
    assert.equal(signatureProblem(signedByLibrary('GET', '/apps/1/channels'), { ...APP, secret: rotating.secret }, 600, NOW)?.status, 401, 'once the rotation is over');
  });

  it('the timestamp window: 599 s either way is accepted, 600 s is not', () => {
    for (const skew of [-599_000, 599_000]) assert.equal(signatureProblem(signedByLibrary('GET', '/x', { at: NOW + skew }), APP, 600, NOW), null);
    for (const skew of [-600_000, 600_000]) {
      const problem = signatureProblem(signedByLibrary('GET', '/x', { at: NOW + skew }), APP, 600, NOW);
      assert.equal(problem?.status, 401);
      assert.match(problem!.message, /^Timestamp expired: Given timestamp \(2023-11-14T22:\d\d:\d\dZ\) not within 600s of server time \(2023-11-14T22:13:20Z\)$/);
    }
    assert.equal(signatureProblem(signedByLibrary('GET', '/x', { at: NOW - 20_000 }), APP, 10, NOW)?.status, 401, 'the window is the configured one');
  });

  it('refuse missing, repeated, unknown and unsupported auth parameters, and a body that is not the signed one', () => {
    const request = signedByLibrary('POST', '/e', { body: '{"a":1}' });
    const without = (key: string) => ({ ...request, query: request.query.filter((p) => p.key !== key) });
    for (const key of ['auth_key', 'auth_timestamp', 'auth_version', 'auth_signature']) {
      const problem = signatureProblem(without(key), APP, 600, NOW);
      assert.equal(problem?.status, 401, key);
      assert.match(problem!.message, new RegExp(`^Missing parameter: ${key}`));
    }
    assert.equal(signatureProblem(without('body_md5'), APP, 600, NOW)?.status, 401, 'a body needs body_md5 (and without it the signature differs too)');
    assert.equal(signatureProblem({ ...request, query: [...request.query, request.query[0]!] }, APP, 600, NOW)?.status, 400, 'a repeated auth parameter');
    assert.deepEqual(signatureProblem(request, { ...APP, key: 'other' }, 600, NOW), { status: 401, message: 'Unknown auth_key' });
    assert.deepEqual(signatureProblem(request, { ...APP, key: 'other' }, 600, NOW, () => true), { status: 401, message: 'Invalid auth_key: the key of another app' });
    const v2 = { ...request, query: request.query.map((p) => (p.key === 'auth_version' ? { ...p, value: '2.0', rawValue: '2.0' } : p)) };
    assert.match(signatureProblem(v2, APP, 600, NOW)!.message, /^Unsupported auth_version/);
    const tampered = signatureProblem({ ...request, body: '{"a":2}' }, APP, 600, NOW);
    assert.deepEqual(tampered, { status: 401, message: 'Invalid body_md5: it is not the MD5 of the body' });
    assert.equal(md5(''), 'd41d8cd98f00b204e9800998ecf8427e');
  });
});
