import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { blocks } from '../helpers/docs-blocks.js';
import { deadline, startHerald, TestClient } from '../helpers/helpers.js';
import { DEPLOY_CONF, deploySite, Nginx, selfSignedCertificate } from '../helpers/nginx.js';
import { eventually, freePort, requireBinary } from '../helpers/servers.js';
import { openSse, ssePath, SseStream } from '../helpers/sse.js';
import { StreamClient } from '../helpers/stream-client.js';

/**
 * Herald behind a real nginx (Debian's), configured with deploy/nginx.conf
 * as docs/deployment.md shows it: SSE, HTTP streaming and WebSocket through
 * the proxy, with HTTP/1.1 and HTTP/2 between the client and nginx (TLS, a
 * certificate made here with openssl). "Passed on at once" is checked by
 * waiting for each publication's event before publishing the next one: a
 * buffering proxy holds the first one back and the wait fails.
 */

const OPTIONS = {
  history: [{ pattern: 'h:*', size: 100, ttl: 600_000 }],
  trustProxy: ['loopback'],
  // Short, so that heartbeats are seen passing through the proxy within the test.
  heartbeat: { interval: 300, timeout: 5000 },
} satisfies HeraldOptions;

/** Distinct free ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Publishes `messages` one by one, each only once `stream` received the previous one's event. */
async function publishOneByOne(herald: Herald, topic: string, stream: SseStream, messages: unknown[]): Promise<void> {
  for (const message of messages) {
    await herald.publish(topic, message);
    const event = await stream.next(3000).catch((err: Error) => {
      throw new Error(`the event of ${JSON.stringify(message)} did not come through before the next publication: ${err.message}`);
    });
    assert.deepEqual([event.event, event.json.message], ['message', message]);
  }
}

/** Opens an SSE stream over an HTTP/2 session (a request on it) and resolves on its 200. */
function h2Sse(session: ClientHttp2Session, path: string, lastEventId?: string): Promise<SseStream> {
  const request = session.request({ ':path': path, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) });
  return deadline(
    new Promise<SseStream>((resolve, reject) => {
      request.once('response', (headers) => {
        if (headers[':status'] !== 200) return reject(new Error(`GET ${path} over HTTP/2 answered ${String(headers[':status'])}`));
        resolve(new SseStream(request, lastEventId, headers));
      });
      request.once('error', reject);
    }),
    5000,
    `GET ${path} over HTTP/2`,
  );
}

/** The lines of an NDJSON response read from any body (here an HTTP/2 stream): each parsed, heartbeats (empty lines) counted. */
class NdjsonLines {
  readonly frames: any[] = [];
  heartbeats = 0;
  private cursor = 0;
  private buffer = '';
  private waiters: Array<() => void> = [];

