import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { useBrowser } from '../helpers/browser.js';
import { http, startHerald, wsUrl } from '../helpers/helpers.js';

/** A page that imports the SDK from Herald's /client.js, subscribes, and shows what it receives in `window.received`. */
function page(herald: Herald, topic: string): string {
  return `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<script type="module">
  import { HeraldClient } from '${herald.url}/client.js';
  window.received = [];
  const client = new HeraldClient({ url: '${wsUrl(herald)}' });
  const subscription = client.subscribe(${JSON.stringify(topic)});
  subscription.on('message', ({ message }) => window.received.push(message));
  client.connect();
  subscription.ready.then(() => { window.subscribed = true; }, (err) => { window.failed = String(err); });
</script>`;
}

describe('/client.js imported by a page on another origin', () => {
  const chromium = useBrowser();
  let herald: Herald;
  let site: Server;
  let siteUrl: string;

  before(async () => {
    herald = await startHerald();
    // The page's own origin: another port, so another origin than Herald's.
    site = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(page(herald, 'cross-origin'));
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((resolve) => site.close(() => resolve())));

  for (const where of ['http', 'file'] as const) {
    it(`works from ${where === 'http' ? 'an http page on another origin' : 'a file:// page'}`, async (t) => {
      const browser = chromium.browser();
      if (!browser) return t.skip(chromium.skipped());
      const context = await browser.newContext();
      const tab = await context.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (err) => errors.push(err.message));
      tab.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      let url = siteUrl;
      if (where === 'file') {
        const dir = mkdtempSync(join(tmpdir(), 'herald-file-page-'));
        writeFileSync(join(dir, 'index.html'), page(herald, 'cross-origin'));
        url = pathToFileURL(join(dir, 'index.html')).href;
      }
      await tab.goto(url);
      assert.notEqual(new URL(tab.url()).origin, new URL(herald.url).origin);
      await tab.waitForFunction(() => (globalThis as any).subscribed === true || (globalThis as any).failed, undefined, { timeout: 10_000 }).catch(() => {
        throw new Error(`the page did not subscribe: ${errors.join(' | ')}`);
      });
      const message = { from: where, n: Math.random() };
      assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'cross-origin', message })).status, 200);
      await tab.waitForFunction((n) => (globalThis as any).received.some((m: { n: number }) => m.n === n), message.n, { timeout: 10_000 });
      assert.deepEqual(errors, []);
      await context.close();
    });
  }

  it('answers /client.js with CORS headers', async () => {
    const answer = await http(herald, 'GET', '/client.js', undefined, { origin: 'https://elsewhere.example' });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('access-control-allow-origin'), '*');
    assert.equal(answer.headers.get('cross-origin-resource-policy'), 'cross-origin');
  });
});
