import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DisconnectedError, HeraldClient, ReceiveOnlyError, type ClientOptions, type ClientState, type TransportName } from '../src/index.js';
import { Arrivals, FakeEventSource, FakeHttp, MemoryStorage, type FakeStream } from './fake-http.js';
import { eventId, sseUrl } from '../src/sse.js';
import { FakeSocket } from './fake-socket.js';

const KEY = 'herald.transport ws://herald.test/ws';
let http: FakeHttp;
let memory: MemoryStorage;
const clients: HeraldClient[] = [];

function client(options: Partial<ClientOptions> = {}): HeraldClient {
  const made = new HeraldClient({
    url: 'ws://herald.test/ws',
    WebSocket: FakeSocket,
    fetch: http.fetch,
    EventSource: FakeEventSource,
    transportMemory: memory,
    random: () => 0,
    minReconnectDelay: 10,
    fallbackTimeout: 2000,
    ...options,
  });
  clients.push(made);
  return made;
}

beforeEach(() => {
  http = new FakeHttp();
  memory = new MemoryStorage();
  FakeEventSource.created = new Arrivals();
});
afterEach(() => {
  for (const made of clients.splice(0)) made.close();
  FakeSocket.instances = [];
});

function next<T>(emitter: HeraldClient, name: Parameters<HeraldClient['once']>[0]): Promise<T> {
  return new Promise((resolve) => emitter.once(name, resolve as never));
}

/** Records the client's transport changes and states. */
function watch(made: HeraldClient): { changes: string[]; states: ClientState[] } {
  const seen = { changes: [] as string[], states: [] as ClientState[] };
  made.on('transport', ({ from, to }) => seen.changes.push(`${from}→${to}`));
  made.on('state', ({ to }) => seen.states.push(to));
  return seen;
}

/** Connects a client without a token over HTTP streaming, the WebSocket upgrade having failed. */
async function overHttpStream(made: HeraldClient, session = 's1'): Promise<FakeStream> {
  const connected = next(made, 'connected');
  if (made.state !== 'connecting') made.connect();
  if (made.transport === 'websocket') FakeSocket.latest().serverClose(1006);
  const stream = await http.streams.next();
  stream.accept(session);
  await connected;
  return stream;
}

/** Answers the next command POST with 202 and returns its commands. */
async function commands(): Promise<Array<Record<string, unknown>>> {
  const send = await http.sends.next();
  send.answer(202);
  return send.body.commands;
}

