import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { rawPayload } from '../../src/broker/envelope.js';
import { upstreamAllowed } from '../../src/protocols/lhttp/builtins.js';
import { escapeJsonText } from '../../src/util/json.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

const XSS = '<img src=x onerror="alert(1)">&\u2028\u2029</script>';
const UNSAFE = /[<>&\u2028\u2029]/;

/** The text of every frame a client receives, as it came off the wire. */
function wireTexts(client: TestClient): string[] {
  const texts: string[] = [];
  client.ws.on('message', (data) => texts.push((data as Buffer).toString('utf8')));
  return texts;
}

describe("Herald's JSON output escapes < > & U+2028 U+2029 (as Go's encoder does)", () => {
  let herald: Herald;
  before(async () => {
    herald = await startHerald({
      auth: { jwt: { secret: SECRET } },
      presence: [{ pattern: 'room', joinLeave: true }],
      history: [{ pattern: 'room' }],
    });
  });
  after(() => herald.close());

  it('a publisher\'s <img onerror=...> reaches subscribers escaped, as the same JSON value, from every source', async () => {
    const subscriber = await connect(herald);
    const texts = wireTexts(subscriber);
    await subscriber.request({ action: 'subscribe', topic: 'room' });
    const publisher = await connect(herald);
    await publisher.request({ action: 'publish', topic: 'room', message: { html: XSS } });
    await http(herald, 'POST', '/api/publish', { topic: 'room', message: XSS });
    await herald.publish('room', [XSS]);
    const lhttp = await connect(herald, { path: '/', protocols: 'lhttp' });
    lhttp.send(`LHTTP/1.0 chat\r\npublish:room\r\n\r\n${XSS}`);
    const frames = await subscriber.collect(4);
    const publications = frames.filter((frame) => frame.action === 'publish');
    assert.deepEqual(publications.map((frame) => frame.message), [{ html: XSS }, XSS, [XSS], XSS]);
    const wire = texts.filter((text) => text.includes('"publish"') && text.includes('"room"') && text.includes('img'));
    assert.equal(wire.length, 4);
    for (const text of wire) {
      assert.doesNotMatch(text, UNSAFE, text);
      assert.ok(text.includes('\\u003cimg src=x onerror=\\"alert(1)\\"\\u003e\\u0026\\u2028\\u2029\\u003c/script\\u003e'), text);
    }
    await Promise.all([subscriber.close(), publisher.close(), lhttp.close()]);
  });

  it('a topic name with & (topics are printable Unicode) is escaped in the frames that name it', async () => {
    const subscriber = await connect(herald);
    const texts = wireTexts(subscriber);
    const reply = await subscriber.request({ action: 'subscribe', topic: 'a&b' });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    await herald.publish('a&b', 1);
    const frame = await subscriber.next();
    assert.deepEqual(frame, { action: 'publish', topic: 'a&b', message: 1 });
    assert.ok(texts.length >= 2);
    for (const text of texts) assert.doesNotMatch(text, UNSAFE, text);
    assert.ok(texts.some((text) => text.startsWith('{"action":"publish","topic":"a\\u0026b"')), texts.join('\n'));
    await subscriber.close();
  });

  it('presence events, replies, error frames and HTTP answers are escaped too', async () => {
    const watcher = await connect(herald);
    const texts = wireTexts(watcher);
    await watcher.request({ action: 'subscribe', topic: 'room' });
    const token = await signToken({ sub: 'u1', info: { name: XSS } });
    const joiner = await connect(herald, { path: `/ws?token=${token}` });
    await joiner.request({ action: 'subscribe', topic: 'room' });
    const join = await watcher.next();
    assert.equal(join.action, 'join');
    assert.equal(join.info.info.name, XSS);
    const error = await watcher.request({ action: '<b>' });
    assert.equal(error.error.code, 'unknown_action');
    assert.match(error.error.message, /<b>/);
    const presence = await watcher.request({ action: 'presence', topic: 'room' });
    assert.ok(JSON.stringify(presence).includes(XSS.replace(/"/g, '\\"')));
    for (const text of texts) assert.doesNotMatch(text, UNSAFE, text);

    await http(herald, 'POST', '/api/publish', { topic: 'room', message: XSS });
    const history = await http(herald, 'GET', '/api/history?topic=room');
    assert.ok(history.body.publications.some((p: { message: unknown }) => p.message === XSS));
    assert.doesNotMatch(history.text, UNSAFE, history.text);
    const notFound = await http(herald, 'GET', '/api/<script>');
    assert.equal(notFound.status, 404);
    assert.doesNotMatch(notFound.text, UNSAFE, notFound.text);
    await Promise.all([watcher.close(), joiner.close()]);
  });

  it('a raw broker payload (another publisher\'s JSON) is escaped once, when it arrives', () => {
    assert.equal(rawPayload('{"a":"<b>&"}'), '{"a":"\\u003cb\\u003e\\u0026"}');
    assert.equal(rawPayload('not json <b>'), '"not json \\u003cb\\u003e"');
    assert.deepEqual(JSON.parse(escapeJsonText(JSON.stringify({ [XSS]: XSS }))), { [XSS]: XSS });
  });
});

describe('the LHTTP upstream allow-list compares normalised URLs', () => {
  const allow = ['https://api.example.com/hooks/', 'https://api.example.com/exact'];
  const cases: Array<[string, boolean]> = [
    ['https://api.example.com/hooks/order', true],
    ['https://api.example.com/hooks/a%20b', true],
    ['https://api.example.com/exact', true],
    ['https://api.example.com/exact/sub', true],
    ['https://api.example.com/hooks/..%2Fadmin', false],
    ['https://api.example.com/hooks/..%2fadmin', false],
    ['https://api.example.com/hooks/%2e%2e/admin', false],
    ['https://api.example.com/hooks/%2e%2e%2Fadmin', false],
    ['https://api.example.com/hooks/%252e%252e%252fadmin', false],
    ['https://api.example.com/hooks/..%5Cadmin', false],
    ['https://api.example.com/hooks/../admin', false],
    ['https://api.example.com/exactly', false],
    ['https://api.example.com.evil.example/hooks/x', false],
    ['https://user:pw@api.example.com/hooks/x', false],
    ['http://api.example.com/hooks/x', false],
    ['https://api.example.com:8443/hooks/x', false],
  ];
  for (const [url, expected] of cases) {
    it(`${expected ? 'allows' : 'refuses'} ${url}`, () => {
      assert.equal(upstreamAllowed(new URL(url), allow), expected);
    });
  }

  describe('over a real connection', () => {
    let backend: Server;
    let base: string;
    const received: string[] = [];
    before(async () => {
      backend = createServer((request, response) => {
        received.push(request.url!);
        response.end('answered');
      });
      await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    });
    after(() => backend.close());

    it('upstream:POST <prefix>..%2F<elsewhere> is refused and never sent', async () => {
      const herald = await startHerald({ lhttp: { upstream: { allow: [`${base}/hooks/`], reply: true } } });
      const client = await connect(herald, { path: '/', protocols: 'lhttp' });
      client.send(`LHTTP/1.0 x\r\nupstream:POST ${base}/hooks/..%2Fadmin\r\n\r\nbody`);
      assert.equal(await client.next(), `LHTTP/1.0 error\r\ncode:forbidden\r\n\r\nupstream to ${base} is not allowed (lhttp.upstream.allow)`);
      client.send(`LHTTP/1.0 x\r\nupstream:POST ${base}/hooks/fine\r\n\r\nbody`);
      assert.equal(await client.next(), 'LHTTP/1.0 upstream\r\nstatus:200\r\n\r\nanswered');
      assert.deepEqual(received, ['/hooks/fine']);
      await client.close();
      await herald.close();
    });
  });
});
