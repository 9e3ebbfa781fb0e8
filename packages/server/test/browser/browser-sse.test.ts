import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { useBrowser } from '../helpers/browser.js';
import { startHerald } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/** What the page's EventSource saw. */
interface Seen {
  got: Array<{ message: number; offset: number; epoch: string; id: string }>;
  subscribes: Array<Record<string, unknown>>;
  closes: Array<{ code: number; reason: string }>;
  opens: number;
}

describe('SSE in Chromium: a bare EventSource', () => {
  const chromium = useBrowser();
  let site: Server;
  let siteUrl: string;

  before(async () => {
    // The page's own origin: another port than Herald's.
    site = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end('<!doctype html><meta charset="utf-8"><title>reader</title>');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((resolve) => site.close(() => resolve())));

  it('receives; when the server drops the stream, reconnects by itself with Last-Event-ID and resumes with no gap and no repeat', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const herald = await startHerald({ history: [{ pattern: 'h:*', size: 1000 }], auth: { jwt: { secret: SECRET } } });
    const token = await signToken({ sub: 'reader' });
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (err) => errors.push(err.message));
    await tab.goto(siteUrl);
    await tab.evaluate((url) => {
      const page = globalThis as any;
      page.seen = { got: [], subscribes: [], closes: [], opens: 0 };
      const source = new page.EventSource(url);
      source.onopen = () => page.seen.opens++;
      source.onmessage = (event: any) => page.seen.got.push({ ...JSON.parse(event.data), id: event.lastEventId });
      source.addEventListener('subscribe', (event: any) => page.seen.subscribes.push(JSON.parse(event.data)));
      source.addEventListener('close', (event: any) => page.seen.closes.push(JSON.parse(event.data)));
    }, `${herald.url}/sse?topic=h:book&token=${token}`);
    const seen = (): Promise<Seen> => tab.evaluate(() => (globalThis as any).seen as Seen);
    const waitFor = (what: string, check: string): Promise<unknown> =>
      tab.waitForFunction(`(() => { const seen = globalThis.seen; return ${check}; })()`, undefined, { timeout: 10_000 }).catch(async () => {
        throw new Error(`the page never saw ${what}: ${JSON.stringify(await seen())} ${errors.join(' | ')}`);
      });

    await waitFor('its subscribe event', 'seen.subscribes.length === 1');
    for (let n = 1; n <= 5; n++) await herald.publish('h:book', n);
    await waitFor('five publications', 'seen.got.length === 5');

    // The server drops the stream; the page reconnects by itself after the stream's retry: (2 s).
    assert.equal(herald.disconnect('reader'), 1);
    for (let n = 6; n <= 8; n++) await herald.publish('h:book', n);
    await waitFor('a second subscribe event', 'seen.subscribes.length === 2');
    for (let n = 9; n <= 11; n++) await herald.publish('h:book', n);
    await waitFor('the eleventh publication', 'seen.got.some((m) => m.message === 11)');

    const { got, subscribes, closes, opens } = await seen();
    assert.deepEqual(closes, [{ code: 4504, reason: 'disconnected by the server' }]);
    assert.equal(opens, 2);
    assert.equal(subscribes[1]!.recovered, true, 'the reconnect sent Last-Event-ID and the server recovered from it');
    assert.deepEqual(
      got.map((m) => m.message),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      'no gap, no repeat, in order',
    );
    const epoch = got[0]!.epoch;
    assert.deepEqual(
      got.map((m) => m.id),
      got.map((m) => `${m.offset}.${epoch}`),
      "each event's id is its position",
    );
    assert.deepEqual(errors, []);
    await context.close();
    await herald.close();
  });
});