describe('falling back from WebSocket', () => {
  it('goes to HTTP streaming when the upgrade fails: derived URLs, the token as Bearer, commands POSTed in order, one request at a time', async () => {
    const made = client({ token: 't1' });
    const seen = watch(made);
    assert.equal(made.transport, 'websocket');
    made.connect();
    FakeSocket.latest().serverClose(1006);
    const stream = await http.streams.next();
    assert.equal(stream.url, 'http://herald.test/stream');
    assert.equal(stream.headers.authorization, 'Bearer t1');
    assert.equal(made.transport, 'http-stream');
    assert.deepEqual(seen.changes, ['websocket→http-stream']);
    assert.equal(made.state, 'connecting', 'a fallback is part of the same attempt');

    stream.accept('session-1');
    const login = await http.sends.next();
    assert.equal(login.url, 'http://herald.test/stream/send');
    assert.equal(login.body.session, 'session-1');
    assert.deepEqual(login.body.commands.map(({ id: _id, ...command }) => command), [{ action: 'login', token: 't1' }]);
    login.answer(202);
    const connected = next<{ uid: string }>(made, 'connected');
    stream.line({ id: login.body.commands[0]!.id, action: 'login', ok: true, uid: 'alice' });
    assert.equal((await connected).uid, 'alice');
    // The login's request is over once its answer is read: what follows starts a new one.
    await new Promise((resolve) => setImmediate(resolve));

    const subscription = made.subscribe('room');
    const first = made.publish('room', 1);
    const second = made.publish('room', 2);
    const subscribePost = await http.sends.next();
    assert.deepEqual(subscribePost.body.commands.map((command) => command.action), ['subscribe']);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(http.sends.waiting, 0, 'the publishes wait for the answer to the POST before them');
    subscribePost.answer(202);
    const publishes = await commands();
    assert.deepEqual(publishes.map((command) => command.message), [1, 2], 'both, in order, in one request');
    stream.line({ id: subscribePost.body.commands[0]!.id, action: 'subscribe', ok: true });
    stream.line([
      { id: publishes[0]!.id, action: 'publish', ok: true },
      { id: publishes[1]!.id, action: 'publish', ok: true },
    ]);
    await subscription.ready;
    assert.deepEqual(await Promise.all([first, second]), [{}, {}]);
    const messages: unknown[] = [];
    subscription.on('message', ({ message }) => messages.push(message));
    // Frames as the network cuts them: a line over two chunks, CRLF, heartbeats between.
    stream.raw('{"action":"publish","topic":"room",').raw('"message":"a"}\r\n\n{"action":"publish","topic":"room","message":"b"}\n');
    await new Promise<void>((resolve) => subscription.on('message', () => messages.length === 2 && resolve()));
    assert.deepEqual(messages, ['a', 'b']);
    assert.deepEqual(seen.states, ['connecting', 'connected']);
  });

  it('goes to the next transport when the WebSocket does not open within fallbackTimeout, and ignores that socket afterwards', async () => {
    const made = client({ fallbackTimeout: 60 });
    const started = Date.now();
    made.connect();
    const socket = FakeSocket.latest();
    const stream = await http.streams.next();
    const waited = Date.now() - started;
    assert.ok(waited >= 55 && waited < 1000, `fell back after ${waited} ms`);
    assert.equal(socket.closedWith?.code, 4000, 'the socket still connecting is given up');
    socket.open();
    socket.serverClose(1006);
    assert.equal(made.state, 'connecting');
    assert.equal(made.transport, 'http-stream');
    stream.accept('s');
    await next(made, 'connected');
    assert.equal(made.transport, 'http-stream');
  });

  it('ends up on SSE for receive-only use: topics, token and positions in the URL; commands reject; subscribe and unsubscribe reopen the stream', async () => {
    const made = client({ token: 't' });
    const a = made.subscribe('a', { since: { offset: 3, epoch: 'e' } });
    const early = made.publish('a', 'queued before the connection');
    made.connect();
    FakeSocket.latest().serverClose(1006);
    (await http.streams.next()).refuse(404, { ok: false, error: { code: 'not_found', message: 'no such route' } });
    const source = await FakeEventSource.created.next();
    assert.equal(made.transport, 'sse');
    assert.equal(new URL(source.url).origin + new URL(source.url).pathname, 'http://herald.test/sse');
    assert.deepEqual(source.topics, ['a']);
    assert.equal(source.param('token'), 't');
    assert.equal(source.param('lastEventId'), '3.e');
    const connected = next(made, 'connected');
    source.open();
    await connected;
    assert.equal(made.uid, undefined, 'no login over SSE');

    await assert.rejects(early, (err: unknown) => err instanceof ReceiveOnlyError && err.code === 'receive_only' && err.action === 'publish');
    for (const refused of [made.publish('a', 1), made.history('a'), made.presence('a'), made.login('t2'), made.request('custom')]) {
      await assert.rejects(refused, ReceiveOnlyError);
    }

    const recovered = new Promise((resolve) => a.once('subscribed', resolve));
    source.event('subscribe', { action: 'subscribe', ok: true, topic: 'a', recovered: true, offset: 5, epoch: 'e' });
    assert.deepEqual(await recovered, { topic: 'a', resubscribed: false, recovered: true, position: { offset: 5, epoch: 'e' } });
    const seen: number[] = [];
    a.on('message', ({ context }) => seen.push(context.offset!));
    for (const offset of [4, 5]) source.message({ action: 'publish', topic: 'a', message: offset, offset, epoch: 'e' });
    assert.deepEqual(seen, [4, 5]);

    // A second topic: the stream reopens with both, `a` recovering from where it is.
    const b = made.subscribe('b');
    const reopened = await FakeEventSource.created.next();
    assert.equal(source.closed, true);
    assert.deepEqual(reopened.topics, ['a', 'b']);
    assert.equal(reopened.param('lastEventId'), 'a|5.e', 'one entry per topic with a position');
    assert.equal(reopened.param('filter.b'), null, 'no filter: no filter parameter');
    reopened.open();
    reopened.event('subscribe', { action: 'subscribe', ok: true, topic: 'a', recovered: true, offset: 5, epoch: 'e' });
    reopened.event('subscribe', { action: 'subscribe', ok: true, topic: 'b' });
    await b.ready;
    assert.equal(a.state, 'subscribed');
    reopened.message({ action: 'publish', topic: 'a', message: 5, offset: 5, epoch: 'e' });
    reopened.message({ action: 'publish', topic: 'a', message: 6, offset: 6, epoch: 'e' });
    assert.deepEqual(seen, [4, 5, 6], 'the repeated 5 is dropped');

    await a.unsubscribe();
    const third = await FakeEventSource.created.next();
    assert.equal(reopened.closed, true);
    assert.deepEqual(third.topics, ['b']);
    assert.equal(third.param('lastEventId'), null, 'b has no position yet');
  });

  it('reconnects an SSE stream the server closed with the code it gave, and recovers from the positions it has', async () => {
    const made = client({ transports: ['http-stream', 'sse'] });
    const feed = made.subscribe('feed');
    made.connect();
    (await http.streams.next()).fail();
    const source = await FakeEventSource.created.next();
    source.open();
    source.event('subscribe', { action: 'subscribe', ok: true, topic: 'feed', offset: 7, epoch: 'e' });
    source.message({ action: 'publish', topic: 'feed', message: 8, offset: 8, epoch: 'e' });
    const lost = next<{ code: number; reason: string }>(made, 'disconnected');
    source.event('close', { code: 1012, reason: 'restart' });
    assert.deepEqual(await lost, { code: 1012, reason: 'restart', delay: 0, attempt: 0 });
    const again = await FakeEventSource.created.next();
    assert.equal(made.transport, 'sse', 'a transport that opened is kept for reconnects');
    assert.equal(again.param('lastEventId'), '8.e');
    assert.equal(http.streams.waiting, 0);
    // The EventSource's own error (the stream broke): reconnect, never left to the EventSource's retries.
    again.open();
    const lostAgain = next<{ code: number }>(made, 'disconnected');
    again.fail();
    assert.equal((await lostAgain).code, 1006);
    assert.equal(again.closed, true);
    assert.equal(feed.state, 'pending');
  });
});

