import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { MAX_CLOSE_REASON_BYTES } from '@herald/protocol';
import { HeraldError } from '../../src/errors.js';
import { encodeTextFrame } from '../../src/hub/frame.js';
import type { Publication } from '../../src/broker/broker.js';
import { FakeSessionHost, RecordingHandler, fakeSession } from '../helpers/fake-session.js';

const frame = (text: string): Buffer => Buffer.from(text);

/** A promise a test settles by hand (a command that answers later). */
function later(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets settled promises run their callbacks. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Session: states and the inbox', () => {
  it('starts connecting: frames wait in the inbox and are handled, in order, once it opens', () => {
    const handler = new RecordingHandler();
    const { session } = fakeSession({ handler, open: false });
    assert.equal(session.state, 'connecting');
    session.receive(frame('a'), false);
    session.receive(frame('b'), false);
    assert.deepEqual(handler.frames, []);
    assert.equal(session.framesIn, 2, 'counted as they arrive');
    session.open();
    assert.equal(session.state, 'open');
    assert.deepEqual(handler.frames, ['a', 'b']);
    session.receive(frame('c'), false);
    assert.deepEqual(handler.frames, ['a', 'b', 'c'], 'then handled as they arrive');
  });

  it('open() is a no-op unless connecting', () => {
    const handler = new RecordingHandler();
    const { session } = fakeSession({ handler });
    session.close(1000, 'bye');
    session.open();
    assert.equal(session.state, 'closing');
  });

  it('writes nothing before it is open', () => {
    const { session, host, transport } = fakeSession({ open: false });
    assert.equal(session.write(encodeTextFrame('early')), false);
    host.flush();
    assert.deepEqual(transport.writes, []);
    assert.equal(session.framesOut, 0);
  });

  it('a command that answers later holds the next frames until it settles', async () => {
    const handler = new RecordingHandler();
    const pending = later();
    handler.reply = (text) => (text === 'slow' ? pending.promise : undefined);
    const { session } = fakeSession({ handler });
    session.receive(frame('slow'), false);
    session.receive(frame('x'), false);
    session.receive(frame('y'), false);
    assert.deepEqual(handler.frames, ['slow']);
    pending.resolve();
    await settle();
    assert.deepEqual(handler.frames, ['slow', 'x', 'y']);
    session.receive(frame('z'), false);
    assert.deepEqual(handler.frames, ['slow', 'x', 'y', 'z'], 'handled at once again');
  });

  it('a later command inside the drained inbox holds the rest again', async () => {
    const handler = new RecordingHandler();
    const first = later();
    const second = later();
    handler.reply = (text) => (text === '1' ? first.promise : text === '2' ? second.promise : undefined);
    const { session } = fakeSession({ handler });
    for (const text of ['1', '2', '3']) session.receive(frame(text), false);
    first.resolve();
    await settle();
    assert.deepEqual(handler.frames, ['1', '2'], '3 waits for 2');
    second.resolve();
    await settle();
    assert.deepEqual(handler.frames, ['1', '2', '3']);
  });

  it('a handler that throws or rejects is reported, and the next frames are still handled', async () => {
    const handler = new RecordingHandler();
    const failing = later();
    handler.reply = (text) => {
      if (text === 'throw') throw new Error('bug');
      if (text === 'reject') return failing.promise;
    };
    const { session, host } = fakeSession({ handler });
    session.receive(frame('throw'), false);
    session.receive(frame('reject'), false);
    session.receive(frame('after'), false);
    assert.equal(host.handlerErrors.length, 1);
    assert.equal((host.handlerErrors[0]!.err as Error).message, 'bug');
    failing.reject(new Error('async bug'));
    await settle();
    assert.deepEqual(host.handlerErrors.map(({ err }) => (err as Error).message), ['bug', 'async bug']);
    assert.deepEqual(handler.frames, ['throw', 'reject', 'after']);
  });

  it('a handler that throws on a frame from the inbox does not stop the drain', () => {
    const handler = new RecordingHandler();
    handler.reply = (text) => {
      if (text === 'bad') throw new Error('bug');
    };
    const { session, host } = fakeSession({ handler, open: false });
    for (const text of ['a', 'bad', 'b']) session.receive(frame(text), false);
    session.open();
    assert.deepEqual(handler.frames, ['a', 'bad', 'b']);
    assert.equal(host.handlerErrors.length, 1);
  });

  it('every frame goes through the policy gate; a refused one goes to handler.refuse, not onFrame', () => {
    const handler = new RecordingHandler();
    const host = new FakeSessionHost();
    host.admit = () => (host.admitted === 2 ? new HeraldError('rate_limited', 'slow down') : null);
    const { session } = fakeSession({ handler, host });
    session.receive(frame('one'), false);
    session.receive(frame('two'), true);
    session.receive(frame('three'), false);
    assert.deepEqual(handler.frames, ['one', 'three']);
    assert.deepEqual(handler.refusals, [{ code: 'rate_limited', frame: 'two', isBinary: true }]);
    assert.equal(host.admitted, 3);
  });

  it('pauses the transport when 64 frames wait, once, and resumes it when the inbox is drained', async () => {
    const handler = new RecordingHandler();
    const pending = later();
    handler.reply = (text) => (text === 'slow' ? pending.promise : undefined);
    const { session, transport } = fakeSession({ handler });
    session.receive(frame('slow'), false);
    for (let i = 0; i < 63; i++) session.receive(frame(`f${i}`), false);
    assert.equal(transport.pauses, 0, '63 waiting');
    session.receive(frame('f63'), false);
    assert.equal(transport.pauses, 1, '64 waiting');
    for (let i = 64; i < 100; i++) session.receive(frame(`f${i}`), false);
    assert.equal(transport.pauses, 1, 'paused once');
    assert.equal(transport.resumes, 0);
    pending.resolve();
    await settle();
    assert.equal(handler.frames.length, 101);
    assert.equal(handler.frames.at(-1), 'f99');
    assert.equal(transport.resumes, 1);
    assert.deepEqual(transport.ops(), ['pause', 'resume']);
  });

  it('also pauses while connecting, and resumes once open and drained', () => {
    const handler = new RecordingHandler();
    const { session, transport } = fakeSession({ handler, open: false });
    for (let i = 0; i < 64; i++) session.receive(frame(`f${i}`), false);
    assert.equal(transport.pauses, 1);
    session.open();
    assert.equal(handler.frames.length, 64);
    assert.equal(transport.resumes, 1);
  });

  it('frames that arrive after close are counted but never handled, nor those still waiting', async () => {
    const handler = new RecordingHandler();
    const pending = later();
    handler.reply = (text) => (text === 'slow' ? pending.promise : undefined);
    const { session } = fakeSession({ handler });
    session.receive(frame('slow'), false);
    session.receive(frame('waiting'), false);
    session.close(1000, 'bye');
    session.receive(frame('late'), false);
    pending.resolve();
    await settle();
    assert.deepEqual(handler.frames, ['slow']);
    assert.equal(session.framesIn, 3);
  });

  it('receive and alive are signs of life', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000 });
    try {
      const { session } = fakeSession();
      assert.equal(session.liveness.lastSeen, 1_000);
      mock.timers.tick(500);
      session.receive(frame('x'), false);
      assert.equal(session.liveness.lastSeen, 1_500);
      mock.timers.tick(500);
      session.alive();
      assert.equal(session.liveness.lastSeen, 2_000);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('Session: writing', () => {
  it('writes go through the bounded writer: counted, coalesced, flushed by the host flusher', () => {
    const { session, host, transport } = fakeSession();
    assert.equal(session.write(encodeTextFrame('a')), true);
    assert.equal(session.write(encodeTextFrame('b')), true);
    assert.equal(session.framesOut, 2);
    assert.equal(session.queuedBytes, 6);
    host.flush();
    assert.equal(transport.writes.length, 1);
    assert.deepEqual(transport.texts(), ['a', 'b']);
  });

  it('over maxQueueBytes the write is refused and the host is told the queued total', () => {
    const host = new FakeSessionHost(100);
    const { session, transport } = fakeSession({ host });
    transport.queuedBytes = 95;
    assert.equal(session.write(Buffer.alloc(6)), false);
    assert.equal(host.slowConsumers.length, 1);
    assert.equal(host.slowConsumers[0]!.session, session);
    assert.equal(host.slowConsumers[0]!.queuedBytes, 101);
    assert.equal(session.write(Buffer.alloc(5)), true);
  });
});

describe('Session: closing', () => {
  afterEach(() => mock.timers.reset());

  it('close sends what is queued first, then the close, and records the code and reason', () => {
    const { session, transport } = fakeSession();
    session.write(encodeTextFrame('last words'));
    session.close(4000, 'going');
    assert.equal(session.state, 'closing');
    assert.deepEqual(transport.ops(), ['write', 'close']);
    assert.deepEqual(transport.texts(), ['last words']);
    assert.deepEqual(transport.closed, { code: 4000, reason: 'going' });
    assert.deepEqual([session.closeCode, session.closeReason], [4000, 'going']);
    assert.equal(session.write(encodeTextFrame('more')), false, 'nothing is written after close');
  });

  it('cuts the close reason to what a close frame can carry', () => {
    const { session, transport } = fakeSession();
    const long = 'é'.repeat(200);
    session.close(1008, long);
    assert.ok(Buffer.byteLength(transport.closed!.reason) <= MAX_CLOSE_REASON_BYTES);
    assert.ok(transport.closed!.reason.endsWith('...'));
    assert.equal(session.closeReason, long, 'the session keeps the whole reason (for logs and the disconnect event)');
  });

  it('a server close answers what the peer sent first: the frames waiting behind a command are refused, an owed publish is awaited, then the close frame', async () => {
    const handler = new RecordingHandler();
    const { session, transport } = fakeSession({ handler });
    const broker = later();
    handler.reply = (text) => {
      const answered = broker.promise.then(() => void session.sendText(`answer ${text}`));
      session.owe(answered);
      return answered;
    };
    for (const text of ['a', 'b', 'c']) session.receive(frame(text), false);
    session.close(1001, 'bye');
    assert.deepEqual(handler.frames, ['a'], 'the waiting frames are not run');
    assert.deepEqual(handler.refusals.map((r) => [r.frame, r.code]), [['b', 'unavailable'], ['c', 'unavailable']]);
    session.receive(frame('d'), false);
    assert.equal(handler.refusals.at(-1)!.frame, 'd', 'a frame arriving before the close frame is refused too');
    assert.equal(transport.closed, undefined, 'no close frame while a publish is owed its answer');
    broker.resolve();
    await settle();
    assert.deepEqual(transport.texts(), ['answer a']);
    assert.deepEqual(transport.closed, { code: 1001, reason: 'bye' });
    session.receive(frame('e'), false);
    assert.deepEqual([handler.frames, handler.refusals.length], [['a'], 3], 'after the close frame: neither run nor answered');
  });

  it('an owed answer that never comes holds the close frame back at most closeTimeout', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const host = new FakeSessionHost(1024, 3000);
    const { session, transport } = fakeSession({ host });
    session.owe(new Promise(() => undefined));
    session.close(1001, 'bye');
    mock.timers.tick(2999);
    assert.equal(transport.closed, undefined);
    mock.timers.tick(1);
    assert.deepEqual(transport.closed, { code: 1001, reason: 'bye' });
    mock.timers.tick(3000);
    assert.equal(transport.terminations, 1, 'then the handshake has closeTimeout as before');
  });

  it('a connection closed before it opened drops its waiting frames unanswered (it ran nothing)', () => {
    const handler = new RecordingHandler();
    const { session, transport } = fakeSession({ handler, open: false });
    session.receive(frame('a'), false);
    session.close(4401, 'unauthorized');
    assert.deepEqual([handler.frames, handler.refusals], [[], []]);
    assert.deepEqual(transport.ops(), ['close']);
  });

  it('a second close changes nothing', () => {
    const { session, transport } = fakeSession();
    session.close(4000, 'first');
    session.close(1000, 'second');
    assert.deepEqual([session.closeCode, session.closeReason], [4000, 'first']);
    assert.deepEqual(transport.ops(), ['close']);
  });

  it('closing a paused connection resumes reading, so that the peer\'s close frame can be read (nothing waits in the inbox any more)', () => {
    const handler = new RecordingHandler();
    handler.reply = () => new Promise<void>(() => undefined);
    const { session, transport } = fakeSession({ handler });
    for (let i = 0; i <= 64; i++) session.receive(frame(`f${i}`), false);
    assert.equal(transport.pauses, 1);
    session.close(1001, 'going away');
    assert.equal(transport.resumes, 1);
    assert.deepEqual(transport.ops(), ['pause', 'close', 'resume']);
    session.receive(frame('after'), false);
    assert.deepEqual(handler.frames, ['f0'], 'what it reads now is not handled');
  });

  it('a peer that never completes the close handshake is cut after closeTimeout', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const host = new FakeSessionHost(1024, 3000);
    const { session, transport } = fakeSession({ host });
    session.close(1001, 'bye');
    mock.timers.tick(2999);
    assert.equal(transport.terminations, 0);
    mock.timers.tick(1);
    assert.equal(transport.terminations, 1);
  });

  it('a close completed in time is not cut', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const host = new FakeSessionHost(1024, 3000);
    const { session, transport } = fakeSession({ host });
    session.close(1001, 'bye');
    transport.closeEvent(1001, 'bye');
    mock.timers.tick(5000);
    assert.equal(transport.terminations, 0);
  });

  it('transportClosed after a server close reports the server code, by the server', async () => {
    const { session, transport, host } = fakeSession();
    session.close(4403, 'forbidden topic');
    transport.closeEvent(1006, '');
    assert.equal(session.state, 'closed');
    assert.deepEqual(host.closes.map(({ code, reason, by }) => [code, reason, by]), [[4403, 'forbidden topic', 'server']]);
    await session.whenClosed();
  });

  it('transportClosed without a server close reports the peer code, by the client', () => {
    const { session, transport, host } = fakeSession();
    transport.closeEvent(1001, 'tab closed');
    assert.deepEqual(host.closes.map(({ code, reason, by }) => [code, reason, by]), [[1001, 'tab closed', 'client']]);
    assert.equal(host.closes[0]!.session, session);
    assert.equal(session.closeCode, undefined);
  });

  it('transportFailed sets the code to report (the transport closed for a protocol error), unless the server closed first', () => {
    const failed = fakeSession();
    failed.session.transportFailed(1009, 'frame too big');
    failed.transport.closeEvent(1006, '');
    assert.deepEqual(failed.host.closes.map(({ code, reason }) => [code, reason]), [[1009, 'frame too big']]);

    const closedFirst = fakeSession();
    closedFirst.session.close(4000, 'server first');
    closedFirst.session.transportFailed(1002, 'protocol error');
    closedFirst.transport.closeEvent(1006, '');
    assert.deepEqual(closedFirst.host.closes.map(({ code, reason }) => [code, reason]), [[4000, 'server first']]);
  });

  it('whenClosed resolves once the transport is gone, and at once after', async () => {
    const { session, transport } = fakeSession();
    let resolved = false;
    const waiting = session.whenClosed().then(() => (resolved = true));
    session.close(1000, 'bye');
    await settle();
    assert.equal(resolved, false, 'closing is not closed');
    transport.closeEvent(1000, 'bye');
    await waiting;
    assert.equal(resolved, true);
    await session.whenClosed();
  });

  it('frames gathered in the turn the transport closed are dropped, not written', () => {
    const { session, transport, host } = fakeSession();
    session.write(encodeTextFrame('too late'));
    transport.closeEvent(1006, '');
    host.flush();
    assert.deepEqual(transport.calls, []);
  });

  it('terminate cuts at once with its code; after a close it keeps the close code', () => {
    const cut = fakeSession();
    cut.session.write(encodeTextFrame('queued'));
    cut.session.terminate(1006, 'heartbeat timeout');
    assert.equal(cut.session.state, 'closing');
    assert.deepEqual([cut.session.closeCode, cut.session.closeReason], [1006, 'heartbeat timeout']);
    assert.deepEqual(cut.transport.ops(), ['terminate'], 'no close handshake');

    const closing = fakeSession();
    closing.session.close(4000, 'bye');
    closing.session.terminate(1006, 'cut');
    assert.deepEqual([closing.session.closeCode, closing.session.closeReason], [4000, 'bye']);
    assert.deepEqual(closing.transport.ops(), ['close', 'terminate']);
  });

  it('terminate after the transport closed does nothing', () => {
    const { session, transport } = fakeSession();
    transport.closeEvent(1000);
    session.terminate(1006, 'late');
    assert.deepEqual(transport.ops(), []);
    assert.equal(session.state, 'closed');
  });
});

