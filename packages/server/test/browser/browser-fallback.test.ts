import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Herald } from '../../src/index.js';
import { useBrowser } from '../helpers/browser.js';
import { startHerald } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { refusingProxy, type RefusingProxy } from '../helpers/refusing-proxy.js';

/**
 * A page behind the proxy, importing the SDK from /client.js (through the proxy too): it subscribes to
 * `feed` and keeps what it sees in `window.seen`.
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>fallback</title>
<script type="module">
  import { HeraldClient } from '/client.js';
  const client = new HeraldClient({ url: location.origin.replace('http', 'ws') + '/ws', minReconnectDelay: 50, maxReconnectDelay: 300 });
  const seen = (window.seen = { startedWith: client.transport, changes: [], received: [], recovered: [] });
  window.client = client;
  client.on('transport', ({ from, to }) => seen.changes.push(from + '→' + to));
  const feed = client.subscribe('feed');
  feed.on('message', ({ message }) => seen.received.push(message));
  feed.on('subscribed', ({ resubscribed, recovered }) => resubscribed && seen.recovered.push(recovered === true));
  feed.on('recoveryFailed', ({ reason }) => (seen.failed = reason));
  feed.ready.then(() => (seen.ready = true), (err) => (seen.failed = String(err)));
  client.connect();
</script>`;

interface Seen {
  startedWith: string;
  changes: string[];
  received: number[];
  recovered: boolean[];
  ready?: boolean;
  failed?: string;
}

const seen = (page: Page): Promise<Seen> => page.evaluate(() => (globalThis as any).seen as Seen);

describe('the SDK in Chromium, behind a proxy that refuses WebSocket upgrades', () => {
  const chromium = useBrowser();
  let herald: Herald;
  let proxy: RefusingProxy;

  before(async () => {
    herald = await startHerald({ history: [{ pattern: 'feed', size: 10_000, ttl: 600_000 }] });
    proxy = await refusingProxy(herald.url, { '/fallback.html': PAGE });
  });
  after(async () => {
    await proxy.close();
    await herald.close();
  });

  it('falls back to HTTP streaming, subscribes, publishes, recovers after the server drops the stream, and remembers it on reload', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (err) => assert.fail(`the page: ${err.message}`));
    await page.goto(`${proxy.url}/fallback.html`);
    await page.waitForFunction(() => (globalThis as any).seen?.ready || (globalThis as any).seen?.failed, undefined, { timeout: 15_000 });
    let state = await seen(page);
    assert.equal(state.failed, undefined);
    assert.equal(state.startedWith, 'websocket');
    assert.deepEqual(state.changes, ['websocket→http-stream']);
    assert.equal(await page.evaluate(() => (globalThis as any).client.transport), 'http-stream');
    assert.ok(proxy.upgradesRefused >= 1, 'the page did try the WebSocket');

    // The page publishes: a command POST, answered on the stream.
    const published = (await page.evaluate(() => (globalThis as any).client.publish('feed', 1))) as { offset: number };
    assert.equal(published.offset, 1);

    // The server publishes the rest, dropping the page's stream twice on the way.
    const total = 300;
    let drops = 0;
    for (let i = 2; i <= total; i++) {
      await herald.publish('feed', i);
      if (i === 100 || i === 200) {
        assert.equal(internals(herald).sessions.size, 1);
        for (const session of internals(herald).sessions.values()) session.terminate(1006, 'test drops the stream');
        drops++;
        // Publications go on while the page is away; the next drop waits for it to be back.
        for (let j = 0; j < 20; j++) await herald.publish('feed', ++i);
        await page.waitForFunction((n) => (globalThis as any).seen.recovered.length >= n, drops, { timeout: 10_000 });
      }
    }
    await page.waitForFunction((n) => (globalThis as any).seen.received.length >= n, total, { timeout: 20_000 });
    state = await seen(page);
    assert.deepEqual(state.received, Array.from({ length: total }, (_, i) => i + 1), 'every publication once, in order');
    assert.equal(state.failed, undefined);
    assert.ok(state.recovered.length >= 2 && state.recovered.every(Boolean), `recovered after each drop (${JSON.stringify(state.recovered)})`);
    assert.equal(await page.evaluate(() => (globalThis as any).client.transport), 'http-stream');

    // A reload starts with what worked (sessionStorage): no WebSocket attempt, no wait.
    const refused = proxy.upgradesRefused;
    await page.reload();
    await page.waitForFunction(() => (globalThis as any).seen?.ready || (globalThis as any).seen?.failed, undefined, { timeout: 15_000 });
    state = await seen(page);
    assert.equal(state.startedWith, 'http-stream');
    assert.deepEqual(state.changes, []);
    assert.equal(proxy.upgradesRefused, refused);
    await context.close();
  });
});

describe('the SDK in Chromium when only SSE gets through', () => {
  const chromium = useBrowser();
  let herald: Herald;
  let proxy: RefusingProxy;

  before(async () => {
    herald = await startHerald({ history: [{ pattern: 'feed' }, { pattern: 'other' }] });
    // WebSocket upgrades refused, and POST /stream (HTTP streaming) not passed either.
    proxy = await refusingProxy(herald.url, { '/fallback.html': PAGE }, ['/stream']);
  });
  after(async () => {
    await proxy.close();
    await herald.close();
  });

  it('receives over SSE: commands reject as receive-only, a dropped stream resumes from its positions, a subscribe reopens it', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (err) => assert.fail(`the page: ${err.message}`));
    await page.goto(`${proxy.url}/fallback.html`);
    await page.waitForFunction(() => (globalThis as any).seen?.ready || (globalThis as any).seen?.failed, undefined, { timeout: 15_000 });
    let state = await seen(page);
    assert.equal(state.failed, undefined);
    assert.deepEqual(state.changes, ['websocket→http-stream', 'http-stream→sse']);
    assert.equal(await page.evaluate(() => (globalThis as any).client.transport), 'sse');
    assert.equal(
      await page.evaluate(() => (globalThis as any).client.publish('feed', 'from the page').then(() => 'published', (err: { code: string }) => err.code)),
      'receive_only',
    );

    let drops = 0;
    for (let i = 1; i <= 200; i++) {
      await herald.publish('feed', i);
      if (i === 80) {
        assert.equal(internals(herald).sessions.size, 1);
        for (const session of internals(herald).sessions.values()) session.terminate(1006, 'test drops the stream');
        drops++;
        for (let j = 0; j < 20; j++) await herald.publish('feed', ++i);
        await page.waitForFunction((n) => (globalThis as any).seen.recovered.length >= n, drops, { timeout: 10_000 });
      }
    }
    await page.waitForFunction(() => (globalThis as any).seen.received.length >= 200, undefined, { timeout: 20_000 });
    state = await seen(page);
    assert.deepEqual(state.received, Array.from({ length: 200 }, (_, i) => i + 1), 'every publication once, in order');
    assert.deepEqual(state.recovered, [true]);

    // A second topic: the stream reopens with both; feed goes on from where it was, without a repeat.
    await page.evaluate(() => {
      const { client, seen } = globalThis as any;
      seen.other = [];
      const other = client.subscribe('other');
      other.on('message', ({ message }: { message: unknown }) => seen.other.push(message));
      return other.ready;
    });
    await herald.publish('other', 'o1');
    await herald.publish('feed', 201);
    await page.waitForFunction(() => (globalThis as any).seen.other.length === 1 && (globalThis as any).seen.received.length === 201, undefined, { timeout: 10_000 });
    state = await seen(page);
    assert.deepEqual(state.received.slice(-2), [200, 201]);
    assert.equal(state.received.length, 201);
    await context.close();
  });
});
