import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ClosedError, DisconnectedError, HeraldClient, RequestError, TimeoutError, fullJitter, type ClientOptions, type ClientState } from '../src/index.js';
import { FakeSocket } from './fake-socket.js';

const clients: HeraldClient[] = [];
/** A WebSocket-only client: these tests are about the connection itself (fallbacks: transports.test.ts). */
function client(options: Partial<ClientOptions> = {}): HeraldClient {
  const made = new HeraldClient({ url: 'ws://herald.test/ws', WebSocket: FakeSocket, transports: ['websocket'], random: () => 0, minReconnectDelay: 10, ...options });
  clients.push(made);
  return made;
}
afterEach(() => {
  for (const made of clients.splice(0)) made.close();
  FakeSocket.instances = [];
});

function next<T>(emitter: HeraldClient, name: Parameters<HeraldClient['once']>[0]): Promise<T> {
  return new Promise((resolve) => emitter.once(name, resolve as never));
}

/** Opens the latest socket and answers nothing else: a client without a token is connected at once. */
async function connected(made: HeraldClient): Promise<FakeSocket> {
  const done = next(made, 'connected');
  FakeSocket.latest().open();
  await done;
  return FakeSocket.latest();
}

describe('full-jitter backoff', () => {
  it('stays within [0, min(max, min * 2^attempt)) over many draws, and spreads over the whole window', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(20_000, 500 * 2 ** attempt);
      let sum = 0;
      let high = 0;
      const draws = 5000;
      for (let i = 0; i < draws; i++) {
        const delay = fullJitter(attempt, 500, 20_000);
        assert.ok(delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay} outside [0, ${ceiling})`);
        sum += delay;
        high = Math.max(high, delay);
      }
      const mean = sum / draws;
      assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.05, `attempt ${attempt}: mean ${mean} is not near ${ceiling / 2}`);
      assert.ok(high > ceiling * 0.95, `attempt ${attempt}: the top of the window is never drawn (${high})`);
    }
    assert.equal(fullJitter(1000, 500, 20_000, () => 0.999999), 19_999, 'a huge attempt count stays capped by max');
  });
});

describe('connection state machine', () => {
  it('goes disconnected → connecting → connected → disconnected → connecting → connected, and closed on close()', async () => {
    const made = client();
    const states: ClientState[] = [];
    made.on('state', ({ to }) => states.push(to));
    assert.equal(made.state, 'disconnected');
    made.connect();
    assert.equal(made.state, 'connecting');
    assert.deepEqual(FakeSocket.latest().protocols, 'json');
    const first = await connected(made);
    const lost = next<{ code: number; delay: number; attempt: number }>(made, 'disconnected');
    first.serverClose(1006);
    assert.deepEqual(await lost, { code: 1006, reason: '', delay: 0, attempt: 0 });
    const reconnected = next<{ reconnected: boolean }>(made, 'connected');
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    assert.notEqual(FakeSocket.latest(), first, 'a new socket');
    FakeSocket.latest().open();
    assert.equal((await reconnected).reconnected, true);
    made.close();
    assert.deepEqual(states, ['connecting', 'connected', 'disconnected', 'connecting', 'connected', 'closed']);
    assert.deepEqual(FakeSocket.latest().closedWith, { code: 1000, reason: 'client closed' });
  });

  it('stops on a close code that forbids reconnecting, and reconnects on the others', async () => {
    for (const [code, reconnects] of [[4501, false], [4503, false], [4504, false], [1000, false], [1008, false], [1001, true], [1013, true], [4001, true], [4029, true]] as const) {
      const made = client();
      made.connect();
      const socket = await connected(made);
      const after = new Promise<string>((resolve) => {
        made.once('closed', () => resolve('closed'));
        made.once('disconnected', () => resolve('disconnected'));
      });
      socket.serverClose(code, 'bye');
      assert.equal(await after, reconnects ? 'disconnected' : 'closed', `close code ${code}`);
      made.close();
    }
  });

  it('grows the reconnect window with each failed attempt and resets it once connected', async () => {
    const ceilings: number[] = [];
    const made = client({ random: () => 0.999, minReconnectDelay: 1, maxReconnectDelay: 8 });
    made.on('disconnected', ({ delay }) => ceilings.push(delay));
    made.connect();
    for (let i = 0; i < 5; i++) {
      const connecting = new Promise<void>((resolve) => made.once('connecting', () => resolve()));
      FakeSocket.latest().serverClose(1006);
      await connecting;
    }
    assert.deepEqual(ceilings, [0, 1, 3, 7, 7], 'floor(0.999 * min(8, 1 * 2^attempt))');
    await connected(made);
    const lost = next<{ attempt: number }>(made, 'disconnected');
    FakeSocket.latest().serverClose(1006);
    assert.equal((await lost).attempt, 0);
  });

  it('ignores every callback of a socket it has replaced', async () => {
    const made = client();
    made.connect();
    const old = await connected(made);
    const subscription = made.subscribe('news');
    const messages: unknown[] = [];
    subscription.on('message', ({ message }) => messages.push(message));
    const connecting = new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    old.serverClose(1006);
    await connecting;
    const fresh = FakeSocket.latest();
    // The old socket keeps talking (a late close, a late frame): nothing changes.
    old.receive({ action: 'publish', topic: 'news', message: 'stale' });
    old.serverClose(1006);
    old.open();
    assert.equal(made.state, 'connecting');
    await connected(made);
    fresh.receive({ action: 'publish', topic: 'news', message: 'fresh' });
    assert.deepEqual(messages, ['fresh']);
    assert.equal(made.state, 'connected');
  });
});

describe('requests', () => {
  it('settle on their reply: results, server errors with their code, timeouts, lost connections, close', async () => {
    const made = client({ requestTimeout: 50 });
    made.connect();
    // Sent before the connection: waits for it.
    const early = made.publish('news', 1);
    const socket = await connected(made);
    const frame = socket.sent[0]!;
    assert.deepEqual({ ...frame, id: 0 }, { id: 0, action: 'publish', topic: 'news', message: 1 });
    socket.receive({ id: frame.id, action: 'publish', ok: true, offset: 7, epoch: 'e1' });
    assert.deepEqual(await early, { offset: 7, epoch: 'e1' });

    const refused = made.publish('private:x', 1);
    const sent = socket.sent.at(-1)!;
    socket.receive({ id: sent.id, action: 'publish', ok: false, error: { code: 'forbidden', message: 'no grant' } });
    await assert.rejects(refused, (err: unknown) => err instanceof RequestError && err.code === 'forbidden' && err.action === 'publish' && err.message === 'no grant');

    await assert.rejects(made.request('slow'), (err: unknown) => err instanceof TimeoutError && err.code === 'timeout');
    // A late reply to a timed-out request is ignored.
    socket.receive({ id: socket.sent[socket.sent.length - 1]!.id, action: 'slow', ok: true });

    const lost = made.request('custom', { x: 1 });
    socket.serverClose(1006);
    await assert.rejects(lost, DisconnectedError);

    const closing = made.request('queued-while-disconnected');
    made.close();
    await assert.rejects(closing, ClosedError);
    await assert.rejects(made.publish('news', 2), ClosedError);
  });
});

describe('heartbeat watchdog', () => {
  it('pings after a silence and reconnects when the ping goes unanswered', async () => {
    const made = client({ pingInterval: 30, pingTimeout: 30 });
    made.connect();
    const socket = await connected(made);
    const ping = await socket.nextSent();
    assert.equal(ping.action, 'ping');
    const lost = next<{ code: number; reason: string }>(made, 'disconnected');
    assert.equal((await lost).reason, 'heartbeat timeout');
    assert.equal(socket.closedWith?.code, 4000, 'the dead socket is closed, not waited for');
  });

  it('keeps a connection that answers', async () => {
    const made = client({ pingInterval: 20, pingTimeout: 40 });
    made.connect();
    const socket = await connected(made);
    let disconnected = false;
    made.on('disconnected', () => (disconnected = true));
    for (let i = 0; i < 3; i++) {
      const ping = await socket.nextSent();
      socket.receive({ id: ping.id, action: 'ping', ok: true });
    }
    assert.equal(disconnected, false);
    assert.equal(made.state, 'connected');
  });

  it("answers the server's app-level ping with pong", async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    socket.receive({ action: 'ping' });
    assert.deepEqual(socket.sent.at(-1), { action: 'pong' });
  });
});

describe('subscriptions', () => {
  it('resubscribe after a reconnect from the last position, drop duplicates, and report a failed recovery', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    const subscription = made.subscribe('room');
    const command = socket.sent.at(-1)!;
    assert.deepEqual({ ...command, id: 0 }, { id: 0, action: 'subscribe', topic: 'room' });
    socket.receive({ id: command.id, action: 'subscribe', ok: true, offset: 4, epoch: 'e1' });
    assert.deepEqual(await subscription.ready, { topic: 'room', resubscribed: false, position: { offset: 4, epoch: 'e1' } });
    const seen: unknown[] = [];
    subscription.on('message', ({ message, context }) => seen.push([message, context.offset]));
    socket.receive({ action: 'publish', topic: 'room', message: 'a', offset: 5, epoch: 'e1' });
    socket.receive({ action: 'publish', topic: 'room', message: 'a again', offset: 5, epoch: 'e1' });
    assert.deepEqual(seen, [['a', 5]]);

    socket.serverClose(1012);
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    const second = FakeSocket.latest();
    second.open();
    const resubscribe = await second.nextSent();
    assert.deepEqual(resubscribe.since, { offset: 5, epoch: 'e1' }, 'asks for what came after the last message');
    const failed = new Promise((resolve) => subscription.once('recoveryFailed', resolve));
    second.receive({ id: resubscribe.id, action: 'subscribe', ok: true, recovered: false, reason: 'epoch_changed', offset: 2, epoch: 'e2' });
    assert.deepEqual(await failed, { topic: 'room', reason: 'epoch_changed' });
    // The new epoch starts over: offset 3 of e2 is new, not a duplicate.
    second.receive({ action: 'publish', topic: 'room', message: 'b', offset: 3, epoch: 'e2' });
    assert.deepEqual(seen.at(-1), ['b', 3]);
  });

  it('delivers the recovered publications that follow a recovered reply, even in the same turn', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    const subscription = made.subscribe('room', { since: { offset: 10, epoch: 'e' } });
    const command = socket.sent.at(-1)!;
    assert.deepEqual(command.since, { offset: 10, epoch: 'e' });
    const seen: number[] = [];
    subscription.on('message', ({ context }) => seen.push(context.offset!));
    socket.receive([
      { id: command.id, action: 'subscribe', ok: true, recovered: true, offset: 12, epoch: 'e' },
      { action: 'publish', topic: 'room', message: 11, offset: 11, epoch: 'e' },
      { action: 'publish', topic: 'room', message: 12, offset: 12, epoch: 'e' },
    ]);
    assert.deepEqual(seen, [11, 12]);
    assert.deepEqual(subscription.position, { offset: 12, epoch: 'e' });
  });

  it('keeps its position until the publications a recovery replays arrive: from {0, ""} too, a connection lost before them recovers them again', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    // Subscribed before anything was published: the topic's position reads {0, ""}.
    const subscription = made.subscribe('room');
    const first = socket.sent.at(-1)!;
    socket.receive({ id: first.id, action: 'subscribe', ok: true, offset: 0, epoch: '' });
    await subscription.ready;
    const seen: number[] = [];
    subscription.on('message', ({ context }) => seen.push(context.offset!));
    socket.serverClose(1012);
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    const second = FakeSocket.latest();
    second.open();
    const recover = await second.nextSent();
    assert.deepEqual(recover.since, { offset: 0, epoch: '' });
    // Three publications of epoch e were made meanwhile: the reply says they follow, and the connection drops before them.
    second.receive({ id: recover.id, action: 'subscribe', ok: true, recovered: true, offset: 3, epoch: 'e' });
    assert.deepEqual(subscription.position, { offset: 0, epoch: '' }, 'nothing was handed over yet');
    second.serverClose(1012);
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    const third = FakeSocket.latest();
    third.open();
    const again = await third.nextSent();
    assert.deepEqual(again.since, { offset: 0, epoch: '' }, 'asks again for everything');
    third.receive([
      { id: again.id, action: 'subscribe', ok: true, recovered: true, offset: 3, epoch: 'e' },
      ...[1, 2, 3].map((offset) => ({ action: 'publish', topic: 'room', message: offset, offset, epoch: 'e' })),
    ]);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(subscription.position, { offset: 3, epoch: 'e' });
  });

  it('reports a refused subscription through ready and error, and forgets it', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    const subscription = made.subscribe('private:x');
    const errors: string[] = [];
    subscription.on('error', ({ error }) => errors.push(error.code));
    const command = socket.sent.at(-1)!;
    socket.receive({ id: command.id, action: 'subscribe', ok: false, error: { code: 'forbidden', message: 'no' } });
    await assert.rejects(subscription.ready, RequestError);
    assert.deepEqual(errors, ['forbidden']);
    assert.equal(made.subscription('private:x'), undefined);
    assert.equal(subscription.state, 'unsubscribed');
  });

  it('unsubscribe stops delivery at once and is not restored on reconnect', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    const subscription = made.subscribe('a');
    made.subscribe('b');
    const seen: unknown[] = [];
    subscription.on('message', ({ message }) => seen.push(message));
    const done = subscription.unsubscribe();
    const command = socket.sent.at(-1)!;
    assert.deepEqual({ ...command, id: 0 }, { id: 0, action: 'unsubscribe', topic: 'a' });
    socket.receive({ action: 'publish', topic: 'a', message: 'late' });
    socket.receive({ id: command.id, action: 'unsubscribe', ok: true });
    await done;
    assert.deepEqual(seen, []);
    socket.serverClose(1006);
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    FakeSocket.latest().open();
    const resubscribed = await FakeSocket.latest().nextSent();
    assert.equal(resubscribed.topic, 'b');
    assert.equal(FakeSocket.latest().sent.filter((frame) => frame.topic === 'a').length, 0);
  });
});

describe('server-side subscriptions', () => {
  it('a subscribed frame makes a subscription of the server\'s, told once; the client does not resubscribe it, the server confirms it again; an unsubscribed frame ends it', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    const announced = next<{ topic: string; subscription: { topic: string; server: boolean } }>(made, 'serverSubscribed');
    socket.receive({ action: 'subscribed', topic: 'news', offset: 3, epoch: 'e' });
    const { topic, subscription } = await announced;
    assert.equal(topic, 'news');
    assert.equal(subscription.server, true);
    assert.equal(made.subscription('news'), subscription);
    const seen: unknown[] = [];
    const confirmations: unknown[] = [];
    const sub = made.subscription('news')!;
    sub.on('message', ({ message }) => seen.push(message));
    sub.on('subscribed', (event) => confirmations.push(event));
    socket.receive({ action: 'publish', topic: 'news', message: 'hello', offset: 4, epoch: 'e' });
    assert.deepEqual(seen, ['hello']);

    // A new connection: nothing is sent for it; the server's own subscribed frame confirms the same subscription.
    let told = 0;
    made.on('serverSubscribed', () => told++);
    socket.serverClose(1012);
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    const second = FakeSocket.latest();
    const reconnected = next(made, 'connected');
    second.open();
    await reconnected;
    assert.deepEqual(second.sent, [], 'the client does not subscribe it itself');
    second.receive({ action: 'subscribed', topic: 'news', offset: 4, epoch: 'e' });
    assert.deepEqual(confirmations, [{ topic: 'news', resubscribed: true, position: { offset: 4, epoch: 'e' } }]);
    assert.equal(told, 0, 'not a new subscription');

    const ended = new Promise((resolve) => sub.once('unsubscribed', resolve));
    second.receive({ action: 'unsubscribed', topic: 'news', reason: 'kicked' });
    assert.deepEqual(await ended, { topic: 'news', reason: 'server', detail: 'kicked' });
    assert.equal(made.subscription('news'), undefined);
    second.receive({ action: 'publish', topic: 'news', message: 'late' });
    assert.deepEqual(seen, ['hello'], 'nothing after the end');
  });

  it('client.subscribe on a topic the server subscribed makes it the application\'s own; an unsubscribed frame ends an own one too', async () => {
    const made = client();
    made.connect();
    const socket = await connected(made);
    socket.receive({ action: 'subscribed', topic: 'a' });
    const own = made.subscribe('a');
    assert.equal(own.server, false);
    socket.serverClose(1012);
    await new Promise<void>((resolve) => made.once('connecting', () => resolve()));
    const second = FakeSocket.latest();
    second.open();
    assert.deepEqual((await second.nextSent()).topic, 'a', 'resubscribed by the client from now on');
    const ended = new Promise((resolve) => own.once('unsubscribed', resolve));
    second.receive({ action: 'unsubscribed', topic: 'a', reason: 'server' });
    assert.deepEqual(await ended, { topic: 'a', reason: 'server', detail: 'server' });
  });

  it('connectionId comes with the login reply and is cleared when the connection goes', async () => {
    const made = client({ token: 't' });
    made.connect();
    FakeSocket.latest().open();
    const login = await FakeSocket.latest().nextSent();
    const done = next(made, 'connected');
    FakeSocket.latest().receive({ id: login.id, action: 'login', ok: true, uid: 'ann', conn: 'n1-7' });
    await done;
    assert.equal(made.connectionId, 'n1-7');
    FakeSocket.latest().serverClose(1012);
    assert.equal(made.connectionId, undefined);
  });
});

describe('tokens', () => {
  it('logs in before anything else on each connection and refreshes the token before it expires', async () => {
    let issued = 0;
    const made = client({ getToken: () => `token-${++issued}`, tokenRefreshMargin: 30_000 });
    made.connect();
    FakeSocket.latest().open();
    const socket = FakeSocket.latest();
    made.publish('news', 1).catch(() => {});
    const login = await socket.nextSent();
    assert.deepEqual({ ...login, id: 0 }, { id: 0, action: 'login', token: 'token-1' });
    assert.equal(socket.sent.length, 1, 'nothing else is sent before the login reply');
    const connectedEvent = next<{ uid: string }>(made, 'connected');
    // Expires in 500 ms: refreshed a fifth of the lifetime before, at about 400 ms.
    socket.receive({ id: login.id, action: 'login', ok: true, uid: 'alice', expiresAt: Date.now() + 500 });
    assert.equal((await connectedEvent).uid, 'alice');
    assert.equal(socket.sent[1]!.action, 'publish', 'the queued publish follows the login');
    const refresh = await socket.sentMatching((frame, index) => index > 1 && frame.action === 'login');
    assert.deepEqual({ ...refresh, id: 0 }, { id: 0, action: 'login', token: 'token-2' });
  });

  it('fetches a fresh token at once when the server says the token expired', async () => {
    let issued = 0;
    const made = client({ getToken: () => `token-${++issued}` });
    made.connect();
    const socket = FakeSocket.latest();
    socket.open();
    const login = await socket.nextSent();
    socket.receive({ id: login.id, action: 'login', ok: true, uid: 'bob' });
    made.on('error', () => {});
    socket.receive({ action: 'error', error: { code: 'token_expired', message: 'token expired' } });
    const refresh = await socket.nextSent();
    assert.equal(refresh.token, 'token-2');
  });

  it('stops on a static token the server refuses', async () => {
    const made = client({ token: 'bad' });
    made.connect();
    const socket = FakeSocket.latest();
    socket.open();
    const login = await socket.nextSent();
    const closed = next<{ code: number; reason: string }>(made, 'closed');
    made.on('error', () => {});
    socket.receive({ id: login.id, action: 'login', ok: false, error: { code: 'unauthorized', message: 'invalid token: bad signature' } });
    assert.deepEqual(await closed, { code: 4501, reason: 'invalid token: bad signature' });
  });
});
