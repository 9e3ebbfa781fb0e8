import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Herald } from '../src/index.js';
import { useBrowser } from './browser.js';
import { http, startHerald } from './helpers.js';

const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url));

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
    await page.fill('#publish-topic', 'browser-news');
    await page.fill('#publish-message', '{"text":"typed in the page"}');
    await page.click('#publish-form button');
    await page.waitForSelector('#log li.in >> text="message":{"text":"typed in the page"}');

    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'browser-news', message: { from: 'backend' } })).status, 200);
    await page.waitForSelector('#log li.in >> text={"action":"publish","topic":"browser-news","message":{"from":"backend"}}');
    assert.equal(await page.locator('#topics li').count(), 1);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}playground.png` });
    await page.close();
  });
});
