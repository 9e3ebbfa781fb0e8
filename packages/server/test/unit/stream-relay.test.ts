import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { ClusterRegistry, type RegistryHost } from '../../src/cluster/registry.js';
import { Relay, type RelayAnswer, type RelayMessage } from '../../src/cluster/relay.js';
import { encodeLine, ndjsonFraming } from '../../src/transport/ndjson.js';
import type { Session } from '../../src/hub/session.js';
import type { StreamTransport } from '../../src/transport/stream.js';
import { parseToken, StreamSessions } from '../../src/transport/stream-sessions.js';
import { FakeBroker } from '../helpers/fake-broker.js';

const quiet = { debug: () => undefined, error: () => undefined, warn: () => undefined } as unknown as Logger;

describe('NDJSON framing', () => {
  it('frames a message as its text and one newline; a raw line break (JSON whitespace) becomes a space', () => {
    assert.equal(encodeLine('{"a":"b\\nc"}').toString(), '{"a":"b\\nc"}\n', 'an escaped newline is left alone');
    assert.equal(encodeLine('{\n "a":\r\n1}').toString(), '{  "a":  1}\n');
    assert.deepEqual(JSON.parse(encodeLine('{\n "a":\r\n1}').toString()), { a: 1 });
    assert.equal(encodeLine('"é聊"').toString('utf8'), '"é聊"\n');
    assert.equal(ndjsonFraming.frame('{}').toString(), '{}\n');
  });
});

describe('session tokens', () => {
  it('name the node, round-trip, and are unique', () => {
    const sessions = new StreamSessions('node.with|odd chars é');
    const tokens = Array.from({ length: 100 }, () => sessions.mint().token);
    assert.equal(new Set(tokens).size, 100);
    for (const token of tokens) {
      assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{24}$/);
      const parsed = parseToken(token)!;
      assert.equal(parsed.node, 'node.with|odd chars é');
      assert.equal(Buffer.from(parsed.secret, 'base64url').length, 18, '144 random bits');
      assert.ok(sessions.isLocal(parsed));
    }
  });

  it('anything else is no token', () => {
    const node = Buffer.from('n1').toString('base64url');
    assert.equal(node, 'bjE');
    assert.equal(parseToken(`${node}.k.s`)?.node, 'n1');
    // 'bjF' decodes to the same bytes with trailing bits set: not the canonical spelling, so no token (one stream, one token).
    for (const bad of ['', 'a.b', 'a.b.c.d', `${node}.k.s=`, `${node}.k e.s`, `${node}..s`, `${node}=.k.s`, 'bjF.k.s']) assert.equal(parseToken(bad), null, bad);
  });

  it('feeding a token of another node, or with a wrong secret, finds nothing', async () => {
    const sessions = new StreamSessions('n1');
    const other = new StreamSessions('n2');
    assert.equal(await sessions.feed(other.mint().token, ['{}']), 'not_found');
    const { token } = sessions.mint();
    assert.equal(await sessions.feed(token, ['{}']), 'not_found', 'minted but never added: no stream');
  });

  it('feeds sends in order, waits while the inbox is full, refuses a fifth waiting send, and gives up on a stream that ended', async () => {
    const sessions = new StreamSessions('n1');
    const received: string[] = [];
    let state = 'open';
    const session = { get state() { return state; }, receive: (data: Buffer) => received.push(data.toString()) } as unknown as Session;
    let ready = true;
    let wake: () => void = () => undefined;
    const transport = { get ready() { return ready; }, whenReady: () => new Promise<void>((resolve) => (wake = resolve)) } as unknown as StreamTransport;
    const { token } = sessions.mint();
    sessions.add(token, session, transport);
    assert.equal(await sessions.feed(token, ['1', '2']), 'fed');

    // The session paused its transport (64 frames wait): sends keep their turn, four at most.
    ready = false;
    const waiting = ['3', '4', '5', '6'].map((frame) => sessions.feed(token, [frame]));
    assert.equal(await sessions.feed(token, ['7']), 'busy');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(received, ['1', '2']);
    ready = true;
    wake();
    assert.deepEqual(await Promise.all(waiting), ['fed', 'fed', 'fed', 'fed']);
    assert.deepEqual(received, ['1', '2', '3', '4', '5', '6'], 'in the order they arrived');

    const [node, key, secret] = token.split('.') as [string, string, string];
    assert.equal(await sessions.feed(`${node}.${key}.${secret.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`, ['x']), 'not_found', 'a wrong secret');

    ready = false;
    const stuck = sessions.feed(token, ['8']);
    await new Promise((resolve) => setImmediate(resolve));
    state = 'closed';
    wake();
    assert.equal(await stuck, 'not_found', 'the stream ended while the send waited');
    assert.equal(await sessions.feed(token, ['9']), 'not_found');
    sessions.remove(token);
    assert.equal(sessions.size, 0);
    assert.deepEqual(received, ['1', '2', '3', '4', '5', '6']);
  });
});

