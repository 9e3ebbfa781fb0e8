import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import type { Herald } from '../../src/index.js';
import { NPM_START_CONFIG, openAs, shot, useBrowser } from '../helpers/browser.js';
import { http, startHerald } from '../helpers/helpers.js';

const run = promisify(execFile);

describe('booking monitor demo in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ ...NPM_START_CONFIG });
  });
  after(() => herald.close());

  const open = (path: string): Promise<Page> => openAs(chromium.browser()!, herald, path);

  it('booking monitor: the page’s own curl adds a booking each time it runs; the feed’s state is the same in every window', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const page = await open('/bookings.html');
    const other = await open('/bookings.html');
    await page.waitForSelector('.state.connected');
    await other.waitForSelector('#feed:not([disabled]) >> text=Start the booking feed');
    const published = await http(herald, 'POST', '/api/publish', { topic: 'bookings', message: { id: 'api-1', show: 'Tosca', customer: 'Test', seats: 3, amount: 120 } });
    assert.equal(published.status, 200);
    await page.waitForSelector('#bookings tr >> text=Tosca');
    assert.equal(await page.textContent('#seats'), '3');

    // The curl line the page shows, run as a person would paste it, twice: two bookings.
    const feeds = (await page.textContent('#feeds'))!;
    const curl = feeds.slice(feeds.indexOf('curl '), feeds.indexOf('\n\n'));
    assert.match(curl, /^curl -X POST http:\/\/127\.0\.0\.1:\d+\/api\/publish/);
    for (let i = 0; i < 2; i++) {
      const { stdout } = await run('bash', ['-c', curl]);
      assert.match(stdout, /"ok":true/);
    }
    await page.waitForFunction("document.querySelectorAll('#bookings tr').length === 3");
    const hamlets = await page.$$eval('#bookings tr', (rows) => rows.filter((row) => row.textContent!.includes('Hamlet')).map((row) => row.cells[0]!.textContent));
    assert.equal(hamlets.length, 2);
    assert.notEqual(hamlets[0], hamlets[1], 'each run has an id of its own');
    assert.equal(await page.textContent('#seats'), '7');

    // A short feed started elsewhere (a backend): both windows show it running, then stopped.
    assert.equal((await http(herald, 'POST', '/demo/bookings', { seconds: 1, perSecond: 4 })).status, 200);
    await Promise.all([page.waitForSelector('#feed[disabled] >> text=Feeding'), other.waitForSelector('#feed[disabled] >> text=Feeding')]);
    await Promise.all([page.waitForSelector('#feed:not([disabled]) >> text=Start'), other.waitForSelector('#feed:not([disabled]) >> text=Start')]);

    // Started from one window: the other shows it running, and so does a window opened later.
    await page.click('#feed');
    await other.waitForSelector('#feed[disabled] >> text=Feeding');
    await page.waitForFunction("document.querySelectorAll('#bookings tr').length >= 8");
    const later = await open('/bookings.html');
    await later.waitForSelector('#feed[disabled] >> text=Feeding');
    // It starts from the topic's history (rows from history are not flashed as fresh).
    await later.waitForSelector('#bookings tr:not(.fresh)');
    await shot(page, 'bookings');
    await Promise.all([page.context().close(), other.context().close(), later.context().close()]);
  });

});
