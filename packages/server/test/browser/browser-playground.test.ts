import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { assertFits, PHONE, shot, useBrowser } from '../helpers/browser.js';
import { http, startHerald } from '../helpers/helpers.js';

describe('demo playground in headless Chromium', () => {
  let herald: Herald;
  const chromium = useBrowser();
  before(async () => {
    herald = await startHerald({ demo: { enabled: true } });
  });
  after(() => herald.close());

  it('serves the playground, which subscribes, publishes and shows frames from the HTTP API', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`${herald.url}/playground.html`);
    await page.waitForSelector('.state.connected');
    await page.fill('#subscribe-topic', 'browser-news');
    await page.click('#subscribe-form button');
    await page.waitForSelector('#topics li.subscribed[data-topic="browser-news"]');
    await page.fill('#publish-topic', 'browser-news');
    await page.fill('#publish-message', '{"text":"typed in the page"}');
    await page.click('#publish-form button');
    await page.waitForSelector('#log li.in >> text="message":{"text":"typed in the page"}');

    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'browser-news', message: { from: 'backend' } })).status, 200);
    await page.waitForSelector('#log li.in >> text={"action":"publish","topic":"browser-news","message":{"from":"backend"}}');
    assert.equal(await page.locator('#topics li').count(), 1);
    await shot(page, 'playground');
    await page.close();
  });

  it('shows a refused subscription as refused, and after a reconnect subscribes again topic by topic', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const first = await startHerald({ demo: { enabled: true } });
    const { port } = first.address;
    const page = await browser.newPage({ viewport: PHONE });
    await page.goto(`${first.url}/playground.html`);
    await page.waitForSelector('.state.connected');
    for (const topic of ['alpha', 'not a topic', 'beta']) {
      await page.fill('#subscribe-topic', topic);
      await page.click('#subscribe-form button');
    }
    await page.waitForSelector('#topics li.refused[data-topic="not a topic"]');
    assert.equal(await page.textContent('#topics li.refused .why'), 'invalid_topic');
    assert.match((await page.getAttribute('#topics li.refused', 'title'))!, /^refused: /);
    await page.waitForSelector('#topics li.subscribed[data-topic="alpha"]');
    await page.waitForSelector('#topics li.subscribed[data-topic="beta"]');
    await assertFits(page, 'playground with a refused topic');
    await shot(page, 'playground-refused-phone', true);

    // The server goes away and comes back: the chips wait, then the good topics are subscribed again.
    await first.close();
    await page.waitForSelector('.state.disconnected');
    await page.waitForSelector('#topics li.pending[data-topic="alpha"]');
    const second = await startHerald({ demo: { enabled: true }, port });
    try {
      await page.waitForSelector('#topics li.subscribed[data-topic="beta"]', { timeout: 30_000 });
      await page.waitForSelector('#topics li.subscribed[data-topic="alpha"]');
      assert.equal(await page.getAttribute('[data-topic="not a topic"]', 'class'), 'refused', 'a refused topic stays refused, and is not sent again');
      assert.equal((await http(second, 'POST', '/api/publish', { topic: 'beta', message: { after: 'reconnect' } })).status, 200);
      await page.waitForSelector('#log li.in >> text={"action":"publish","topic":"beta","message":{"after":"reconnect"}}');
      const resent = await page.$$eval('#log li.out code', (items) => items.map((item) => JSON.parse(item.textContent!)).filter((frame) => frame.action === 'subscribe'));
      assert.ok(resent.every((frame) => typeof frame.topic === 'string' && frame.topics === undefined), 'one topic per subscribe command');
      assert.equal(resent.filter((frame) => frame.topic === 'not a topic').length, 1, 'the refused topic was asked for once');
    } finally {
      await page.close();
      await second.close();
    }
  });
});
