import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { assertFits, NPM_START_CONFIG, openIn, PHONE, shot, useBrowser } from '../helpers/browser.js';
import { http, startHerald } from '../helpers/helpers.js';

const PAGES = ['/', '/chat.html', '/danmaku.html', '/task.html', '/bookings.html', '/stream.html', '/playground.html', '/dashboard'];

describe('demo pages at a phone’s width in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ ...NPM_START_CONFIG });
  });
  after(() => herald.close());

  it('at a phone’s width (390 px) no page is wider than the screen', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const context = await chromium.browser()!.newContext({ viewport: PHONE });
    const page = await openIn(context, herald, '/');
    for (const path of PAGES) {
      await page.goto(`${herald.url}${path}`);
      if (path === '/chat.html') {
        await page.fill('#nick', 'Phone');
        await page.click('#nick-form button');
        await page.waitForSelector('#message:not([disabled])');
      }
      if (path === '/playground.html') {
        await page.waitForSelector('.state.connected');
        await page.fill('#subscribe-topic', 'a-rather-long-topic-name:for-a-small-screen');
        await page.click('#subscribe-form button');
        await page.waitForSelector('#topics li.subscribed');
      }
      if (path === '/bookings.html') {
        assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'bookings', message: { id: 1, show: 'The Magic Flute', customer: 'Grace', seats: 2, amount: 150 } })).status, 200);
        await page.waitForSelector('#bookings tr');
      }
      if (path === '/stream.html') {
        await page.click('#send');
        await page.waitForFunction("Number(document.querySelector('#answer').dataset.seq) >= 30", undefined, { timeout: 20_000 });
      }
      if (path === '/dashboard') await page.waitForSelector('#chart-rate .tick');
      if (path === '/danmaku.html' || path === '/task.html') await page.waitForSelector('.state.connected');
      await assertFits(page, path);
      await shot(page, `phone${path === '/' ? '-index' : `-${path.slice(1).replace('.html', '')}`}`, true);
    }
    await context.close();
  });
});
