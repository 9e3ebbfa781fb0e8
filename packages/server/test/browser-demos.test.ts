import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Herald } from '../src/index.js';
import { assertFits, NPM_START_CONFIG, openAs, openIn, PHONE, shot, useBrowser } from './browser.js';
import { http, startHerald } from './helpers.js';

const PAGES = ['/', '/chat.html', '/danmaku.html', '/task.html', '/bookings.html', '/playground.html', '/dashboard'];

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
    assert.deepEqual(links, ['/chat.html', '/danmaku.html', '/task.html', '/bookings.html', '/playground.html', '/dashboard']);
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

  it('danmaku: a comment typed in one window flies across the other, and under the stress button no two comments ever overlap', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const viewer = await open('/danmaku.html?room=test');
    const sender = await open('/danmaku.html?room=test');
    await viewer.waitForSelector('.state.connected');
    await sender.waitForSelector('.state.connected');
    await sender.fill('#comment', 'what a goal');
    await sender.press('#comment', 'Enter');
    await viewer.waitForSelector('#stage .comment >> text=what a goal');
    await viewer.waitForSelector('#recent li >> text=what a goal');
    await shot(viewer, 'danmaku');

    await sender.click('#stress');
    // Lanes: no two comments on stage overlap, checked again and again while 200 a second arrive.
    // What a viewer sees: each comment's box clipped to the stage (a comment off stage is not drawn).
    const overlaps = (): Promise<string[]> =>
      viewer.$eval('#stage', (stage) => {
        const area = stage.getBoundingClientRect();
        const items = [...stage.querySelectorAll('.comment')];
        const boxes = items.map((item) => {
          const box = item.getBoundingClientRect();
          return { left: Math.max(box.left, area.left), right: Math.min(box.right, area.right), top: box.top, bottom: box.bottom };
        });
        const found: string[] = [];
        for (let i = 0; i < boxes.length; i++) {
          for (let j = i + 1; j < boxes.length; j++) {
            const [a, b] = [boxes[i]!, boxes[j]!];
            if (a.left >= a.right || b.left >= b.right) continue;
            if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) found.push(`${items[i]!.textContent} / ${items[j]!.textContent}`);
          }
        }
        return found;
      });
    let checks = 0;
    while (Number(await viewer.textContent('#received')) < 1001) {
      assert.deepEqual(await overlaps(), [], 'comments overlap');
      checks++;
      await viewer.evaluate('new Promise((resolve) => requestAnimationFrame(resolve))');
    }
    assert.ok(checks > 5, `the stage was checked ${checks} times during the stress`);
    assert.deepEqual(await overlaps(), []);
    // 200 a second for 5 seconds: every one reaches the other window, none is refused.
    await sender.waitForFunction("Number(document.getElementById('sent').textContent) === 1001");
    assert.equal(await sender.textContent('#refused'), '0');
    await Promise.all([viewer.context().close(), sender.context().close()]);
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
      if (path === '/dashboard') await page.waitForSelector('#chart-rate .tick');
      if (path === '/danmaku.html' || path === '/task.html') await page.waitForSelector('.state.connected');
      await assertFits(page, path);
      await shot(page, `phone${path === '/' ? '-index' : `-${path.slice(1).replace('.html', '')}`}`, true);
    }
    await context.close();
  });
});
