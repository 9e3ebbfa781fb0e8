import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { Herald } from '../../src/index.js';
import { DESKTOP, NPM_START_CONFIG, openAs, openIn, shot, useBrowser } from '../helpers/browser.js';
import { http, startHerald } from '../helpers/helpers.js';

describe('chat demo in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  before(async () => {
    herald = await startHerald({ ...NPM_START_CONFIG });
  });
  after(() => herald.close());

  const open = (path: string): Promise<Page> => openAs(chromium.browser()!, herald, path);

  /** Joins the chat (already open in `page`) under a nickname. */
  const join = async (page: Page, nick: string): Promise<Page> => {
    await page.fill('#nick', nick);
    await page.click('#nick-form button');
    await page.waitForSelector('#message:not([disabled])');
    return page;
  };
  const joinChat = async (room: string, nick: string): Promise<Page> => join(await open(`/chat.html?room=${room}`), nick);

  /** Types a message in the chat and sends it. */
  const say = async (page: Page, text: string): Promise<void> => {
    await page.fill('#message', text);
    await page.press('#message', 'Enter');
  };

  /** The chat line holding `text`, once it is shown. */
  const line = async (page: Page, text: string) => {
    const item = page.locator('#messages li', { hasText: text });
    await item.waitFor();
    return item;
  };

  it('chat: each window is its own person; messages carry a time; LHTTP tags only LHTTP messages; API strings have no false sender', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const alice = await joinChat('test', 'Alice');
    const bob = await joinChat('test', 'Bob');

    // A second window of Alice's browser starts as nobody, not as Alice.
    const aliceSecond = await openIn(alice.context(), herald, '/chat.html?room=test');
    await aliceSecond.waitForSelector('.state >> text=pick a nickname');
    assert.equal(await aliceSecond.inputValue('#nick'), '');
    assert.equal(await aliceSecond.textContent('#whoami'), '');
    assert.equal(await aliceSecond.isDisabled('#message'), true, 'not joined');
    // It joins as Dave; a reload of Alice's first window keeps Alice (not whoever typed last).
    await join(aliceSecond, 'Dave');
    await alice.reload();
    await alice.waitForSelector('#message:not([disabled])');
    assert.equal(await alice.textContent('#whoami'), 'you are Alice');
    await alice.waitForFunction("document.getElementById('online-count').textContent === '3'");
    assert.deepEqual(await alice.$$eval('#online li', (items) => items.map((item) => item.textContent)), ['Alice', 'Bob', 'Dave']);
    await aliceSecond.close();
    await alice.waitForFunction("document.getElementById('online-count').textContent === '2'");
    assert.deepEqual(await alice.$$eval('#online li', (items) => items.map((item) => item.textContent)), ['Alice', 'Bob']);

    await say(alice, 'hello from Alice');
    const seenByBob = await line(bob, 'hello from Alice');
    assert.equal(await seenByBob.locator('.who').textContent(), 'Alice');
    assert.match((await seenByBob.locator('time').textContent()) ?? '', /\d{1,2}:\d{2}:\d{2}/, 'a message shows its time');
    await say(bob, 'hi Alice');
    await alice.waitForSelector('#messages li.mine >> text=hello from Alice');
    await line(alice, 'hi Alice');

    // A string published through the HTTP API: its text, no sender, no "via LHTTP".
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'chat:test', message: 'maintenance at noon' })).status, 200);
    const announcement = await line(alice, 'maintenance at noon');
    assert.equal(await announcement.locator('.who').count(), 0, 'no sender name for a plain string');
    assert.equal(await announcement.locator('.via').count(), 0);
    assert.equal(await alice.locator('#messages .who', { hasText: 'lhttp' }).count(), 0);

    // Bob switches to LHTTP: same room, other protocol.
    await bob.check('#lhttp');
    await bob.waitForSelector('.state.connected >> text=LHTTP');
    await say(bob, 'now over LHTTP');
    const overLhttp = await line(alice, 'now over LHTTP');
    assert.equal(await overLhttp.locator('.via').textContent(), 'via LHTTP');
    assert.equal(await overLhttp.locator('.who').textContent(), 'Bob');
    assert.equal(await (await line(bob, 'now over LHTTP')).locator('.via').count(), 1, 'his own LHTTP message is LHTTP');
    // In Bob's LHTTP window, JSON messages and API strings are not tagged LHTTP.
    await say(alice, 'seen it');
    const jsonInLhttp = await line(bob, 'seen it');
    assert.equal(await jsonInLhttp.locator('.via').count(), 0, 'a JSON message is not "via LHTTP"');
    assert.equal(await jsonInLhttp.locator('.who').textContent(), 'Alice');
    assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'chat:test', message: 'second notice' })).status, 200);
    const stringInLhttp = await line(bob, 'second notice');
    assert.equal(await stringInLhttp.locator('.via').count(), 0);
    assert.equal(await stringInLhttp.locator('.who').count(), 0);

    // A latecomer gets the room's last messages from history, with their times and origins.
    const carol = await joinChat('test', 'Carol');
    const fromHistory = await line(carol, 'now over LHTTP');
    assert.equal(await fromHistory.locator('.via').count(), 1);
    await line(carol, 'hello from Alice');
    assert.equal(await carol.locator('#messages li', { hasText: 'hello from Alice' }).count(), 1, 'shown once');
    await shot(alice, 'chat');
    await Promise.all([alice.context().close(), bob.context().close(), carol.context().close()]);
  });

  it('chat: after a server restart the page reconnects, shows what was said meanwhile, and claims nothing was missed', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const first = await startHerald({ ...NPM_START_CONFIG });
    const { port } = first.address;
    const page = await openAs(chromium.browser()!, first, '/chat.html?room=restart', DESKTOP);
    await join(page, 'Erin');
    await say(page, 'before the restart');
    await line(page, 'before the restart');
    await first.close();
    await page.waitForSelector('.state.disconnected');
    const second = await startHerald({ ...NPM_START_CONFIG, port });
    try {
      assert.equal((await http(second, 'POST', '/api/publish', { topic: 'chat:restart', message: { nick: 'Frank', text: 'said during the restart' } })).status, 200);
      await page.waitForSelector('.state.connected', { timeout: 30_000 });
      await line(page, 'said during the restart');
      await page.waitForSelector('#messages[data-recovery]');
      assert.equal(await page.getAttribute('#messages', 'data-recovery'), 'reloaded');
      assert.equal(await page.locator('#messages li.system', { hasText: 'missed' }).count(), 0, 'no false "messages were missed"');
      await say(page, 'after the restart');
      await line(page, 'after the restart');
    } finally {
      await page.context().close();
      await second.close();
    }
  });

});
