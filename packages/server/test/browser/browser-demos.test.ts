import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Herald } from '../../src/index.js';
import { NPM_START_CONFIG, openAs, shot, useBrowser } from '../helpers/browser.js';
import { http, startHerald } from '../helpers/helpers.js';

const PAGES = ['/', '/chat.html', '/danmaku.html', '/task.html', '/bookings.html', '/stream.html', '/playground.html', '/dashboard'];

describe('demo apps in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ ...NPM_START_CONFIG });
  });
  after(() => herald.close());

  const open = (path: string): Promise<Page> => openAs(chromium.browser()!, herald, path);

  it('index links to every demo, each served, each page with an inline SVG favicon', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const index = await open('/');
    const links = await index.$$eval('a.demo', (anchors) => anchors.map((anchor) => anchor.getAttribute('href')));
    assert.deepEqual(links, ['/chat.html', '/danmaku.html', '/task.html', '/bookings.html', '/stream.html', '/playground.html', '/dashboard']);
    for (const link of links) assert.equal((await http(herald, 'GET', link!)).status, 200, link!);
    for (const path of PAGES) {
      await index.goto(`${herald.url}${path}`);
      const icon = await index.getAttribute('link[rel="icon"]', 'href');
      assert.ok(icon?.startsWith('data:image/svg+xml,'), `${path}: favicon is an inline SVG (no fetch), not ${icon}`);
    }
    await index.goto(`${herald.url}/`);
    await shot(index, 'index');
    await index.context().close();
  });

  it('task progress: the bar reaches 100 % from pushes to the page’s uid', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const page = await open('/task.html?uid=test-user');
    const second = await open('/task.html?uid=test-user');
    await page.waitForSelector('#start:not([disabled])');
    await second.waitForSelector('.state.connected');
    await page.click('#start');
    await page.waitForSelector('.task.done .bar[aria-valuenow="100"]');
    // The same user's other tab got the same pushes.
    await second.waitForSelector('.task.done .bar[aria-valuenow="100"]');
    // And a push from a backend through the HTTP API shows too.
    const sent = await http(herald, 'POST', '/api/send', { uid: 'test-user', message: { task: 'from-backend', progress: 60 } });
    assert.equal(sent.status, 200);
    await page.waitForSelector('.task[data-task="from-backend"] .bar[aria-valuenow="60"]');
    await shot(page, 'task');
    await Promise.all([page.context().close(), second.context().close()]);
  });

});
