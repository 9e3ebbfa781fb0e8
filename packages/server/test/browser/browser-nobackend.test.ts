import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { DESKTOP, shot, useBrowser } from '../helpers/browser.js';
import { http, startHerald } from '../helpers/helpers.js';

describe('demo pages without the demo backend', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ demo: { enabled: true, backend: false } });
  });
  after(() => herald.close());

  /** Opens a page and counts its requests to the demo backend. */
  const open = async (path: string) => {
    const page = await chromium.browser()!.newPage({ viewport: DESKTOP });
    page.on('pageerror', (err) => assert.fail(`${path}: ${err.message}`));
    const calls: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/demo/')) calls.push(new URL(request.url()).pathname);
    });
    await page.goto(`${herald.url}${path}`);
    return { page, calls };
  };

  it('the chat and task pages say once that they need the backend, and stop', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const chat = await open('/chat.html');
    await chat.page.fill('#nick', 'Alice');
    await chat.page.click('#nick-form button');
    await chat.page.waitForSelector('#notice.bad >> text=needs the demo backend');
    await chat.page.waitForSelector('.state.disconnected >> text=no demo backend');
    const task = await open('/task.html');
    await task.page.waitForSelector('#start-result >> text=needs the demo backend');
    await task.page.waitForSelector('.state.disconnected >> text=no demo backend');
    assert.equal(await task.page.isDisabled('#start'), true);
    await shot(task.page, 'task-no-backend');
    // Longer than the client's first reconnect delays: no second token request, no reconnecting.
    await chat.page.waitForTimeout(2_500);
    assert.deepEqual(chat.calls, ['/demo/token']);
    assert.deepEqual(task.calls, ['/demo/token']);
    assert.equal(await chat.page.textContent('#state'), 'no demo backend');
    await Promise.all([chat.page.close(), task.page.close()]);
  });

  it('the booking monitor still shows published bookings, and its feed button says there is no backend', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const { page, calls } = await open('/bookings.html');
    await page.waitForSelector('#feed[disabled] >> text=No demo backend');
    await page.waitForSelector('#feed-note >> text=needs the demo backend');
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'bookings', message: { id: 7, show: 'Aida', seats: 1, amount: 40 } })).status, 200);
    await page.waitForSelector('#bookings tr >> text=Aida');
    assert.deepEqual(calls, ['/demo/bookings']);
    await page.close();
  });

  it('the stream page says that asking needs the backend; an answer on a topic without history is said to be unresumable', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const { page, calls } = await open('/stream.html');
    await page.click('#send');
    await page.waitForSelector('#note >> text=needs the demo backend');
    assert.deepEqual(calls, ['/demo/answer']);
    await page.goto(`${herald.url}/stream.html?answer=from-curl`);
    await page.waitForSelector('#lost >> text=keeps no history for answer:* topics');
    assert.equal(await page.getAttribute('#answer', 'data-state'), 'lost');
    await page.close();
  });
});