describe('Session: identity', () => {
  afterEach(() => mock.timers.reset());

  it('starts anonymous: no grants, no info, no raw push, no expiry', () => {
    const { session } = fakeSession();
    assert.deepEqual(session.identity, { grants: { topics: [], publish: [] }, info: undefined, rawPush: false, expiresAt: undefined });
    assert.ok(Object.isFrozen(session.identity));
  });

  it('setIdentity replaces the identity as a whole', () => {
    const { session } = fakeSession();
    session.setIdentity({ grants: { topics: ['private:a'], publish: ['p'] }, info: { name: 'Ann' }, rawPush: true, expiresAt: 123 });
    assert.deepEqual(session.grants, { topics: ['private:a'], publish: ['p'] });
    assert.deepEqual(session.info, { name: 'Ann' });
    assert.equal(session.identity.rawPush, true);
    const other = fakeSession().session;
    assert.equal(other.identity.rawPush, false, 'sessions do not share an identity');
  });

  it('one identity timer: a new one replaces the old, and closing clears it', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { session, transport } = fakeSession();
    const fired: string[] = [];
    const fire = (name: string) => () => fired.push(name);
    session.setIdentityTimer(setTimeout(fire('first'), 100));
    session.setIdentityTimer(setTimeout(fire('second'), 200));
    mock.timers.tick(150);
    assert.deepEqual(fired, [], 'the first was cleared');
    mock.timers.tick(100);
    assert.deepEqual(fired, ['second']);
    session.setIdentityTimer(setTimeout(fire('third'), 100));
    transport.closeEvent(1000);
    mock.timers.tick(1000);
    assert.deepEqual(fired, ['second'], 'cleared when the connection closed');
  });
});