describe('HTTP streaming', () => {
  it('reconnects when a command POST gets 404 session_not_found; what was sent rejects with DisconnectedError', async () => {
    const made = client();
    const stream = await overHttpStream(made);
    const publish = made.publish('x', 1);
    const send = await http.sends.next();
    const lost = next<{ code: number; reason: string }>(made, 'disconnected');
    send.answer(404, { ok: false, error: { code: 'session_not_found', message: 'no node holds this session' } });
    const { code, reason } = await lost;
    assert.equal(code, 4000);
    assert.match(reason, /session_not_found/);
    await assert.rejects(publish, DisconnectedError);
    assert.equal(stream.aborted, true, 'the stream is let go');
    // Kept on HTTP streaming, with a new stream.
    const connecting = await next<{ transport: TransportName }>(made, 'connecting');
    assert.equal(connecting.transport, 'http-stream');
    (await http.streams.next()).accept('s2');
    await next(made, 'connected');
  });

  it("ends with the code of the server's close line: 1001 reconnects, 4501 before the session line stops", async () => {
    const made = client();
    const stream = await overHttpStream(made);
    const lost = next<{ code: number; reason: string }>(made, 'disconnected');
    stream.line({ action: 'close', code: 1001, reason: 'server shutting down: reconnect' });
    stream.end();
    assert.deepEqual(await lost, { code: 1001, reason: 'server shutting down: reconnect', delay: 0, attempt: 0 });
    // The identity refused as the stream opens: the close line comes first.
    const refused = await http.streams.next();
    const closed = next<{ code: number; reason: string }>(made, 'closed');
    refused.respond().line({ action: 'close', code: 4501, reason: 'invalid token: bad signature' });
    assert.deepEqual(await closed, { code: 4501, reason: 'invalid token: bad signature' });
  });

  it('asks getToken again when the Bearer token is refused', async () => {
    let issued = 0;
    const made = client({ transports: ['http-stream'], getToken: () => `token-${++issued}` });
    made.connect();
    const first = await http.streams.next();
    assert.equal(first.headers.authorization, 'Bearer token-1');
    const lost = next<{ code: number }>(made, 'disconnected');
    first.respond().line({ action: 'close', code: 4501, reason: 'token expired' });
    assert.equal((await lost).code, 4000);
    const second = await http.streams.next();
    assert.equal(second.headers.authorization, 'Bearer token-2');
    second.accept('s');
    const login = await http.sends.next();
    assert.equal(login.body.commands[0]!.token, 'token-2', 'the login uses the token the stream was opened with');
  });

  it('stops on a refused token (401, static token) without falling back to SSE', async () => {
    const made = client({ transports: ['http-stream', 'sse'], token: 'bad' });
    made.subscribe('a');
    made.connect();
    const closed = next<{ code: number; reason: string }>(made, 'closed');
    (await http.streams.next()).refuse(401, { ok: false, error: { code: 'unauthorized', message: 'invalid token' } });
    assert.deepEqual(await closed, { code: 4501, reason: 'unauthorized: invalid token' });
    assert.equal(FakeEventSource.created.waiting, 0);
  });

  it('takes the heartbeat lines as signs of life, and pings when they stop', async () => {
    const made = client({ pingInterval: 80 });
    const stream = await overHttpStream(made);
    const beating = setInterval(() => stream.line(''), 10);
    await new Promise((resolve) => setTimeout(resolve, 250));
    clearInterval(beating);
    assert.equal(http.sends.waiting, 0, 'no ping while the heartbeats come');
    const [ping] = await commands();
    assert.equal(ping!.action, 'ping');
  });

  it('derives its URLs from the WebSocket URL (wss → https, /ws → /stream, the query kept) unless given', async () => {
    const made = client({ url: 'wss://push.example.com/app/ws?token=abc', transports: ['http-stream'] });
    made.connect();
    const stream = await http.streams.next();
    assert.equal(stream.url, 'https://push.example.com/app/stream?token=abc');
    stream.accept('s');
    await next(made, 'connected');
    void made.publish('x', 1).catch(() => {});
    assert.equal((await http.sends.next()).url, 'https://push.example.com/app/stream/send');

    const given = client({ streamUrl: 'https://other.example/push', sseUrl: 'https://other.example/events', transports: ['http-stream', 'sse'] });
    given.subscribe('t');
    given.connect();
    const other = await http.streams.next();
    assert.equal(other.url, 'https://other.example/push');
    other.fail();
    assert.equal(new URL((await FakeEventSource.created.next()).url).pathname, '/events');
  });
});

