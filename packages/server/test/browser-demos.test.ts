import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import type { Herald, HeraldOptions } from '../src/index.js';
import { useBrowser } from './browser.js';
import { http, startHerald } from './helpers.js';

const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url));
// The configuration `npm start` uses, so that these tests check what a newcomer sees.
const NPM_START_CONFIG = parseYaml(readFileSync(fileURLToPath(new URL('../../../../demo/herald.yaml', import.meta.url)), 'utf8')) as HeraldOptions;

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}${name}.png` });
}

describe('demo apps in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;

  const open = async (path: string): Promise<Page> => {
    // A context per page: separate storage, as two windows of two people.
    const context = await chromium.browser()!.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => assert.fail(`${path}: ${err.message}`));
    await page.goto(`${herald.url}${path}`);
    return page;
  };

  /** Opens the chat in a new window and joins a room under a nickname. */
  const joinChat = async (room: string, nick: string): Promise<Page> => {
    const page = await open(`/chat.html?room=${room}`);
    await page.fill('#nick', nick);
    await page.click('#nick-form button');
    await page.waitForSelector('#message:not([disabled])');
    return page;
  };

  /** Types a message in the chat and sends it. */
  const say = async (page: Page, text: string): Promise<void> => {
    await page.fill('#message', text);
    await page.press('#message', 'Enter');
  };

  it('index links to every demo, each served', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    herald = await startHerald({ ...NPM_START_CONFIG });
    const index = await open('/');
    const links = await index.$$eval('a.demo', (anchors) => anchors.map((anchor) => anchor.getAttribute('href')));
    assert.deepEqual(links, ['/chat.html', '/danmaku.html', '/task.html', '/bookings.html', '/playground.html', '/dashboard']);
    for (const link of links) assert.equal((await http(herald, 'GET', link!)).status, 200, link!);
    await index.context().close();
  });

  it('chat: two windows exchange messages, see each other online, and an LHTTP window joins the same room', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const alice = await joinChat('test', 'Alice');
    const bob = await joinChat('test', 'Bob');

    await say(alice, 'hello from Alice');
    await bob.waitForSelector('#messages li >> text=hello from Alice');
    await say(bob, 'hi Alice');
    await alice.waitForSelector('#messages li.mine >> text=hello from Alice');
    await alice.waitForSelector('#messages li >> text=hi Alice');
    // Presence: each sees both (join events or the presence list).
    await alice.waitForFunction("document.getElementById('online-count').textContent === '2'");
    assert.deepEqual(await alice.$$eval('#online li', (items) => items.map((item) => item.textContent)), ['Alice', 'Bob']);

    // Bob switches to LHTTP: same room, other protocol.
    await bob.check('#lhttp');
    await bob.waitForSelector('.state.connected >> text=LHTTP');
    await say(bob, 'now over LHTTP');
    await alice.waitForSelector('#messages li:has-text("now over LHTTP") .via');
    await say(alice, 'seen it');
    await bob.waitForSelector('#messages li >> text=seen it');

    // A latecomer gets the room's last messages from history.
    const carol = await joinChat('test', 'Carol');
    await carol.waitForSelector('#messages li >> text=hello from Alice');
    await shot(alice, 'chat');
    await Promise.all([alice.context().close(), bob.context().close(), carol.context().close()]);
  });

  it('danmaku: a comment typed in one window flies across the other, and the stress button holds', async (t) => {
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
    // 200 a second for 5 seconds: every one reaches the other window, none is refused.
    await viewer.waitForFunction("Number(document.getElementById('received').textContent) >= 1001", undefined, { timeout: 30_000 });
    await sender.waitForFunction("Number(document.getElementById('sent').textContent) === 1001");
    assert.equal(await sender.textContent('#refused'), '0');
    const onStage = await viewer.$$eval('#stage .comment', (items) => items.map((item) => item.getBoundingClientRect()));
    // Lanes: no two comments on stage overlap.
    for (let i = 0; i < onStage.length; i++) {
      for (let j = i + 1; j < onStage.length; j++) {
        const [a, b] = [onStage[i]!, onStage[j]!];
        const overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        assert.ok(!overlap, `comments ${i} and ${j} overlap`);
      }
    }
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

  it('booking monitor: bookings from the feed and from the HTTP API appear in the table', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const page = await open('/bookings.html');
    await page.waitForSelector('.state.connected');
    const published = await http(herald, 'POST', '/api/publish', { topic: 'bookings', message: { id: 'api-1', show: 'Tosca', customer: 'Test', seats: 3, amount: 120 } });
    assert.equal(published.status, 200);
    await page.waitForSelector('#bookings tr >> text=Tosca');
    assert.equal(await page.textContent('#seats'), '3');
    await page.click('#feed');
    await page.waitForFunction("document.querySelectorAll('#bookings tr').length >= 4");
    await shot(page, 'bookings');
    // A page opened later starts from the topic's history.
    const later = await open('/bookings.html');
    await later.waitForSelector('#bookings tr >> text=Tosca');
    await Promise.all([page.context().close(), later.context().close()]);
    await herald.close();
  });
});