describe('Session: recovery holds', () => {
  const publication = (topic: string, offset: number): Publication => ({ topic, payload: `${offset}`, offset, epoch: 'e' });

  it('holds nothing unless a hold is on for the topic', () => {
    const { session } = fakeSession();
    assert.equal(session.hold(publication('a', 1)), false);
    const held = session.holdLive('a');
    assert.equal(session.hold(publication('b', 1)), false, 'another topic is written');
    assert.equal(session.hold(publication('a', 1)), true);
    assert.equal(session.hold(publication('a', 2)), true);
    assert.deepEqual(held.map((p) => p.offset), [1, 2]);
  });

  it('releaseLive ends the hold; the next publication is written', () => {
    const { session } = fakeSession();
    const held = session.holdLive('a');
    session.releaseLive('a', held);
    assert.equal(session.hold(publication('a', 3)), false);
    assert.deepEqual(held, []);
  });

  it('releasing a stale hold keeps the newer one on the same topic', () => {
    const { session } = fakeSession();
    const first = session.holdLive('a');
    const second = session.holdLive('a');
    session.releaseLive('a', first);
    assert.equal(session.hold(publication('a', 1)), true, 'the second hold still holds');
    assert.deepEqual(second.map((p) => p.offset), [1]);
    assert.deepEqual(first, []);
    session.releaseLive('a', second);
    assert.equal(session.hold(publication('a', 2)), false);
  });

  it('holds on two topics are independent', () => {
    const { session } = fakeSession();
    const a = session.holdLive('a');
    const b = session.holdLive('b');
    session.releaseLive('a', a);
    assert.equal(session.hold(publication('a', 1)), false);
    assert.equal(session.hold(publication('b', 1)), true);
    assert.equal(b.length, 1);
  });
});
