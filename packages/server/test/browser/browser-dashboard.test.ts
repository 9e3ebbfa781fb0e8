import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertFits, PHONE, shot, useBrowser } from '../helpers/browser.js';
import { connect, http, startHerald } from '../helpers/helpers.js';

describe('dashboard in headless Chromium', () => {
  const chromium = useBrowser();

  it('is served without the demo pages, shows the connection count change when a page opens, and publishes from its box', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    // The default: no demo pages, but the dashboard (a page of the product) and /client.js.
    const herald = await startHerald({ demo: {} });
    assert.equal(herald.config.demo.enabled, false, 'demo pages are off by default');
    assert.deepEqual((await http(herald, 'GET', '/')).body, { name: 'herald', ok: true, websocket: '/ws' });
    assert.equal((await http(herald, 'GET', '/chat.html')).status, 404);
    for (const path of ['/dashboard', '/dashboard/dashboard.js', '/dashboard/rate.js', '/dashboard/dashboard.css', '/dashboard/style.css', '/client.js']) {
      assert.equal((await http(herald, 'GET', path)).status, 200, path);
    }
    assert.equal((await http(herald, 'GET', '/dashboard/chat.js')).status, 404, 'only the dashboard’s own files');

    const dashboard = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    dashboard.on('pageerror', (err) => assert.fail(`dashboard: ${err.message}`));
    await dashboard.goto(`${herald.url}/dashboard`);
    await dashboard.waitForSelector('.state.connected');
    await dashboard.waitForFunction("document.getElementById('connections').textContent === '0'");
    assert.equal(await dashboard.isVisible('#key-form'), false, 'no key asked for when the server has none');

    // Clients come and go, and messages flow: the dashboard sees them.
    const subscriber = await connect(herald);
    await subscriber.request({ action: 'subscribe', topic: 'from-dashboard' });
    await dashboard.waitForFunction("document.getElementById('connections').textContent === '1'");
    await dashboard.waitForSelector('#busiest td >> text=from-dashboard');
    for (let i = 0; i < 20; i++) assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'from-dashboard', message: { i } })).status, 200);
    for (let i = 0; i < 20; i++) await subscriber.next();
    // A rate over the last seconds, from the counters: readable (a number, one decimal under 10 a second).
    await dashboard.waitForFunction("Number(document.getElementById('out-rate').dataset.rate) > 0");
    assert.match((await dashboard.textContent('#out-rate'))!, /^\d+(\.\d)?$|^\d{1,3}(,\d{3})*$/);
    // Both charts have axes: round ticks from 0 on the y axis, minutes on the time axis, a unit, a line.
    for (const chart of ['#chart-connections', '#chart-rate']) {
      const ticks = await dashboard.$$eval(`${chart} text.tick.y`, (items) => items.map((item) => item.textContent));
      assert.equal(ticks[0], '0', `${chart}: the y axis starts at 0`);
      assert.ok(ticks.length >= 2, `${chart}: y ticks ${ticks.join(' ')}`);
      const times = await dashboard.$$eval(`${chart} text.tick.x`, (items) => items.map((item) => item.textContent));
      assert.deepEqual(times, ['−5 min', '−4 min', '−3 min', '−2 min', '−1 min', 'now']);
      assert.equal(await dashboard.locator(`${chart} line.axis`).count(), 2);
      assert.equal(await dashboard.locator(`${chart} path.line`).count(), 1);
    }
    assert.equal(await dashboard.textContent('#chart-connections text.unit'), 'connections');
    assert.equal(await dashboard.textContent('#chart-rate text.unit'), 'messages / s');

    await dashboard.fill('#publish-topic', 'from-dashboard');
    await dashboard.fill('#publish-message', '{"hello":"ops"}');
    await dashboard.click('#publish-form button');
    assert.deepEqual(await subscriber.next(), { action: 'publish', topic: 'from-dashboard', message: { hello: 'ops' } });
    await dashboard.waitForSelector('#publish-result >> text=published');
    await shot(dashboard, 'dashboard');

    // At a phone's width: nothing wider than the screen, and the charts still have their axes.
    await dashboard.setViewportSize(PHONE);
    await dashboard.waitForFunction("document.getElementById('chart-rate').viewBox.baseVal.width < 390");
    await assertFits(dashboard, 'dashboard');
    await shot(dashboard, 'dashboard-phone', true);
    await Promise.all([dashboard.close(), subscriber.close()]);
    await herald.close();
  });

  it('asks for the API key when the server has keys, and works with it', async (t) => {
    const browser = chromium.browser();
    if (!browser) return t.skip(chromium.skipped());
    const herald = await startHerald({ apiKeys: ['dashboard-key-0123456789'] });
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
