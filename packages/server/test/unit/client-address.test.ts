import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { createClientAddressResolver, hasForwardingHeader, isLocalCaller, isLoopback, type ForwardingHeader, type TrustProxySetting } from '../../src/util/client-address.js';

/** A request as the resolver sees it: the socket's peer and the headers (lower-case names, as Node gives them). */
const request = (peer: string | undefined, headers: Record<string, string | string[]> = {}): IncomingMessage =>
  ({ socket: { remoteAddress: peer }, headers }) as unknown as IncomingMessage;

const resolve = (trust: TrustProxySetting, peer: string | undefined, headers: Record<string, string | string[]> = {}, header?: ForwardingHeader) =>
  createClientAddressResolver(trust, header)(request(peer, headers));

describe('client address', () => {
  it('trusting nobody: the peer is the client, and a forwarding header marks the request as proxied', () => {
    assert.deepEqual(resolve(false, '203.0.113.9'), { address: '203.0.113.9', peer: '203.0.113.9', proxied: false });
    assert.deepEqual(resolve(false, '127.0.0.1', { 'x-forwarded-for': '198.51.100.1' }), { address: '127.0.0.1', peer: '127.0.0.1', proxied: true });
    assert.deepEqual(resolve([], '127.0.0.1', { 'x-real-ip': '198.51.100.1' }), { address: '127.0.0.1', peer: '127.0.0.1', proxied: true }, 'an empty list trusts nobody');
  });

  it('an IPv4-mapped IPv6 peer is its IPv4 address; an unknown peer is "unknown"', () => {
    assert.equal(resolve(false, '::ffff:192.0.2.7').address, '192.0.2.7');
    assert.equal(resolve(false, '::ffff:c000:207').address, '::ffff:c000:207', 'only the dotted form is IPv4');
    assert.equal(resolve(false, undefined).address, 'unknown');
  });

  it('a hop count trusts the peer and that many hops minus one, read from the right', () => {
    const xff = { 'x-forwarded-for': '198.51.100.1, 203.0.113.2, 10.0.0.3' };
    assert.equal(resolve(true, '10.0.0.9', xff).address, '10.0.0.3', 'true is one: the entry the nearest proxy wrote');
    assert.equal(resolve(1, '10.0.0.9', xff).address, '10.0.0.3');
    assert.equal(resolve(2, '10.0.0.9', xff).address, '203.0.113.2');
    assert.deepEqual(resolve(10, '10.0.0.9', xff), { address: '198.51.100.1', peer: '10.0.0.9', proxied: false }, 'every hop trusted: the left-most one');
    assert.deepEqual(resolve(0, '10.0.0.9', xff), { address: '10.0.0.9', peer: '10.0.0.9', proxied: true }, 'zero trusts nobody');
  });

  it('a list of proxies: trusted hops are skipped from the right, the first untrusted one is the client; a forged left part is never believed', () => {
    const trust = ['loopback', '10.0.0.0/8'];
    assert.deepEqual(resolve(trust, '127.0.0.1', { 'x-forwarded-for': '127.0.0.1, 192.0.2.77, 10.1.2.3, 10.4.5.6' }), { address: '192.0.2.77', peer: '127.0.0.1', proxied: false });
    assert.deepEqual(resolve(trust, '203.0.113.5', { 'x-forwarded-for': '10.0.0.1' }), { address: '203.0.113.5', peer: '203.0.113.5', proxied: true }, 'from an untrusted peer the header is ignored');
    assert.deepEqual(resolve(trust, '127.0.0.1'), { address: '127.0.0.1', peer: '127.0.0.1', proxied: false }, 'a trusted peer without a header is the client itself');
    assert.equal(resolve(['192.0.2.0/24'], '192.0.2.10', { 'x-forwarded-for': '2001:db8::5' }).address, '2001:db8::5');
  });

  it('reads ports, brackets, quotes and IPv6 forms out of the header entries', () => {
    const via = (value: string): string => resolve(true, '127.0.0.1', { 'x-forwarded-for': value }).address;
    assert.equal(via('192.0.2.43:47011'), '192.0.2.43');
    assert.equal(via('[2001:db8::1]:4711'), '2001:db8::1');
    assert.equal(via('2001:db8::1'), '2001:db8::1', 'a bare IPv6 address keeps its colons');
    assert.equal(via('"192.0.2.8"'), '192.0.2.8');
    assert.equal(via('::ffff:192.0.2.9'), '192.0.2.9');
    assert.equal(via(' 192.0.2.1 ,  192.0.2.2 '), '192.0.2.2');
    assert.equal(via('192.0.2.1,,'), '192.0.2.1', 'empty entries are skipped');
  });

  it('several header lines are read as one list', () => {
    assert.equal(resolve(2, '127.0.0.1', { 'x-forwarded-for': ['192.0.2.1', '192.0.2.2'] }).address, '192.0.2.1');
  });

  it('RFC 7239 Forwarded: the for= of each element, any case, quoted and bracketed', () => {
    const forwarded = { forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"' };
    assert.equal(resolve(1, '127.0.0.1', forwarded, 'forwarded').address, '2001:db8:cafe::17');
    assert.equal(resolve(2, '127.0.0.1', forwarded, 'forwarded').address, '192.0.2.60');
    assert.equal(resolve(1, '127.0.0.1', { forwarded: 'proto=https;by=x' }, 'forwarded').address, '127.0.0.1', 'no for=: the peer');
    assert.equal(resolve(1, '127.0.0.1', { forwarded: 'for=unknown' }, 'forwarded').address, 'unknown', 'obfuscated names stay as they are');
  });

  it('X-Real-IP: one address', () => {
    assert.equal(resolve(1, '127.0.0.1', { 'x-real-ip': ' 192.0.2.4:80 ' }, 'x-real-ip').address, '192.0.2.4');
    assert.deepEqual(resolve(1, '127.0.0.1', { 'x-real-ip': '  ' }, 'x-real-ip'), { address: '127.0.0.1', peer: '127.0.0.1', proxied: true }, 'a blank one is a header with nothing consumed');
  });

  it('only the configured header is read; another one present makes the request look proxied', () => {
    const headers = { 'x-forwarded-for': '192.0.2.1', 'x-real-ip': '192.0.2.2' };
    assert.equal(resolve(1, '127.0.0.1', headers, 'x-real-ip').address, '192.0.2.2');
    assert.deepEqual(resolve(1, '127.0.0.1', { 'x-forwarded-for': '192.0.2.1' }, 'forwarded'), { address: '127.0.0.1', peer: '127.0.0.1', proxied: true });
  });
});

describe('loopback and local callers', () => {
  it('isLoopback: 127.0.0.0/8, ::1 and their IPv4-mapped form, nothing else', () => {
    for (const address of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(address), true, address);
    for (const address of ['128.0.0.1', '10.0.0.1', '::2', '', undefined, 'localhost', '::ffff:10.0.0.1']) assert.equal(isLoopback(address), false, String(address));
  });

  it('a local caller is a loopback client with no unaccounted-for proxy in front', () => {
    assert.equal(isLocalCaller({ address: '127.0.0.1', peer: '127.0.0.1', proxied: false }), true);
    assert.equal(isLocalCaller({ address: '127.0.0.1', peer: '127.0.0.1', proxied: true }), false);
    assert.equal(isLocalCaller({ address: '192.0.2.1', peer: '127.0.0.1', proxied: false }), false);
  });

  it('a header never makes a remote peer local: not with a hop count, not through a trusted proxy on another host', () => {
    // trustProxy: true and a client that reaches Herald directly: it writes the hop that is believed.
    const direct = resolve(true, '203.0.113.9', { 'x-forwarded-for': '127.0.0.1' });
    assert.equal(direct.address, '127.0.0.1', 'the hop count believes it for the address');
    assert.equal(isLocalCaller(direct), false, 'but the caller is not on this machine');
    assert.equal(isLocalCaller(resolve(2, '203.0.113.9', { 'x-forwarded-for': '127.0.0.1, 127.0.0.1' })), false);
    // A trusted proxy on another host: 127.0.0.1 is a program on *its* machine.
    assert.equal(isLocalCaller(resolve(['10.0.0.5'], '10.0.0.5', { 'x-forwarded-for': '127.0.0.1' })), false);
    // A proxy on this machine forwarding a program on this machine is still local.
    assert.equal(isLocalCaller(resolve(['loopback'], '127.0.0.1', { 'x-forwarded-for': '127.0.0.1' })), true);
  });

  it('hasForwardingHeader knows the three headers', () => {
    for (const name of ['x-forwarded-for', 'forwarded', 'x-real-ip']) assert.equal(hasForwardingHeader(request('127.0.0.1', { [name]: 'x' })), true, name);
    assert.equal(hasForwardingHeader(request('127.0.0.1', { via: '1.1 proxy' })), false);
  });
});
