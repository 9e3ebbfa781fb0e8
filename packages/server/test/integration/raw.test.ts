import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { CloseCode, type Herald } from '../../src/index.js';
import type { Page } from 'playwright-core';
import { useBrowser } from '../helpers/browser.js';
import { connect, deadline, http, startHerald } from '../helpers/helpers.js';
import { RedisServer, requireBinary } from '../helpers/servers.js';
import { SECRET, signToken } from '../helpers/tokens.js';
import { internals } from '../helpers/internals.js';

/** The Redis-fed seed's endpoint (SEEDS-SPEC §1): every client on `/` gets channel `channel`, and what one sends comes back to all as `RECEIVED: …`. */
const SEED_000 = { path: '/', topics: ['channel'], publish: 'channel' as const, prefix: 'RECEIVED: ' };

/** A client that keeps every frame as the text it is (TestClient parses JSON). */
class TextClient {
  private readonly frames: string[] = [];
  private waiting: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push((data as Buffer).toString('utf8'));
      this.waiting?.();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      this.waiting?.();
    }));
    ws.on('error', () => {
      /* surfaced through open or closed */
    });
  }

  /** The next frame's text. */
  next(): Promise<string> {
    return deadline(
      (async () => {
        while (this.frames.length === 0) {
          if (this.ws.readyState === WebSocket.CLOSED) throw new Error('closed while waiting for a frame');
          await new Promise<void>((resolve) => (this.waiting = resolve));
        }
        return this.frames.shift()!;
      })(),
      5000,
      'the next frame',
    );
  }

  get pending(): readonly string[] {
    return this.frames;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** Opens a text client; `new WebSocket('ws://localhost:1234')` as the seed's client.js: no path, no subprotocol. */
async function textClient(url: string, headers: Record<string, string> = {}, protocols?: string): Promise<TextClient> {
  const ws = new WebSocket(url, protocols, { headers });
  const client = new TextClient(ws);
  await deadline(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_request, response) => reject(new Error(`upgrade answered ${response.statusCode}`)));
      ws.once('error', reject);
    }),
    5000,
    'the connection to open',
  );
  return client;
}

function seedClient(herald: Herald, headers: Record<string, string> = {}): Promise<TextClient> {
  return textClient(`ws://127.0.0.1:${herald.port}`, headers);
}

function brokerReady(herald: Herald): Promise<void> {
  if (internals(herald).broker.state === 'ready') return Promise.resolve();
  return deadline(new Promise<void>((resolve) => herald.on('broker', (state) => state === 'ready' && resolve())), 10_000, 'the broker to be ready');
}

describe("the Redis-fed seed's browser client and PHP publisher (seed 000), unchanged", () => {
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  it('client.js on ws://host:port gets RECEIVED: <text> from every client and the raw PUBLISH channel payload', async (t) => {
    if (skip) return t.skip(skip);
    const herald = await startHerald({ broker: 'redis', redis: { url: redis.url, rawTopics: ['channel'] }, raw: [SEED_000] });
    await brokerReady(herald);
    // Two browser windows running client.js (a browser sends an Origin; a Node client may not).
    const first = await seedClient(herald, { origin: 'http://localhost:9090' });
    const second = await seedClient(herald);
    assert.equal(first.ws.protocol, '', 'no subprotocol');
    // The server subscribed them (they never send a subscribe): one Redis subscription for the node.
    await internals(herald).whenSubscribed(['channel']);
    assert.equal(internals(herald).hub.subscriberCount('channel'), 2);

    // The seed's `websocket.send("hello world!")`, typed once the socket is open.
    first.send('hello world!');
    assert.equal(await first.next(), 'RECEIVED: hello world!', 'the sender gets it too');
    assert.equal(await second.next(), 'RECEIVED: hello world!');

    // publish.php: $redis->publish("channel", "data from PHP"); var_dump($ret) shows int(1).
    const php = new Redis(redis.url);
    t.after(() => php.disconnect());
    assert.equal(await php.publish('channel', 'data from PHP'), 1, 'int(1): one subscriber, the Herald node');
    assert.equal(await first.next(), 'data from PHP', 'the raw payload, no prefix');
    assert.equal(await second.next(), 'data from PHP');
    // A JSON payload arrives as the publisher wrote it, spacing included.
    await php.publish('channel', '{"order": 7, "state":"paid"}');
    assert.equal(await first.next(), '{"order": 7, "state":"paid"}');
    assert.equal(await second.next(), '{"order": 7, "state":"paid"}');

    // Herald's own publishers reach them too: a string as its text, other JSON as its JSON text.
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'channel', message: 'from the API' })).status, 200);
    assert.equal(await first.next(), 'from the API');
    await herald.publish('channel', { n: 1 });
    assert.equal(await first.next(), '{"n":1}');
    assert.equal(await second.next(), 'from the API');
    assert.equal(await second.next(), '{"n":1}');

    // A JSON-protocol client on the same topic sees the clients' text as a string message.
    const json = await connect(herald);
    await json.request({ action: 'subscribe', topic: 'channel' });
    second.send('from the second window');
    assert.deepEqual(await json.next(), { action: 'publish', topic: 'channel', message: 'RECEIVED: from the second window' });
    assert.equal(await first.next(), 'RECEIVED: from the second window');
    assert.equal(await second.next(), 'RECEIVED: from the second window');

    // A binary frame is read as text, as the seed's websocket.Message.Receive does.
    first.ws.send(Buffer.from('binary 你好'), { binary: true });
    assert.equal(await first.next(), 'RECEIVED: binary 你好');
    assert.equal(await second.next(), 'RECEIVED: binary 你好');
    assert.deepEqual(await json.next(), { action: 'publish', topic: 'channel', message: 'RECEIVED: binary 你好' });

    // Closing one window leaves the other served (the seed kept dead clients and stopped at the first failed send).
    assert.deepEqual(first.pending, [], 'nothing else reached the first window');
    await first.close();
    assert.equal(await php.publish('channel', 'after a window closed'), 1);
    assert.equal(await second.next(), 'after a window closed');
    assert.deepEqual(second.pending, [], 'nothing else reached the page (no error, no reply)');
    await Promise.all([second.close(), json.close()]);
    await herald.close();
  });
});

