import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { useBrowser } from './browser.js';
import { connect, startHerald } from './helpers.js';

const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url));

describe('dashboard in headless Chromium', () => {
  const chromium = useBrowser();

  it('shows the connection count change when a page opens, and publishes from its box', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const herald = await startHerald({ demo: { enabled: true } });
    const dashboard = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await dashboard.goto(`${herald.url}/dashboard`);
    await dashboard.waitForSelector('.state.connected');
    await dashboard.waitForFunction("document.getElementById('connections').textContent === '0'");
    assert.equal(await dashboard.isVisible('#key-form'), false, 'no key asked for when the server has none');

    // Another page opens a connection (the playground): the dashboard sees it.
    const playground = await browser.newPage();
    await playground.goto(`${herald.url}/playground.html`);
    await playground.waitForSelector('.state.connected');
    await dashboard.waitForFunction("document.getElementById('connections').textContent === '1'");

    const subscriber = await connect(herald);
    await subscriber.request({ action: 'subscribe', topic: 'from-dashboard' });
    await dashboard.waitForSelector('#busiest td >> text=from-dashboard');
    await dashboard.fill('#publish-topic', 'from-dashboard');
    await dashboard.fill('#publish-message', '{"hello":"ops"}');
    await dashboard.click('#publish-form button');
    assert.deepEqual(await subscriber.next(), { action: 'publish', topic: 'from-dashboard', message: { hello: 'ops' } });
    await dashboard.waitForSelector('#publish-result >> text=published');
    mkdirSync(ARTIFACTS, { recursive: true });
    await dashboard.screenshot({ path: `${ARTIFACTS}dashboard.png` });
    await Promise.all([dashboard.close(), playground.close(), subscriber.close()]);
    await herald.close();
  });

  it('asks for the API key when the server has keys, and works with it', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const herald = await startHerald({ demo: { enabled: true }, apiKeys: ['dashboard-key-0123456789'] });
    const page = await browser.newPage();
    await page.goto(`${herald.url}/dashboard`);
    await page.waitForSelector('#key-form', { state: 'visible' });
    assert.equal(await page.textContent('#connections'), '–', 'no figures without the key');
    await page.fill('#key', 'dashboard-key-0123456789');
    await page.click('#key-form button');
    await page.waitForFunction("document.getElementById('connections').textContent === '0'");
    assert.equal(await page.isVisible('#key-form'), false, 'the key box goes away once a key works');
    await page.close();
    await herald.close();
  });
});
