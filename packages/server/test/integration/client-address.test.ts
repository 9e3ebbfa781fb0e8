import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import type { ConnectInfo } from '../../src/index.js';
import { http, startHerald, wsUrl } from '../helpers/helpers.js';

/** Opens a WebSocket with these headers; resolves with 101 (and the socket) or the refusing status. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('error', () => undefined);
  });
}

/** Starts a Herald whose onConnect records each connection's address (what logs, limits and the connect hook see). */
async function recording(options: Parameters<typeof startHerald>[0]) {
  const seen: string[] = [];
  const herald = await startHerald({ ...options, onConnect: (info: ConnectInfo) => void seen.push(info.ip) });
  return { herald, seen };
}

describe('client addresses behind proxies (trustProxy, proxyHeader)', () => {
  it('takes the right-most untrusted X-Forwarded-For hop: an address the client writes itself is never believed', async () => {
    const { herald, seen } = await recording({ trustProxy: ['loopback'], limits: { maxConnectionsPerIp: 2 } });
    // What nginx sends for a client at 203.0.113.5 that wrote its own X-Forwarded-For: the forged part comes first.
    const statuses: number[] = [];
    const open: WebSocket[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await upgrade(wsUrl(herald), { 'x-forwarded-for': `198.51.100.${i}, 10.9.9.${i}, 203.0.113.5` });
      statuses.push(answer.status);
      if (answer.ws) open.push(answer.ws);
    }
    assert.deepEqual(statuses, [101, 101, 429, 429, 429], 'the per-address limit holds whatever the client writes');
    assert.deepEqual(seen, ['203.0.113.5', '203.0.113.5']);
    for (const ws of open) ws.close();
  });

  it('a list of trusted proxies is walked from the right: trusted hops are skipped, the first untrusted one is the client', async () => {
    const { herald, seen } = await recording({ trustProxy: ['loopback', '10.0.0.0/8'] });
    const answer = await upgrade(wsUrl(herald), { 'x-forwarded-for': '127.0.0.1, 192.0.2.77, 10.1.2.3, 10.4.5.6' });
    assert.equal(answer.status, 101);
    assert.deepEqual(seen, ['192.0.2.77']);
    answer.ws!.close();
  });

  it('a hop count trusts that many hops (true is one)', async () => {
    const one = await recording({ trustProxy: true });
    const a = await upgrade(wsUrl(one.herald), { 'x-forwarded-for': '127.0.0.1, 192.0.2.1' });
    const two = await recording({ trustProxy: 2 });
    const b = await upgrade(wsUrl(two.herald), { 'x-forwarded-for': '127.0.0.1, 192.0.2.2, 10.0.0.1' });
    assert.deepEqual([one.seen, two.seen], [['192.0.2.1'], ['192.0.2.2']]);
    a.ws!.close();
    b.ws!.close();
  });

  it('reads RFC 7239 Forwarded or X-Real-IP when proxyHeader names it, and ignores the other headers then', async () => {
    const forwarded = await recording({ trustProxy: ['loopback'], proxyHeader: 'forwarded' });
    const a = await upgrade(wsUrl(forwarded.herald), {
      forwarded: 'for=127.0.0.1, for="[2001:db8::17]:4711";proto=https',
      'x-forwarded-for': '127.0.0.1',
      'x-real-ip': '127.0.0.1',
    });
    const realIp = await recording({ trustProxy: ['loopback'], proxyHeader: 'x-real-ip' });
    const b = await upgrade(wsUrl(realIp.herald), { 'x-real-ip': '192.0.2.9', 'x-forwarded-for': '127.0.0.1' });
    assert.deepEqual([forwarded.seen, realIp.seen], [['2001:db8::17'], ['192.0.2.9']]);
    a.ws!.close();
    b.ws!.close();
  });

  it('headers from a peer that is not a trusted proxy are ignored for the address', async () => {
    const { herald, seen } = await recording({ trustProxy: ['192.0.2.0/24'] });
    const answer = await upgrade(wsUrl(herald), { 'x-forwarded-for': '198.51.100.1' });
    assert.equal(answer.status, 101);
    assert.deepEqual(seen, ['127.0.0.1']);
    answer.ws!.close();
  });

  it('refuses a trustProxy entry that is not an address, CIDR or range name', async () => {
    await assert.rejects(startHerald({ trustProxy: ['not-an-address'] }), /trustProxy/);
  });
});

describe('a forwarded request never looks local', () => {
  for (const [name, headers] of [
    ['X-Forwarded-For', { 'x-forwarded-for': '203.0.113.9' }],
    ['Forwarded', { forwarded: 'for=203.0.113.9' }],
    ['X-Real-IP', { 'x-real-ip': '203.0.113.9' }],
  ] as const) {
    it(`with only ${name} from loopback, the key-less API and the demo backend refuse it`, async () => {
      const herald = await startHerald({ demo: { enabled: true, backend: true }, auth: { jwt: { secret: 'a-secret-of-at-least-32-characters!!' } } });
      const status = await http(herald, 'GET', '/api/status', undefined, headers);
      assert.equal(status.status, 403, `/api/status: ${status.text}`);
      const token = await http(herald, 'POST', '/demo/token', { uid: 'admin' }, headers);
      assert.equal(token.status, 403, `/demo/token: ${token.text}`);
      assert.equal(token.body.error.code, 'forbidden');
      // The same caller without the header is local.
      assert.equal((await http(herald, 'GET', '/api/status')).status, 200);
      assert.equal((await http(herald, 'POST', '/demo/token', { uid: 'admin' })).status, 200);
    });
  }

  it('behind a trusted proxy, a remote client is remote for the API even when it writes 127.0.0.1 itself', async () => {
    const herald = await startHerald({ trustProxy: ['loopback'], proxyHeader: 'x-real-ip' });
    assert.equal((await http(herald, 'GET', '/api/status', undefined, { 'x-real-ip': '203.0.113.9', 'x-forwarded-for': '127.0.0.1' })).status, 403);
    // A proxy that does not send the configured header: the request is still not local.
    assert.equal((await http(herald, 'GET', '/api/status', undefined, { forwarded: 'for=203.0.113.9' })).status, 403);
  });
});

describe('connection rates: per address first, the node ceiling behind', () => {
  it('one address over its rate gets 429 without emptying the node bucket for another address', async () => {
    const herald = await startHerald({ trustProxy: ['loopback'], limits: { connectionsPerSecond: 5, connectionsPerSecondPerIp: 1 } });
    // 203.0.113.1 tries 20 times at once: its own burst (2) passes, the rest is refused per address.
    const flood = await Promise.all(Array.from({ length: 20 }, () => upgrade(wsUrl(herald), { 'x-forwarded-for': '203.0.113.1' })));
    const statuses = flood.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 101).length, 2, statuses.join(','));
    assert.equal(statuses.filter((status) => status === 429).length, 18, statuses.join(','));
    // The node's bucket (burst 10) still has room: other addresses get in at once.
    const others = await Promise.all(Array.from({ length: 8 }, (_, i) => upgrade(wsUrl(herald), { 'x-forwarded-for': `198.51.100.${i}` })));
    assert.deepEqual(others.map((answer) => answer.status), Array(8).fill(101));
    for (const answer of [...flood, ...others]) answer.ws?.close();
  });
});