/** The seed's client.js, as the article prints it, but for its host and port. */
const CLIENT_JS = (port: number): string => `var wsServer = 'ws://localhost:${port}'; var websocket = new WebSocket(wsServer); websocket.onopen = function (evt) { console.log("Connected to WebSocket server."); }; websocket.onclose = function (evt) { console.log("Disconnected"); }; websocket.onmessage = function (evt) { console.log('Retrieved data from server: ' + evt.data); }; websocket.onerror = function (evt, e) { console.log('Error occured: ' + evt.data); };`;

/** The console of a page, to wait for the line a step should print. */
function consoleOf(page: Page): { lines: string[]; until: (line: string) => Promise<void> } {
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  page.on('console', (message) => {
    lines.push(message.text());
    for (const wake of waiters.splice(0)) wake();
  });
  const until = (line: string): Promise<void> =>
    deadline(
      (async () => {
        while (!lines.includes(line)) await new Promise<void>((resolve) => waiters.push(resolve));
      })(),
      5000,
      `the console line ${JSON.stringify(line)}`,
    );
  return { lines, until };
}

describe("the Redis-fed seed's client.js in two Chromium windows, against Herald and Redis", () => {
  const chromium = useBrowser();
  const skip = requireBinary('redis-server');
  const redis = new RedisServer();
  before(async () => {
    if (!skip) await redis.start();
  });
  after(() => redis.stop());

  it('both consoles print "Retrieved data from server: RECEIVED: hello world!", then "…: data from PHP"', async (t) => {
    if (skip) return t.skip(skip);
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const herald = await startHerald({ host: '127.0.0.1', broker: 'redis', redis: { url: redis.url, rawTopics: ['channel'] }, raw: [SEED_000] });
    await brokerReady(herald);
    const pages = await Promise.all([browser.newPage(), browser.newPage()]);
    const consoles = pages.map(consoleOf);
    // Paste client.js into each window's console (localhost resolves to the loopback Herald listens on).
    for (const [i, page] of pages.entries()) {
      await page.goto(`${herald.url}/healthz`);
      await page.evaluate(CLIENT_JS(herald.port));
      await consoles[i]!.until('Connected to WebSocket server.');
    }
    await internals(herald).whenSubscribed(['channel']);
    // The article's last line, typed once the socket is open (right after construction it would throw).
    await pages[0]!.evaluate('websocket.send("hello world!")');
    for (const c of consoles) await c.until('Retrieved data from server: RECEIVED: hello world!');
    // php publish.php: int(1)
    const php = new Redis(redis.url);
    t.after(() => php.disconnect());
    assert.equal(await php.publish('channel', 'data from PHP'), 1);
    for (const c of consoles) await c.until('Retrieved data from server: data from PHP');
    for (const c of consoles) {
      // What client.js printed (the page's own favicon 404 aside), and nothing else: no error, no disconnect.
      const printed = c.lines.filter((line) => /^(Connected|Disconnected|Retrieved|Error occured)/.test(line));
      assert.deepEqual(printed, ['Connected to WebSocket server.', 'Retrieved data from server: RECEIVED: hello world!', 'Retrieved data from server: data from PHP']);
    }
    await Promise.all(pages.map((page) => page.close()));
    await herald.close();
  });
});