describe('remembering the transport', () => {
  it('starts where the last connection of the page succeeded, and retries WebSocket once the memory is old', async () => {
    const first = client();
    await overHttpStream(first);
    const stored = JSON.parse(memory.getItem(KEY)!) as { transport: string; at: number };
    assert.equal(stored.transport, 'http-stream');
    first.close();

    const sockets = FakeSocket.instances.length;
    const second = client();
    assert.equal(second.transport, 'http-stream', 'known before connecting');
    second.connect();
    (await http.streams.next()).accept('s2');
    await next(second, 'connected');
    assert.equal(FakeSocket.instances.length, sockets, 'no WebSocket tried');
    second.close();

    memory.setItem(KEY, JSON.stringify({ transport: 'http-stream', at: Date.now() - 600_001 }));
    const third = client();
    assert.equal(third.transport, 'websocket');
    third.connect();
    const connected = next(third, 'connected');
    FakeSocket.latest().open();
    await connected;
    assert.equal(memory.getItem(KEY), null, 'WebSocket works again: nothing to remember');
  });

  it('forgets a remembered transport when a round that started from it fails throughout', async () => {
    memory.setItem(KEY, JSON.stringify({ transport: 'http-stream', at: Date.now() }));
    const made = client({ transports: ['websocket', 'http-stream'] });
    made.connect();
    const lost = next(made, 'disconnected');
    (await http.streams.next()).fail();
    await lost;
    assert.equal(memory.getItem(KEY), null);
    await next(made, 'connecting');
    assert.equal(made.transport, 'websocket', 'the next round starts from the first transport');
  });

  it('uses sessionStorage when the page has one', async () => {
    const storage = new MemoryStorage();
    (globalThis as { sessionStorage?: unknown }).sessionStorage = storage;
    try {
      const made = new HeraldClient({ url: 'ws://herald.test/ws', WebSocket: FakeSocket, fetch: http.fetch, random: () => 0 });
      clients.push(made);
      await overHttpStream(made);
      assert.equal(JSON.parse(storage.getItem(KEY)!).transport, 'http-stream');
    } finally {
      delete (globalThis as { sessionStorage?: unknown }).sessionStorage;
    }
  });
});