  constructor(body: Readable) {
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (line === '') this.heartbeats++;
        else this.frames.push(JSON.parse(line));
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Waits until `check` holds of what arrived. */
  async until(check: () => boolean, what: string): Promise<void> {
    await deadline(
      (async () => {
        while (!check()) await new Promise<void>((resolve) => this.waiters.push(resolve));
      })(),
      5000,
      what,
    );
  }

  async next(): Promise<any> {
    await this.until(() => this.cursor < this.frames.length, 'the next line of the stream');
    return this.frames[this.cursor++];
  }
}

/** An HTTP/2 request with a JSON body; resolves with its status, headers and body (NDJSON lines, or the whole answer). */
function h2Post(session: ClientHttp2Session, path: string, body: unknown): Promise<{ headers: IncomingHttpHeaders & IncomingHttpStatusHeader; body: Readable }> {
  const request = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
  request.end(JSON.stringify(body));
  return deadline(
    new Promise((resolve, reject) => {
      request.once('response', (headers) => resolve({ headers, body: request }));
      request.once('error', reject);
    }),
    5000,
    `POST ${path} over HTTP/2`,
  );
}

/** Reads a whole body as text. */
async function text(body: Readable): Promise<string> {
  let all = '';
  body.setEncoding('utf8');
  for await (const chunk of body) all += chunk;
  return all;
}

describe('Herald behind nginx, configured with deploy/nginx.conf', () => {
  it('docs/deployment.md shows deploy/nginx.conf as it is', () => {
    const shown = blocks().filter((block) => block.file === 'docs/deployment.md' && block.lang === 'nginx');
    assert.equal(shown.length, 1, 'one nginx block in docs/deployment.md');
    assert.equal(`${shown[0]!.code}\n`, readFileSync(DEPLOY_CONF, 'utf8'));
  });


  const skip = requireBinary('nginx') ?? requireBinary('openssl');
  let herald: Herald;
  let nginx: Nginx;
  let pem: Buffer;
  let base: string;
  let plainPort: number;

  before(async () => {
    if (skip) return;
    herald = await startHerald(OPTIONS);
    nginx = new Nginx();
    const certificate = selfSignedCertificate(nginx.dir);
    pem = certificate.pem;
    const [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
    plainPort = httpPort;
    base = `https://127.0.0.1:${httpsPort}`;
    const site = deploySite({ upstream: `127.0.0.1:${herald.port}`, httpPort, httpsPort, cert: certificate.cert, key: certificate.key });
    await nginx.start(site, [httpPort, httpsPort]);
  });
  after(() => nginx?.stop());

  /** Resolves once Herald holds `count` connections (nginx closes the upstream side of a client that left). */
  function connections(count: number): Promise<void> {
    return eventually(() => herald.status().connections === count, `Herald to hold ${count} connections`);
  }

  it('HTTP/1.1: SSE events pass one by one as they are published, heartbeats pass, Last-Event-ID resumes through the proxy', async (t) => {
    if (skip) return t.skip(skip);
    const stream = await openSse(base, ['h:one'], { ca: pem });
    assert.equal((stream.response as IncomingMessage).httpVersion, '1.1');
    assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(stream.headers['cache-control'], 'no-store');
    assert.equal(stream.headers['x-accel-buffering'], undefined, 'nginx takes the header for itself');
    const subscribed = await stream.next();
    assert.deepEqual([subscribed.event, subscribed.json.offset], ['subscribe', 0]);
    const epoch = subscribed.json.epoch as string;
    assert.equal(stream.retry, 2000);

    await publishOneByOne(herald, 'h:one', stream, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.equal(stream.lastEventId, `3.${epoch}`);
    const seen = stream.comments;
    await stream.until(() => stream.comments >= seen + 2, 'two heartbeat comments through nginx');

    const left = stream.lastEventId;
    stream.destroy();
    await connections(0);
    for (const n of [4, 5, 6]) await herald.publish('h:one', { n });
    const resumed = await openSse(base, ['h:one'], { ca: pem, lastEventId: left });
    const again = await resumed.next();
    assert.deepEqual([again.event, again.json.recovered, again.json.offset], ['subscribe', true, 6]);
    const missed = await resumed.take(3);
    assert.deepEqual(
      missed.map((e) => [e.json.message.n, e.lastEventId]),
      [4, 5, 6].map((n) => [n, `${n}.${epoch}`]),
    );
    await publishOneByOne(herald, 'h:one', resumed, [{ n: 7 }]);
    assert.deepEqual(resumed.rest(), [], 'nothing repeated');
    resumed.destroy();
    await connections(0);
  });

  it('HTTP/2: SSE streams share one connection to nginx, events arrive as published, Last-Event-ID resumes', async (t) => {
    if (skip) return t.skip(skip);
    const session = h2connect(base, { ca: pem });
    t.after(() => session.close());
    const a = await h2Sse(session, ssePath(['h:two-a']));
    const b = await h2Sse(session, ssePath(['h:two-b', 'plain']));
    assert.equal(session.alpnProtocol, 'h2');
    assert.equal(a.headers[':status'], 200);
    assert.equal(a.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(a.headers.connection, undefined, 'no connection-specific header under HTTP/2');
    assert.equal((await a.next()).json.topic, 'h:two-a');
    assert.deepEqual((await b.take(2)).map((e) => e.json.topic), ['h:two-b', 'plain']);
    await connections(2);

    await publishOneByOne(herald, 'h:two-a', a, ['a1', 'a2']);
    await publishOneByOne(herald, 'h:two-b', b, ['b1']);
    await publishOneByOne(herald, 'plain', b, ['p1']);
    await publishOneByOne(herald, 'h:two-a', a, ['a3']);
    const seen = a.comments;
    await a.until(() => a.comments >= seen + 2, 'two heartbeat comments over HTTP/2');

    const left = a.lastEventId;
    a.destroy();
    await connections(1);
    await herald.publish('h:two-a', 'a4');
    await herald.publish('h:two-a', 'a5');
    const resumed = await h2Sse(session, ssePath(['h:two-a']), left);
    const again = await resumed.next();
    assert.deepEqual([again.json.recovered, again.json.offset], [true, 5]);
    assert.deepEqual((await resumed.take(2)).map((e) => e.json.message), ['a4', 'a5']);
    // A page after a reload passes the id in the query instead.
    const reloaded = await h2Sse(session, ssePath(['h:two-a'], { lastEventId: left }));
    assert.equal((await reloaded.next()).json.recovered, true);
    assert.deepEqual((await reloaded.take(2)).map((e) => e.json.message), ['a4', 'a5']);
    for (const stream of [b, resumed, reloaded]) stream.destroy();
    await connections(0);
  });

  it('HTTP streaming through nginx: the stream over HTTP/1.1 and HTTP/2, commands by POST /stream/send, lines as they come', async (t) => {
    if (skip) return t.skip(skip);
    // HTTP/1.1.
    const stream = await StreamClient.open(base, { ca: pem });
    const send = (body: unknown): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const request = httpsRequest(`${base}/stream/send`, { method: 'POST', ca: pem, headers: { 'content-type': 'application/json' } }, async (response) =>
          resolve({ status: response.statusCode ?? 0, text: await text(response) }),
        );
        request.on('error', reject);
        request.end(JSON.stringify(body));
      });
    assert.deepEqual(await send({ session: stream.session, command: { id: 1, action: 'subscribe', topic: 'h:lines' } }), { status: 202, text: '{"ok":true}' });
    const subscribed = await stream.reply(1);
    assert.deepEqual([subscribed.ok, subscribed.offset], [true, 0]);
    const epoch = subscribed.epoch as string;
    for (const n of [1, 2, 3]) {
      await herald.publish('h:lines', n);
      // Each line arrives before the next publication.
      assert.deepEqual(await stream.next(3000), { action: 'publish', topic: 'h:lines', message: n, offset: n, epoch });
    }
    const beats = stream.heartbeats;
    await stream.until(() => stream.heartbeats >= beats + 2, 'two heartbeat lines through nginx');

    // HTTP/2: the stream and its commands on one connection.
    const session = h2connect(base, { ca: pem });
    t.after(() => session.close());
    const opened = await h2Post(session, '/stream', [{ id: 1, action: 'subscribe', topic: 'h:lines' }]);
    assert.deepEqual([opened.headers[':status'], opened.headers['content-type']], [200, 'application/x-ndjson; charset=utf-8']);
    const lines = new NdjsonLines(opened.body);
    const first = await lines.next();
    assert.equal(first.action, 'stream');
    const reply = await lines.next();
    assert.deepEqual([reply.id, reply.ok, reply.offset], [1, true, 3]);
    await herald.publish('h:lines', 4);
    assert.deepEqual(await lines.next(), { action: 'publish', topic: 'h:lines', message: 4, offset: 4, epoch });
    const sent = await h2Post(session, '/stream/send', { session: first.session, command: { id: 2, action: 'publish', topic: 'h:lines', message: 5 } });
    assert.deepEqual([sent.headers[':status'], await text(sent.body)], [202, '{"ok":true}']);
    // The command's reply and its publication, in whichever order the node sent them.
    const answered = [await lines.next(), await lines.next()].map((f) => (f.id === 2 ? `reply ${String(f.ok)} ${String(f.offset)}` : `${String(f.action)} ${String(f.message)}`));
    assert.deepEqual(answered.sort(), ['publish 5', 'reply true 5']);
    assert.equal((await stream.next()).message, 4, 'the HTTP/1.1 stream has them too');
    assert.equal((await stream.next()).message, 5);
    const beats2 = lines.heartbeats;
    await lines.until(() => lines.heartbeats >= beats2 + 2, 'two heartbeat lines over HTTP/2');
    opened.body.destroy();
    stream.destroy();
    await connections(0);
  });

  it('WebSocket through nginx: the TLS server that speaks HTTP/2 still upgrades HTTP/1.1 WebSockets', async (t) => {
    if (skip) return t.skip(skip);
    const ws = await TestClient.open(`wss://127.0.0.1:${new URL(base).port}/ws`, { ca: pem });
    assert.deepEqual((await ws.request({ action: 'subscribe', topic: 'h:ws' })).ok, true);
    const sse = await openSse(base, ['h:ws'], { ca: pem });
    await sse.next();
    await herald.publish('h:ws', 'both');
    assert.deepEqual([(await ws.next()).message, (await sse.next()).json.message], ['both', 'both']);
    const published = await ws.request({ action: 'publish', topic: 'h:ws', message: 'from ws' });
    assert.equal(published.ok, true);
    assert.equal((await sse.next()).json.message, 'from ws');
    await ws.close();
    sse.destroy();
    await connections(0);
  });

  it('the plain HTTP server of the config sends clients to HTTPS', async (t) => {
    if (skip) return t.skip(skip);
    const answer = await fetch(`http://127.0.0.1:${plainPort}/sse?topic=x`, { redirect: 'manual' });
    assert.equal(answer.status, 301);
    assert.match(answer.headers.get('location') ?? '', /^https:\/\/127\.0\.0\.1\/sse\?topic=x$/);
  });
});

describe('Herald behind a bare nginx location (nothing but proxy_pass)', () => {
  const skip = requireBinary('nginx') ?? requireBinary('openssl');

  it("nginx honours Herald's X-Accel-Buffering: no, and the heartbeat keeps a stream open past proxy_read_timeout", async (t) => {
    if (skip) return t.skip(skip);
    const herald = await startHerald(OPTIONS);
    const nginx = new Nginx();
    const { cert, key, pem } = selfSignedCertificate(nginx.dir);
    const [port] = (await freePorts(1)) as [number];
    // nginx's defaults: responses buffered (over TLS, held until 16 KB are there to encrypt),
    // HTTP/1.0 to Herald, and a 1 s read timeout: a response silent for 1 s is closed.
    const site = [
      'server {',
      `    listen 127.0.0.1:${port} ssl http2;`,
      `    ssl_certificate ${cert};`,
      `    ssl_certificate_key ${key};`,
      '    location / {',
      `        proxy_pass http://127.0.0.1:${herald.port};`,
      '        proxy_read_timeout 1s;',
      '    }',
      '}',
      '',
    ].join('\n');
    await nginx.start(site, [port]);
    const through = `https://127.0.0.1:${port}`;

    const sse = await openSse(through, ['h:plain'], { ca: pem });
    await sse.next();
    await publishOneByOne(herald, 'h:plain', sse, ['one', 'two', 'three']);
    const stream = await StreamClient.open(through, { ca: pem, body: { id: 1, action: 'subscribe', topic: 'h:plain' } });
    assert.equal((await stream.reply(1)).ok, true);
    await herald.publish('h:plain', 'four');
    assert.equal((await stream.next(3000)).message, 'four');
    assert.equal((await sse.next(3000)).json.message, 'four');

    // Five heartbeats (300 ms apart) span more than the proxy's 1 s read timeout: the streams are still open.
    const comments = sse.comments;
    const beats = stream.heartbeats;
    await sse.until(() => sse.comments >= comments + 5, 'five heartbeat comments');
    await stream.until((s) => s.heartbeats >= beats + 5, 'five heartbeat lines');
    await herald.publish('h:plain', 'five');
    assert.equal((await sse.next(3000)).json.message, 'five');
    assert.equal((await stream.next(3000)).message, 'five');
    sse.destroy();
    stream.destroy();
    await nginx.stop();
    await herald.close();
  });
});