describe('raw endpoints: paths, identity, permissions and limits', () => {
  const url = (herald: Herald, path: string): string => `ws://127.0.0.1:${herald.port}${path}`;
  const connected = (herald: Herald): Promise<void> => deadline(new Promise<void>((resolve) => herald.on('connect', () => resolve())), 5000, 'a connection to open');
  const errorOf = (text: string): { code: string; message: string } => (JSON.parse(text) as { action: string; error: { code: string; message: string } }).error;

  it('a raw path comes before lhttp.paths (whose default has "/"); /echo stays LHTTP, wsPath JSON; a subprotocol the client offers wins', async () => {
    const herald = await startHerald({ raw: [{ path: '/feed/*', topics: ['ticks', 'news'] }, SEED_000] });
    const [feed, root, echo, offered] = await Promise.all([
      textClient(url(herald, '/feed/eu?x=1')),
      textClient(url(herald, '/')),
      textClient(url(herald, '/echo')),
      textClient(url(herald, '/'), {}, 'json'),
    ]);
    assert.equal(offered.ws.protocol, 'json');
    await herald.publish('ticks', 'tick 1');
    await herald.publish('news', { headline: 'raw' });
    assert.equal(await feed.next(), 'tick 1');
    assert.equal(await feed.next(), '{"headline":"raw"}');
    await herald.publish('channel', 'to the root');
    assert.equal(await root.next(), 'to the root');
    assert.deepEqual(offered.pending, [], 'the JSON client was not subscribed by the server');
    echo.send('LHTTP/1.0 chat\r\nsubscribe:channel\r\n\r\n');
    offered.send(JSON.stringify({ id: 1, action: 'subscribe', topic: 'channel' }));
    assert.deepEqual(JSON.parse(await offered.next()), { id: 1, action: 'subscribe', ok: true });
    await herald.publish('channel', 'everyone');
    assert.equal(await root.next(), 'everyone');
    assert.equal(await echo.next(), 'LHTTP/1.0 publish\r\npublish:channel\r\n\r\neveryone');
    assert.deepEqual(JSON.parse(await offered.next()), { action: 'publish', topic: 'channel', message: 'everyone' });
    const metrics = (await http(herald, 'GET', '/metrics')).text;
    assert.match(metrics, /herald_connections\{protocol="raw"\} 2/);
    assert.match(metrics, /herald_connections\{protocol="lhttp"\} 1/);
    await Promise.all([feed, root, echo, offered].map((c) => c.close()));
    await herald.close();
  });

  it('answers what cannot be published with an error frame to the sender only, and keeps the connection', async () => {
    const herald = await startHerald({
      raw: [{ path: '/ro', topics: ['ro'] }, { path: '/rw', topics: ['rw'], publish: 'rw' }, { path: '/private', topics: [], publish: 'private:x' }],
      limits: { maxMessageBytes: 64, commandsPerSecond: 0.1, commandBurst: 2 },
    });
    const [ro, rw, other] = await Promise.all([textClient(url(herald, '/ro')), textClient(url(herald, '/rw')), textClient(url(herald, '/rw'))]);
    ro.send('hello');
    assert.deepEqual(errorOf(await ro.next()), { code: 'forbidden', message: 'this endpoint (/ro) only delivers: what a client sends is not published' });
    rw.send('x'.repeat(100));
    assert.equal(errorOf(await rw.next()).code, 'too_large');
    rw.send('fits');
    assert.equal(await rw.next(), 'fits');
    assert.equal(await other.next(), 'fits');
    rw.send('over the burst');
    assert.deepEqual(errorOf(await rw.next()), { code: 'rate_limited', message: 'over 0.1 commands per second' });
    assert.deepEqual(other.pending, [], 'errors go to the sender only');
    await herald.publish('ro', 'still served');
    assert.equal(await ro.next(), 'still served');
    await herald.publish('rw', 'still served');
    assert.equal(await rw.next(), 'still served');
    const priv = await textClient(url(herald, '/private'));
    priv.send('x');
    assert.deepEqual(errorOf(await priv.next()), { code: 'forbidden', message: 'publishing to private:x needs a "publish" grant' });
    await Promise.all([ro, rw, other, priv].map((c) => c.close()));
    await herald.close();

    const readOnly = await startHerald({ raw: [SEED_000], clientPublish: 'none' });
    const client = await textClient(url(readOnly, '/'));
    client.send('hello world!');
    assert.deepEqual(errorOf(await client.next()), { code: 'forbidden', message: 'publishing from connections is disabled on this server' });
    await client.close();
    await readOnly.close();
  });

  it('identity and permissions as for any connection: ?token= grants private topics and reaches the user; refusals close with 4501/4503', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } }, raw: [{ path: '/mine', topics: ['private:desk'] }, { path: '/open', topics: ['lobby'] }] });
    const refused = await textClient(url(herald, '/mine'));
    assert.deepEqual(await refused.closed, { code: CloseCode.FORBIDDEN, reason: 'private:desk is private: it needs a token that grants it' });
    assert.equal(internals(herald).hub.subscriberCount('private:desk'), 0);
    const token = await signToken({ sub: 'ann', topics: ['private:*'] });
    // The token is verified before the connection opens (and is subscribed): wait for that, as for the next two.
    let opened = connected(herald);
    const granted = await textClient(url(herald, `/mine?token=${token}`));
    await opened;
    await herald.publish('private:desk', 'for the desk');
    assert.equal(await granted.next(), 'for the desk');
    // A push to the user reaches the raw connection as the message's text.
    assert.deepEqual((await http(herald, 'POST', '/api/send', { uid: 'ann', message: 'a push' })).body, { ok: true, delivered: 1, nodes: 0 });
    assert.equal(await granted.next(), 'a push');
    await granted.close();
    await herald.close();

    const closed = await startHerald({ auth: { jwt: { secret: SECRET }, anonymous: false }, raw: [{ path: '/open', topics: ['lobby'] }] });
    const anonymous = await textClient(url(closed, '/open'));
    assert.deepEqual(await anonymous.closed, { code: CloseCode.UNAUTHORIZED, reason: 'login required: a raw connection identifies itself with ?token= or the connect hook' });
    opened = connected(closed);
    const known = await textClient(url(closed, `/open?token=${await signToken({ sub: 'bob' })}`));
    await opened;
    await closed.publish('lobby', 'welcome');
    assert.equal(await known.next(), 'welcome');
    await known.close();
    await closed.close();
  });

  it('heartbeat.appPing pings JSON clients only: a raw or LHTTP client would take {"action":"ping"} for data', async () => {
    const herald = await startHerald({ heartbeat: { interval: 100, timeout: 5000, appPing: true }, raw: [{ path: '/raw', topics: ['t'] }] });
    const [raw, lhttp] = await Promise.all([textClient(url(herald, '/raw')), textClient(url(herald, '/echo'))]);
    lhttp.send('LHTTP/1.0 s\r\nsubscribe:t\r\n\r\n');
    const json = await textClient(url(herald, '/ws'));
    // Two rounds of WebSocket pings reach every client; the app-level frame only the JSON one.
    const pinged = (client: TextClient): Promise<void> => deadline(new Promise<void>((resolve) => {
      let n = 0;
      client.ws.on('ping', () => ++n === 2 && resolve());
    }), 5000, 'two pings');
    await Promise.all([pinged(raw), pinged(lhttp), pinged(json)]);
    assert.equal(await json.next(), '{"action":"ping"}');
    await herald.publish('t', 'after the pings');
    assert.equal(await raw.next(), 'after the pings', 'no ping frame before it');
    assert.equal(await lhttp.next(), 'LHTTP/1.0 publish\r\npublish:t\r\n\r\nafter the pings');
    await Promise.all([raw, lhttp, json].map((c) => c.close()));
    await herald.close();
  });

  it('refuses a bad raw endpoint at start-up, naming the option', async () => {
    await assert.rejects(startHerald({ raw: [{ path: '/ws', topics: ['a'] }] }), /raw\.0\.path: \/ws is wsPath/);
    await assert.rejects(startHerald({ raw: [{ path: '/', topics: ['ok', 'bad topic'] }] }), /raw\.0: topic "bad topic"/);
    await assert.rejects(startHerald({ raw: [{ path: '/', topics: [], publish: 'a*' }] }), /raw\.0: topic "a\*"/);
    await assert.rejects(startHerald({ raw: [{ path: 'x' }] }), /raw\.0\.path: path "x" must start with "\/"/);
    await assert.rejects(startHerald({ raw: [{ path: '/', topic: 'a' } as never] }), /raw\.0\.topic: unknown option/);
  });
});