describe('subscriptions across transports', () => {
  it('keeps every position across a change of transport: no publication missed, none repeated', async () => {
    // rememberTransportFor 0: every new round starts with WebSocket again.
    const made = client({ rememberTransportFor: 0 });
    const seen = watch(made);
    const feed = made.subscribe('feed');
    const offsets: number[] = [];
    feed.on('message', ({ context }) => offsets.push(context.offset!));
    const stream = await overHttpStream(made);
    const [subscribe] = await commands();
    stream.line({ id: subscribe!.id, action: 'subscribe', ok: true, offset: 2, epoch: 'e' });
    await feed.ready;
    for (const offset of [3, 4]) stream.line({ action: 'publish', topic: 'feed', message: offset, offset, epoch: 'e' });
    await new Promise<void>((resolve) => feed.on('message', () => offsets.length === 2 && resolve()));

    // The server drops the stream; the next round tries WebSocket first, and it works.
    const connecting = next<{ transport: TransportName }>(made, 'connecting');
    stream.end();
    assert.equal((await connecting).transport, 'websocket');
    const socket = FakeSocket.latest();
    socket.open();
    const resubscribe = await socket.nextSent();
    assert.deepEqual(resubscribe.since, { offset: 4, epoch: 'e' }, 'from the last publication handed over on the stream');
    socket.receive([
      { id: resubscribe.id, action: 'subscribe', ok: true, recovered: true, offset: 6, epoch: 'e' },
      ...[4, 5, 6].map((offset) => ({ action: 'publish', topic: 'feed', message: offset, offset, epoch: 'e' })),
    ]);
    assert.deepEqual(offsets, [3, 4, 5, 6]);
    assert.deepEqual(seen.changes, ['websocket→http-stream', 'http-stream→websocket']);
    assert.equal(made.transport, 'websocket');
  });

  it('carries the positions an HTTP stream reached into the SSE URL', async () => {
    const made = client({ rememberTransportFor: 0 });
    const feed = made.subscribe('feed');
    const stream = await overHttpStream(made);
    const [subscribe] = await commands();
    stream.line({ id: subscribe!.id, action: 'subscribe', ok: true, offset: 9, epoch: 'x' });
    stream.line({ action: 'publish', topic: 'feed', message: 10, offset: 10, epoch: 'x' });
    await new Promise<void>((resolve) => feed.once('message', () => resolve()));
    // The stream drops; the next round finds WebSocket and HTTP streaming both failing.
    const connecting = next(made, 'connecting');
    stream.end();
    await connecting;
    FakeSocket.latest().serverClose(1006);
    (await http.streams.next()).fail();
    const source = await FakeEventSource.created.next();
    assert.equal(source.param('lastEventId'), '10.x');
    assert.deepEqual(source.topics, ['feed']);
  });

  it('keeps a transport that opened for its reconnects, without falling back', async () => {
    const made = client();
    const connected = next(made, 'connected');
    made.connect();
    FakeSocket.latest().open();
    await connected;
    const lost = next(made, 'disconnected');
    FakeSocket.latest().serverClose(1006);
    await lost;
    // The server is down: the reconnect fails before opening, and the client waits to try WebSocket again.
    await next(made, 'connecting');
    const failed = next<{ attempt: number }>(made, 'disconnected');
    FakeSocket.latest().serverClose(1006);
    assert.equal((await failed).attempt, 1);
    assert.equal(http.streams.waiting, 0, 'no HTTP stream tried');
    assert.equal(made.transport, 'websocket');
  });
});

describe('the SSE event id the client resumes from', () => {
  it('is offset.epoch for one topic, and escaped topic|offset.epoch entries for several', () => {
    assert.equal(eventId([{ topic: 'news', since: { offset: 42, epoch: '1f3a9c0b2e' } }]), '42.1f3a9c0b2e');
    assert.equal(eventId([{ topic: 'news', since: { offset: 0, epoch: '' } }]), '0.');
    assert.equal(eventId([{ topic: 'news' }]), undefined);
    assert.equal(
      eventId([{ topic: 'chat,a', since: { offset: 42, epoch: '1f3a' } }, { topic: '新闻%', since: { offset: 7, epoch: 'e' } }, { topic: 'fresh' }]),
      'chat%2Ca|42.1f3a,%E6%96%B0%E9%97%BB%25|7.e',
    );
  });
});

describe('options', () => {
  it('refuse an unknown transport and a platform without any of them', () => {
    assert.throws(() => new HeraldClient({ url: 'ws://h/ws', WebSocket: FakeSocket, transports: ['carrier-pigeon' as TransportName] }), /transports: unknown transport carrier-pigeon/);
    assert.throws(() => new HeraldClient({ url: 'ws://h/ws', transports: ['sse'] }), /no transport available of sse/);
  });
});

describe('SSE URL with filters', () => {
  it('a filtered subscription puts its filter in the URL as filter.<topic>, as JSON', () => {
    const url = new URL(sseUrl({ url: 'http://herald.test/sse', topics: [{ topic: 'a' }, { topic: 'b:1', filter: { eq: ['region', 'eu'] } }] }));
    assert.deepEqual(url.searchParams.getAll('topic'), ['a', 'b:1']);
    assert.equal(url.searchParams.get('filter.a'), null);
    assert.deepEqual(JSON.parse(url.searchParams.get('filter.b:1')!), { eq: ['region', 'eu'] });
  });
});
