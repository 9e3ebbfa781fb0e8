import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { connect, deadline, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';

const L = (command: string, headers: Array<[string, string]>, body = ''): string =>
  `LHTTP/1.0 ${command}\r\n${headers.map(([k, v]) => `${k}:${v}\r\n`).join('')}\r\n${body}`;

/** The frames of the original JavaScript SDK's chat demo (SEEDS-SPEC §3.12). */
const demoSubscribe = 'LHTTP/1.0 chat\r\nsubscribe:chatroom\r\n\r\n';
const demoPublish = (text: string): string => `LHTTP/1.0 chat\r\npublish:chatroom\r\n\r\n${text}`;

async function lhttpClient(herald: Herald, path = '/'): Promise<TestClient> {
  return connect(herald, { path });
}

/** Sends a frame and then a marker echo, and returns what came before the marker. */
async function exchange(client: TestClient, frame: string): Promise<string[]> {
  client.send(frame);
  client.send(L('marker', [['x', 'y']]));
  const got: string[] = [];
  for (;;) {
    const next = (await client.next()) as string;
    if (next.startsWith('LHTTP/1.0 marker')) return got;
    got.push(next);
  }
}

describe('LHTTP over WebSocket', () => {
  let herald: Herald;
  const calls: string[] = [];
  before(async () => {
    herald = await startHerald();
    // A processor that echoes a 'marker' back, so tests can tell when everything before it was handled.
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    // The sample server's processor: AddHeader, SetCommand, Send(body).
    herald.lhttp.register('chat', {
      onOpen: () => {
        calls.push('open');
      },
      onMessage: (h) => {
        h.addHeader('content-type', 'image/png');
        h.setCommand('auth');
        h.send(h.getBody());
      },
      onClose: () => {
        calls.push('close');
      },
    });
  });
  after(() => herald.close());

  it('the Lhttp chat demo: both windows see the line; the sender also gets the sample processor echo', async () => {
    const [alice, bob] = await Promise.all([lhttpClient(herald), lhttpClient(herald, '/echo')]);
    for (const c of [alice, bob]) {
      // Subscribing triggers the processor's echo with an empty body (the demo does not display it).
      assert.deepEqual(await exchange(c, demoSubscribe), ['LHTTP/1.0 auth\r\ncontent-type:image/png\r\n\r\n']);
    }
    const seenByAlice = await exchange(alice, demoPublish('hello from alice'));
    assert.deepEqual(seenByAlice, [
      'LHTTP/1.0 auth\r\ncontent-type:image/png\r\n\r\nhello from alice',
      'LHTTP/1.0 chat\r\npublish:chatroom\r\n\r\nhello from alice',
    ]);
    assert.equal(await bob.next(), 'LHTTP/1.0 chat\r\npublish:chatroom\r\n\r\nhello from alice');
    assert.deepEqual(calls, ['open', 'open'], 'onOpen once per connection, on its first message');
    // Alice's last message is a chat line (Bob sees it); Bob's last was the marker, which has no processor hooks.
    alice.send(demoPublish('bye'));
    assert.equal(await bob.next(), 'LHTTP/1.0 chat\r\npublish:chatroom\r\n\r\nbye');
    const bothGone = new Promise<void>((resolve) => herald.on('disconnect', () => herald.status().connections === 0 && setImmediate(resolve)));
    await alice.close();
    await bob.close();
    await deadline(bothGone, 5000, 'both disconnects');
    // onClose runs on the processor of each connection's last message: only Alice's was a chat message.
    assert.deepEqual(calls, ['open', 'open', 'close']);
  });

  it('runs subscribe, publish, unsubscribe in that order whatever the header order, for several topics', async () => {
    const c = await lhttpClient(herald);
    const frame = L('note', [['unsubscribe', 'x1 x2'], ['publish', 'x1 x2'], ['subscribe', 'x1 x2']], 'both');
    const got = await exchange(c, frame);
    // Subscribed to both before publishing: the identical re-serialised frame once per topic, all headers kept.
    assert.deepEqual(got, [frame, frame]);
    assert.equal(internals(herald).hub.subscriberCount('x1'), 0, 'unsubscribed after publishing');
    await c.close();
  });

  it('re-serialises what it publishes: normalised start line, blank line added', async () => {
    const [sender, reader] = await Promise.all([lhttpClient(herald), lhttpClient(herald)]);
    await exchange(reader, L('r', [['subscribe', 'norm']]));
    sender.send('LHTTP/1.0Xnote\r\npublish:norm\r\n');
    assert.equal(await reader.next(), 'LHTTP/1.0 note\r\npublish:norm\r\n\r\n');
    await Promise.all([sender.close(), reader.close()]);
  });

  it('deviations: double subscribe does not duplicate, unknown unsubscribe is a no-op, empty names are skipped, close cleans up', async () => {
    const [c, publisher] = await Promise.all([lhttpClient(herald), lhttpClient(herald)]);
    assert.deepEqual(await exchange(c, L('s', [['subscribe', 'dup  dup']])), []);
    assert.deepEqual(await exchange(c, L('s', [['subscribe', 'dup']])), []);
    assert.deepEqual(await exchange(c, L('u', [['unsubscribe', 'never-subscribed']])), []);
    assert.equal(internals(herald).hub.subscriberCount('dup'), 1);
    publisher.send(L('p', [['publish', 'dup']], 'once'));
    assert.equal(await c.next(), 'LHTTP/1.0 p\r\npublish:dup\r\n\r\nonce');
    assert.deepEqual(await exchange(c, L('m', [['k', 'v']])), [], 'no second copy');
    await c.close();
    await new Promise<void>((resolve) => {
      const check = (): void => (internals(herald).hub.subscriberCount('dup') === 0 ? resolve() : undefined);
      herald.on('disconnect', check);
      check();
    });
    await publisher.close();
  });

  it('ignores frames the original ignores, and answers crash cases with an LHTTP error frame', async () => {
    const c = await lhttpClient(herald);
    for (const ignored of ['LHTTP/1.0', 'hello world', 'LHTTP/1.1 chat\r\n\r\n', `LHTTP/1.0 c\r\n\r\n${'x'.repeat(41_000)}`]) c.send(ignored);
    assert.deepEqual(await exchange(c, 'LHTTP/1.0 chat'), ['LHTTP/1.0 error\r\ncode:bad_request\r\n\r\nno CRLF after the start line']);
    assert.deepEqual(await exchange(c, 'LHTTP/1.0\r\nsubscribe:x\r\n\r\n'), ['LHTTP/1.0 error\r\ncode:bad_request\r\n\r\nthe start line ends before its command (CRLF before byte 10)']);
    assert.deepEqual(await exchange(c, L('c', [['subscribe', 'bad*topic']])), [
      'LHTTP/1.0 error\r\ncode:invalid_topic\r\n\r\ntopic "bad*topic" contains *: topics are printable characters other than whitespace, * > and |',
    ]);
    await c.close();
  });

  it('JSON and LHTTP clients share topics, both ways', async () => {
    const [lhttp, json] = await Promise.all([lhttpClient(herald), connect(herald)]);
    await exchange(lhttp, L('s', [['subscribe', 'shared']]));
    await json.request({ action: 'subscribe', topic: 'shared' });

    await json.request({ action: 'publish', topic: 'shared', message: 'from json' });
    assert.equal(await lhttp.next(), 'LHTTP/1.0 publish\r\npublish:shared\r\n\r\nfrom json');
    assert.deepEqual(await json.next(), { action: 'publish', topic: 'shared', message: 'from json' });
    await json.request({ action: 'publish', topic: 'shared', message: { n: 1 } });
    assert.equal(await lhttp.next(), 'LHTTP/1.0 publish\r\npublish:shared\r\n\r\n{"n":1}');
    await json.next();

    lhttp.send(L('chat', [['publish', 'shared'], ['nick', 'li']], 'from lhttp'));
    assert.deepEqual(await json.next(), {
      action: 'publish',
      topic: 'shared',
      message: 'from lhttp',
      lhttp: { command: 'chat', headers: { publish: 'shared', nick: 'li' } },
    });
    await Promise.all([lhttp.close(), json.close()]);
  });

  it('channel names in any script: 聊天室, café, a&b, over LHTTP, JSON and the HTTP API', async () => {
    const [lhttp, json] = await Promise.all([lhttpClient(herald), connect(herald)]);
    for (const room of ['聊天室', 'café', 'a&b']) {
      // The original JavaScript SDK's frames, with a Chinese chat service's room names.
      assert.deepEqual(await exchange(lhttp, `LHTTP/1.0 talk\r\nsubscribe:${room}\r\n\r\n`), []);
      assert.equal((await json.request({ action: 'subscribe', topic: room })).ok, true);
      lhttp.send(`LHTTP/1.0 talk\r\npublish:${room}\r\n\r\n你好`);
      assert.equal(await lhttp.next(), `LHTTP/1.0 talk\r\npublish:${room}\r\n\r\n你好`);
      assert.equal((await json.next()).message, '你好');
      const api = await http(herald, 'POST', '/api/publish', { topic: room, message: 'from the API' });
      assert.equal(api.status, 200);
      assert.equal(await lhttp.next(), `LHTTP/1.0 publish\r\npublish:${room}\r\n\r\nfrom the API`);
      assert.equal((await json.next()).message, 'from the API');
    }
    // The limit is in bytes: 86 Chinese characters are 258 bytes, over the default 255.
    const long = '聊'.repeat(86);
    assert.deepEqual(await exchange(lhttp, `LHTTP/1.0 talk\r\nsubscribe:${long}\r\n\r\n`), [
      `LHTTP/1.0 error\r\ncode:invalid_topic\r\n\r\ntopic is 258 bytes long, over the limit of 255`,
    ]);
    await Promise.all([lhttp.close(), json.close()]);
  });

  it('speaks LHTTP on /ws when the lhttp subprotocol is offered', async () => {
    const c = await connect(herald, { protocols: 'lhttp' });
    assert.equal(c.ws.protocol, 'lhttp');
    assert.deepEqual(await exchange(c, L('s', [['subscribe', 'proto']])), []);
    assert.equal(internals(herald).hub.subscriberCount('proto'), 1);
    await c.close();
  });
});

describe('LHTTP processors and filters', () => {
  it('processors see the original API; setHeader("publish","") cancels; setCommand without send changes what is published', async () => {
    const herald = await startHerald();
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    herald.lhttp.register('echo', { onMessage: (h) => h.send(`${h.getCommand()}|${h.getHeader('k')}|${h.getHeader('missing')}|${h.getBody()}`) });
    herald.lhttp.register('cancel', { onMessage: (h) => h.setHeader('publish', '') });
    herald.lhttp.register('rename', {
      onMessage: (h) => {
        h.setCommand('renamed');
      },
    });
    herald.lhttp.register('only-last', {
      onMessage: (h) => {
        h.addHeader('a', '1');
        h.addHeader('b', '2');
      },
    });
    const [c, reader] = await Promise.all([lhttpClient(herald), lhttpClient(herald)]);
    await exchange(reader, L('s', [['subscribe', 'proc']]));
    // send() without response headers echoes every request header.
    assert.deepEqual(await exchange(c, L('echo', [['k', 'v']], 'B')), ['LHTTP/1.0 echo\r\nk:v\r\n\r\necho|v||B']);
    assert.deepEqual(await exchange(c, L('cancel', [['publish', 'proc']], 'dropped')), []);
    c.send(L('rename', [['publish', 'proc']], 'R'));
    assert.equal(await reader.next(), 'LHTTP/1.0 renamed\r\npublish:proc\r\n\r\nR');
    c.send(L('only-last', [['publish', 'proc']], 'H'));
    // addHeader replaces the response headers: only b survives, and the publish header is not carried.
    assert.equal(await reader.next(), 'LHTTP/1.0 only-last\r\nb:2\r\n\r\nH');
    assert.deepEqual(await exchange(reader, L('m', [])), [], 'the cancelled publish never arrived');
    await Promise.all([c.close(), reader.close()]);
    await herald.close();
  });

  it('filters run after the built-ins, in registration order, in every phase', async () => {
    const herald = await startHerald();
    const log: string[] = [];
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    herald.lhttp.register('cmd', {
      onOpen: () => void log.push('processor.onOpen'),
      onMessage: () => void log.push('processor.onMessage'),
      onClose: () => void log.push('processor.onClose'),
    });
    for (const name of ['f1', 'f2']) {
      herald.lhttp.addFilter({
        onOpen: () => void log.push(`${name}.onOpen`),
        beforeRequest: (h) => void log.push(`${name}.before:${h.getCommand()}`),
        afterRequest: (h) => void log.push(`${name}.after:subscribed=${internals(herald).hub.subscriberCount(h.getHeader('subscribe'))}`),
        onClose: () => void log.push(`${name}.onClose`),
      });
    }
    const c = await lhttpClient(herald);
    c.send(L('cmd', [['subscribe', 'ft']]));
    await exchange(c, L('marker', []));
    assert.deepEqual(log.slice(0, 7), [
      'f1.before:cmd',
      'f2.before:cmd',
      'f1.onOpen',
      'f2.onOpen',
      'processor.onOpen',
      'processor.onMessage',
      'f1.after:subscribed=1',
    ]);
    assert.equal(log[7], 'f2.after:subscribed=1');
    const closed = new Promise<void>((resolve) => herald.on('disconnect', () => setImmediate(resolve)));
    log.length = 0;
    await c.close();
    await closed;
    // On close: the filters, then the processor of the last message (the marker has none).
    assert.deepEqual(log, ['f1.onClose', 'f2.onClose']);
    await herald.close();
  });

  it('multipart: parts with their own headers for the processor; bad offsets are an error, not a crash; parts reset per message', async () => {
    const herald = await startHerald();
    const seen: unknown[] = [];
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    herald.lhttp.register('upload', {
      onMessage: (h) => {
        const parts = [];
        for (let block = h.getMultipart(); block; block = block.getNext()) parts.push([block.getHeaders(), block.getBody()]);
        seen.push(parts);
      },
    });
    const c = await lhttpClient(herald);
    assert.deepEqual(await exchange(c, L('upload', [['multipart', '0 14']], 'k1:v1\r\n\r\nbody1k2:v2\r\n\r\nbody2')), []);
    assert.deepEqual(await exchange(c, L('upload', [['multipart', '0 x']], 'k:v\r\n\r\nb')), ['LHTTP/1.0 error\r\ncode:bad_request\r\n\r\nmultipart offset "x" is not a number']);
    assert.deepEqual(await exchange(c, L('upload', [['multipart', '0 99']], 'k:v\r\n\r\nb')), ['LHTTP/1.0 error\r\ncode:bad_request\r\n\r\nmultipart offset 99 is outside the body (8 bytes)']);
    assert.deepEqual(await exchange(c, L('upload', [['other', 'h']], 'plain')), []);
    assert.deepEqual(seen, [
      [
        [{ k1: 'v1' }, 'body1'],
        [{ k2: 'v2' }, 'body2'],
      ],
      [],
    ]);
    await c.close();
    await herald.close();
  });
});

describe('LHTTP upstream', () => {
  let backend: Server;
  let base: string;
  const received: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];
  before(async () => {
    backend = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        if (req.url === '/slow') return; // never answers
        if (req.url === '/redirect') {
          res.writeHead(302, { location: 'http://127.0.0.1:1/internal' }).end();
          return;
        }
        res.end(`got ${req.method} ${body}`);
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  });
  after(async () => {
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  it('POST sends the body with the LHTTP headers as HTTP headers; GET sends no body; the answer comes back when reply is on', async () => {
    const herald = await startHerald({ lhttp: { upstream: { allow: [`${base}/hooks/`], reply: true } } });
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    const c = await lhttpClient(herald);
    const got = await exchange(c, L('order', [['upstream', `POST ${base}/hooks/order`], ['content-type', 'application/json'], ['x-trace', 'abc']], '{"id":1}'));
    assert.deepEqual(got, ['LHTTP/1.0 upstream\r\nstatus:200\r\n\r\ngot POST {"id":1}']);
    const post = received.at(-1)!;
    assert.equal(post.method, 'POST');
    assert.equal(post.url, '/hooks/order');
    assert.equal(post.body, '{"id":1}', 'the LHTTP body, not the whole message');
    assert.equal(post.headers['content-type'], 'application/json');
    assert.equal(post.headers['x-trace'], 'abc');
    assert.equal(post.headers.upstream, `POST ${base}/hooks/order`, 'every LHTTP header is forwarded, upstream included');

    assert.deepEqual(await exchange(c, L('q', [['upstream', `GET ${base}/hooks/q`]], 'ignored')), ['LHTTP/1.0 upstream\r\nstatus:200\r\n\r\ngot GET ']);
    assert.equal(received.at(-1)!.body, '');
    await c.close();
    await herald.close();
  });

  it('refuses URLs outside the allow-list (none by default), and survives refused, redirected and slow upstreams', async () => {
    const closed = await startHerald();
    closed.lhttp.register('marker', { onMessage: (h) => h.send('') });
    const c1 = await lhttpClient(closed);
    assert.deepEqual(await exchange(c1, L('x', [['upstream', `POST ${base}/hooks/a`]], 'b')), [
      `LHTTP/1.0 error\r\ncode:forbidden\r\n\r\nupstream to ${base} is not allowed (lhttp.upstream.allow)`,
    ]);
    await c1.close();
    await closed.close();

    const herald = await startHerald({ lhttp: { upstream: { allow: [`${base}/`, 'http://127.0.0.1:1/'], timeout: 200 } } });
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    const c = await lhttpClient(herald);
    const count = received.length;
    assert.deepEqual(await exchange(c, L('x', [['upstream', 'POST http://169.254.169.254/latest/meta-data']], '')), [
      'LHTTP/1.0 error\r\ncode:forbidden\r\n\r\nupstream to http://169.254.169.254 is not allowed (lhttp.upstream.allow)',
    ]);
    const refused = await exchange(c, L('x', [['upstream', 'POST http://127.0.0.1:1/x']], 'b'));
    assert.match(refused[0]!, /^LHTTP\/1\.0 error\r\ncode:unavailable\r\n\r\nupstream POST http:\/\/127\.0\.0\.1:1\/x failed: /);
    const slow = await exchange(c, L('x', [['upstream', `GET ${base}/slow`]]));
    assert.deepEqual(slow, [`LHTTP/1.0 error\r\ncode:unavailable\r\n\r\nupstream GET ${base}/slow failed: no answer within 200 ms`]);
    const redirected = await exchange(c, L('x', [['upstream', `GET ${base}/redirect`]]));
    assert.match(redirected[0]!, /code:unavailable/, 'redirects are not followed');
    assert.deepEqual(await exchange(c, L('x', [['upstream', 'POST']])), ['LHTTP/1.0 error\r\ncode:bad_request\r\n\r\nupstream needs "<METHOD> <URL>"']);
    assert.equal(received.length, count + 2, 'only the slow and redirect calls reached the backend');
    await c.close();
    await herald.close();
  });
});

describe('POST /publish (the Lhttp seed HTTP endpoint)', () => {
  it('publishes the raw body to every topic of its publish header and answers 200 with an empty body', async () => {
    const herald = await startHerald();
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    const [lhttp, json] = await Promise.all([lhttpClient(herald), connect(herald)]);
    await exchange(lhttp, L('s', [['subscribe', 'p1 p2']]));
    await json.request({ action: 'subscribe', topic: 'p1' });
    // What the original's Go Publish helper sends: start line, publish header, extra headers, blank line, body.
    const body = 'LHTTP/1.0 notice\r\npublish:p1 p2\r\nlevel:high\r\n\r\nserver says hi';
    const answer = await http(herald, 'POST', '/publish', body, { 'content-type': 'text/plain' });
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '');
    assert.equal(await lhttp.next(), body, 'byte for byte');
    assert.equal(await lhttp.next(), body);
    assert.deepEqual(await json.next(), { action: 'publish', topic: 'p1', message: 'server says hi', lhttp: { command: 'notice', headers: { publish: 'p1 p2', level: 'high' } } });

    const noHeader = await http(herald, 'POST', '/publish', 'LHTTP/1.0 x\r\nother:1\r\n\r\nbody', { 'content-type': 'text/plain' });
    assert.equal(noHeader.status, 200);
    const notLhttp = await http(herald, 'POST', '/publish', 'hello', { 'content-type': 'text/plain' });
    assert.equal(notLhttp.status, 400);
    assert.match(notLhttp.body.error.message, /not an LHTTP message/);
    const proxied = await http(herald, 'POST', '/publish', body, { 'content-type': 'text/plain', 'x-forwarded-for': '203.0.113.1' });
    assert.equal(proxied.status, 403, 'the same API-key rule as /api/publish');
    await Promise.all([lhttp.close(), json.close()]);
    await herald.close();
  });
});

describe('lhttp.paths patterns (the original speaks LHTTP on every path)', () => {
  it('"/*" serves the JavaScript SDK README\'s ws://host/chat and any other path; wsPath stays JSON', async () => {
    const herald = await startHerald({ lhttp: { paths: ['/*'] } });
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    // The SDK's chat demo frames, on the README's path and on a deeper one.
    const [chat, deep] = await Promise.all([lhttpClient(herald, '/chat'), lhttpClient(herald, '/rooms/1?x=y')]);
    assert.deepEqual(await exchange(chat, demoSubscribe), []);
    deep.send(demoPublish('hello from a deep path'));
    assert.equal(await chat.next(), 'LHTTP/1.0 chat\r\npublish:chatroom\r\n\r\nhello from a deep path');
    const json = await connect(herald);
    assert.equal((await json.request({ action: 'ping' })).ok, true, 'wsPath still speaks JSON');
    await Promise.all([chat.close(), deep.close(), json.close()]);
    await herald.close();
  });

  it('"/chat/*" is a prefix: /chat/room speaks LHTTP, /chat and /other get 404; a "*" inside a pattern is a config error', async () => {
    const herald = await startHerald({ lhttp: { paths: ['/chat/*', '/echo'] } });
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    const room = await lhttpClient(herald, '/chat/room');
    assert.deepEqual(await exchange(room, demoSubscribe), []);
    assert.equal(internals(herald).hub.subscriberCount('chatroom'), 1);
    for (const path of ['/chat', '/other', '/']) {
      const refused = await upgradeStatus(herald, path);
      assert.equal(refused, 404, `${path} is not an LHTTP path`);
    }
    await room.close();
    await herald.close();
    await assert.rejects(startHerald({ lhttp: { paths: ['/ch*at'] } }), /lhttp\.paths\.0: path "\/ch\*at": "\*" may only end a pattern/);
    await assert.rejects(startHerald({ lhttp: { paths: ['chat'] } }), /lhttp\.paths\.0: path "chat" must start with "\/"/);
  });
});

/** The HTTP status an upgrade on `path` is answered with (101 when it becomes a WebSocket). */
async function upgradeStatus(herald: Herald, path: string): Promise<number> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(`${herald.url}${path}`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (response, socket) => {
      socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    req.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('POST /publish whatever the content type (curl -d and PHP curl send form-urlencoded)', () => {
  it('publishes the raw body byte for byte with form-urlencoded, JSON, no content type and the Go helper\'s text/plain', async () => {
    const herald = await startHerald();
    herald.lhttp.register('marker', { onMessage: (h) => h.send('') });
    const reader = await lhttpClient(herald);
    await exchange(reader, L('s', [['subscribe', 'news']]));
    // Characters a form parser would change: + %20 & = ; a body that is not valid JSON either.
    const body = (n: number): string => `LHTTP/1.0 notice\r\npublish:news\r\nk:a=b&c\r\n\r\nn=${n} 1+1%20=2 & {not json`;
    const senders: Array<[string, Record<string, string>]> = [
      // curl -d '...' http://host/publish
      ['curl -d', { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'curl/8.5.0', accept: '*/*' }],
      // PHP: curl_setopt($ch, CURLOPT_POSTFIELDS, $string)
      ['PHP curl', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['JSON', { 'content-type': 'application/json' }],
      // The original's Go Publish helper (tools.go)
      ['Go helper', { 'content-type': 'text/plain', 'user-agent': 'Go-http-client/1.1' }],
      ['binary', { 'content-type': 'application/octet-stream' }],
    ];
    for (const [index, [who, headers]] of senders.entries()) {
      const answer = await http(herald, 'POST', '/publish', body(index), headers);
      assert.equal(answer.status, 200, who);
      assert.equal(answer.text, '', who);
      assert.equal(await reader.next(), body(index), `${who}: byte for byte`);
    }
    // No content type at all (a raw socket client, as a Go client with no header would send).
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${herald.url}/publish`, { method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body(9))) } });
      req.on('response', (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body(9));
    });
    assert.equal(status, 200);
    assert.equal(await reader.next(), body(9));
    // Not LHTTP, whatever its type: 400, and nothing published.
    const form = await http(herald, 'POST', '/publish', 'uid=1&message=x', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 400);
    assert.match(form.body.error.message, /not an LHTTP message/);
    assert.deepEqual(await exchange(reader, L('m', [['x', 'y']])), []);
    await reader.close();
    await herald.close();
  });
});