/** Two relays, A and B, whose brokers are fakes: what one sends to the other is handed over by `carry`. */
function pair(options: { timeout?: number; feed?: (session: string, frames: string[]) => Promise<RelayAnswer>; mayHold?: (node: string) => boolean } = {}) {
  const brokers = { a: new FakeBroker(), b: new FakeBroker() };
  const fed: Array<{ session: string; frames: string[] }> = [];
  const feed = options.feed ?? (async (session: string, frames: string[]): Promise<RelayAnswer> => (fed.push({ session, frames }), 'fed'));
  const a = new Relay('A', brokers.a, { feed, mayHold: options.mayHold ?? (() => true) }, { timeout: options.timeout ?? 1000, log: quiet });
  const b = new Relay('B', brokers.b, { feed, mayHold: () => true }, { timeout: options.timeout ?? 1000, log: quiet });
  const relays = { A: a, B: b };
  /** Delivers every message sent so far to its node, in order. */
  const carry = (): number => {
    let carried = 0;
    for (const broker of [brokers.a, brokers.b]) {
      for (const { node, message } of broker.sent.splice(0)) {
        relays[node as 'A' | 'B'].receive(message as RelayMessage);
        carried++;
      }
    }
    return carried;
  };
  return { a, b, brokers, fed, carry };
}

describe('Relay', () => {
  it('carries commands to the node holding the stream, which feeds them and answers with the request id', async () => {
    const { a, brokers, fed, carry } = pair();
    const answer = a.send('B', 'tok', ['{"action":"ping"}', '{"id":2}']);
    assert.deepEqual(brokers.a.sent, [{ node: 'B', message: { t: 'relay', node: 'A', id: 1, session: 'tok', frames: ['{"action":"ping"}', '{"id":2}'] } }]);
    carry();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(fed, [{ session: 'tok', frames: ['{"action":"ping"}', '{"id":2}'] }]);
    assert.deepEqual(brokers.b.sent, [{ node: 'A', message: { t: 'relayed', node: 'B', id: 1, result: 'fed' } }]);
    carry();
    assert.equal(await answer, 'fed');
    assert.equal(a.pending, 0);
  });

  it('answers not_found at once for this node or a node that cannot be live, without sending', async () => {
    const { a, brokers } = pair({ mayHold: (node) => node !== 'gone' });
    assert.equal(await a.send('gone', 'tok', ['{}']), 'not_found');
    assert.equal(await a.send('A', 'tok', ['{}']), 'not_found');
    assert.deepEqual(brokers.a.sent, []);
  });

  it('times out without an answer, and ignores the answer that comes after', async () => {
    const { a, carry } = pair({ timeout: 30 });
    const start = Date.now();
    assert.equal(await a.send('B', 'tok', ['{}']), 'timeout');
    assert.ok(Date.now() - start >= 25);
    assert.equal(a.pending, 0);
    carry();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(carry(), 1, 'B answered late');
  });

  it('is unavailable when the broker cannot send', async () => {
    const { a, brokers } = pair();
    brokers.a.failWith = new Error('down');
    assert.equal(await a.send('B', 'tok', ['{}']), 'unavailable');
    assert.equal(a.pending, 0);
  });

  it('ignores malformed relay messages and answers it does not know', async () => {
    const { b, brokers, fed } = pair();
    b.receive({ t: 'relay', node: 'A', id: 1, session: 'tok', frames: [1] } as unknown as RelayMessage);
    b.receive({ t: 'relay', node: 'A', id: 'x', session: 'tok', frames: [] } as unknown as RelayMessage);
    b.receive({ t: 'relayed', node: 'A', id: 7, result: 'fed' });
    b.receive({ t: 'relayed', node: 'A', id: 7, result: 'what' } as unknown as RelayMessage);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(fed, []);
    assert.deepEqual(brokers.b.sent, []);
  });
});

describe('ClusterRegistry.route', () => {
  const host: RegistryHost = {
    stats: () => ({ connections: 0, users: 0, topics: 0, subscriptions: 0 }),
    localUsers: () => [],
    deliverPush: () => undefined,
    localPresence: () => [],
    remotePresence: () => undefined,
    remotePresenceReset: () => undefined,
  };

  it("hands other units' control messages to them, never this node's own", () => {
    const registry = new ClusterRegistry('self', new FakeBroker(), host, 1000, quiet);
    const got: unknown[] = [];
    registry.route<RelayMessage>('relay', (message) => got.push(message));
    registry.onControl(JSON.stringify({ t: 'relay', node: 'other', id: 1, session: 's', frames: [] }));
    registry.onControl(JSON.stringify({ t: 'relay', node: 'self', id: 2, session: 's', frames: [] }));
    registry.onControl(JSON.stringify({ t: 'unknown', node: 'other' }));
    registry.onControl('not json');
    assert.deepEqual(got, [{ t: 'relay', node: 'other', id: 1, session: 's', frames: [] }]);
  });

  it('mayBeLive: itself, nodes heard from, and any node only while it has not run three heartbeats', () => {
    const registry = new ClusterRegistry('self', new FakeBroker(), host, 1000, quiet);
    assert.equal(registry.mayBeLive('other'), false, 'never started (one node): nobody else');
    assert.equal(registry.mayBeLive('self'), true);
    registry.start();
    assert.equal(registry.mayBeLive('other'), true, 'just started: it may not have heard from every node yet');
    registry.onControl(JSON.stringify({ t: 'hb', node: 'other', seq: 0, stats: host.stats() }));
    assert.equal(registry.mayBeLive('other'), true);
    void registry.stop();
  });
});
