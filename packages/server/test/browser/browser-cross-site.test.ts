import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { useBrowser } from '../helpers/browser.js';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';

/** GET with exactly these headers (fetch will not send a Host of our choosing); resolves with the status and body. */
function getWithHost(base: string, path: string, host: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${base}${path}`, { headers: { host } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
    });
    request.on('error', reject);
    request.end();
  });
}

/**
 * The key-less API trusts programs on this machine; a browser on this machine
 * runs pages of every site. A page of another site must not publish or read
 * through the user's browser.
 */
describe('the key-less API and browser pages of other sites (headless Chromium)', () => {
  let herald: Herald;
  let subscriber: TestClient;
  let site: Server;
  let siteUrl: string;
  const chromium = useBrowser();

  before(async () => {
    herald = await startHerald();
    subscriber = await connect(herald);
    await subscriber.request({ action: 'subscribe', topic: 'victim' });
    // Another site: a page on localhost (a different site from Herald's 127.0.0.1) that tries everything.
    const target = herald.url;
    const page = `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<form id="form" method="post" action="${target}/api/publish" enctype="application/x-www-form-urlencoded">
  <input name="topic" value="victim"><input name="message" value="form-post">
</form>
<form id="plain" method="post" action="${target}/api/publish" enctype="text/plain">
  <input name='{"topic":"victim","message":"text-plain","x":"' value='"}'>
</form>
<script>
window.attempts = async () => {
  const out = {};
  const tryFetch = async (name, url, init) => {
    try {
      const response = await fetch(url, init);
      out[name] = response.type === 'opaque' ? 'opaque' : response.status + ' ' + (await response.text());
    } catch (err) {
      out[name] = 'blocked: ' + err.message;
    }
  };
  await tryFetch('status', '${target}/api/status');
  await tryFetch('jsonPublish', '${target}/api/publish', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'victim', message: 'fetch-json' }) });
  await tryFetch('noCorsPublish', '${target}/api/publish', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ topic: 'victim', message: 'no-cors' }) });
  await tryFetch('seedPublish', '${target}/publish', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: 'LHTTP/1.0 chat\\r\\npublish:victim\\r\\n\\r\\nseed-publish' });
  await tryFetch('history', '${target}/api/history?topic=victim');
  return out;
};
</script>`;
    site = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end(page));
    site.listen(0, '127.0.0.1');
    await once(site, 'listening');
    siteUrl = `http://localhost:${(site.address() as AddressInfo).port}/`;
  });
  after(async () => {
    site.close();
    await subscriber.close();
    await herald.close();
  });

  /** Nothing reached the subscriber: the next frame it sees is a marker published now from this machine. */
  async function nothingPublished(): Promise<void> {
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'victim', message: 'marker' })).status, 200);
    const frame = await subscriber.next();
    assert.equal(frame.message, 'marker', `a page of another site published ${JSON.stringify(frame)}`);
  }

  it('a form POST from another site cannot publish (urlencoded or text/plain)', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const page = await browser.newPage();
    await page.goto(siteUrl);
    for (const form of ['form', 'plain']) {
      await page.goto(siteUrl);
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/api/publish')), page.evaluate(`document.getElementById('${form}').submit()`)]);
      assert.equal(response.status(), 403, `${form}: ${await response.text()}`);
    }
    await page.close();
    await nothingPublished();
  });

  it('fetch from another site can neither read nor publish, with or without CORS', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const page = await browser.newPage();
    await page.goto(siteUrl);
    const results = (await page.evaluate('window.attempts()')) as Record<string, string>;
    // Reads get no answer the page can see (no CORS grant), and the server refused them anyway (below).
    assert.match(results.status!, /^blocked/);
    assert.match(results.history!, /^blocked/);
    // application/json needs a preflight, which Herald never grants.
    assert.match(results.jsonPublish!, /^blocked/);
    assert.equal(results.noCorsPublish, 'opaque');
    assert.equal(results.seedPublish, 'opaque');
    await page.close();
    await nothingPublished();
  });

  it('the server refuses what such pages send, before it does anything', async () => {
    // What Chromium sends for those requests (checked above end to end), replayed to read the answers.
    const crossSite = { origin: 'http://localhost:1234', 'sec-fetch-site': 'cross-site' };
    assert.equal((await http(herald, 'GET', '/api/status', undefined, { 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'victim', message: 'x' }, crossSite)).status, 403);
    assert.equal((await http(herald, 'POST', '/publish', 'LHTTP/1.0 chat\r\npublish:victim\r\n\r\nx', { ...crossSite, 'content-type': 'text/plain' })).status, 403);
    assert.equal((await http(herald, 'POST', '/send', 'uid=nobody&message=x', { ...crossSite, 'content-type': 'application/x-www-form-urlencoded' })).status, 403);
    assert.equal((await http(herald, 'GET', '/send?uid=nobody&message=x', undefined, { 'sec-fetch-site': 'same-site' })).status, 403);
    // An Origin without Sec-Fetch-Site (older browsers) is enough, and so is the opaque origin "null".
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'victim', message: 'x' }, { origin: 'https://evil.example' })).status, 403);
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'victim', message: 'x' }, { origin: 'null' })).status, 403);
    // A page of Herald's own origin (the dashboard) and programs without browser headers are answered.
    const own = { origin: herald.url, 'sec-fetch-site': 'same-origin' };
    assert.equal((await http(herald, 'GET', '/api/status', undefined, own)).status, 200);
    await nothingPublished();
  });

  it('a rebinding Host (a name that is not loopback nor in allowedHosts) is refused', async () => {
    const answer = await getWithHost(herald.url, '/api/status', 'rebind.attacker.example');
    assert.equal(answer.status, 403);
    assert.match(answer.body.error.message, /Host "rebind\.attacker\.example"/);
    // Names that only look like loopback addresses are DNS names too: whoever owns them can re-point them at 127.0.0.1.
    for (const host of ['127.0.0.1.cafe', `127.0.0.1.fdcbe.de:${herald.port}`, '127.1.2.3.dead.beef', '[::1].evil.example']) {
      assert.equal((await getWithHost(herald.url, '/api/status', host)).status, 403, host);
    }
    for (const host of ['localhost', `localhost:${herald.port}`, `127.0.0.1:${herald.port}`, `[::1]:${herald.port}`, 'app.localhost']) {
      assert.equal((await getWithHost(herald.url, '/api/status', host)).status, 200, host);
    }
    const named = await startHerald({ allowedHosts: ['herald.internal'] });
    assert.equal((await getWithHost(named.url, '/api/status', 'herald.internal:8080')).status, 200);
    assert.equal((await getWithHost(named.url, '/api/status', 'other.internal')).status, 403);
    await named.close();
  });

  it('/api/* takes application/json bodies only: anything else is 415', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x']) {
      const answer = await http(herald, 'POST', '/api/publish', 'topic=victim&message=x', { 'content-type': type });
      assert.equal(answer.status, 415, type);
      assert.equal(answer.body.error.code, 'bad_request');
    }
    // Decided by the route reached, not by how its path is spelt: /%61pi/publish is /api/publish.
    for (const path of ['/%61pi/publish', '/api/%70ublish', '/%61pi/send']) {
      const answer = await http(herald, 'POST', path, 'topic=victim&uid=victim&message=x', { 'content-type': 'application/x-www-form-urlencoded' });
      assert.equal(answer.status, 415, path);
    }
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'victim', message: 'json' }, { 'content-type': 'application/json; charset=utf-8' })).status, 200);
    assert.equal((await subscriber.next()).message, 'json');
  });
});
