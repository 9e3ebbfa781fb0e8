#!/usr/bin/env node
// Takes the README's screenshots of every demo, with two windows where a demo
// is about two windows. Start Herald first (npm start), then:
//   node scripts/screenshots.mjs [http://localhost:8080] [docs/img]
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const base = process.argv[2] ?? 'http://localhost:8080';
const out = process.argv[3] ?? 'docs/img';
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const viewport = { width: 1200, height: 760 };
const page = async (path) => {
  const context = await browser.newContext({ viewport });
  const tab = await context.newPage();
  await tab.goto(`${base}${path}`);
  return tab;
};

const index = await page('/');
await index.screenshot({ path: `${out}/index.png` });

// Chat: two people in one room, the second over LHTTP.
const alice = await page('/chat.html?room=general');
await alice.fill('#nick', 'Alice');
await alice.click('#nick-form button');
await alice.waitForSelector('#message:not([disabled])');
const bob = await page('/chat.html?room=general');
await bob.fill('#nick', 'Bob');
await bob.click('#nick-form button');
await bob.waitForSelector('#message:not([disabled])');
await alice.fill('#message', 'Hi Bob! Herald keeps the last messages for latecomers.');
await alice.press('#message', 'Enter');
await bob.waitForSelector('.messages li >> text=latecomers');
await bob.fill('#message', 'Hello Alice, I see you in the online list.');
await bob.press('#message', 'Enter');
await alice.waitForSelector('.messages li >> text=online list');
await alice.screenshot({ path: `${out}/chat.png` });

// Danmaku: comments from another window, in flight.
const viewer = await page('/danmaku.html');
const other = await page('/danmaku.html');
await viewer.waitForSelector('.state.connected');
await other.waitForSelector('.state.connected');
for (const text of ['233333', 'first!', 'this part!!', 'here it comes', 'nice', 'wow what a goal', 'encore', 'again!', 'so good', 'gg']) {
  await other.fill('#comment', text);
  await other.press('#comment', 'Enter');
  await viewer.waitForTimeout(180);
}
await viewer.waitForTimeout(900);
await viewer.screenshot({ path: `${out}/danmaku.png` });

// Task progress: one task finished, one halfway.
const task = await page('/task.html');
await task.waitForSelector('#start:not([disabled])');
await task.click('#start');
await task.waitForSelector('.task.done');
await task.click('#start');
await task.waitForFunction(() => {
  const bar = document.querySelector('.task:not(.done) .bar');
  return bar && Number(bar.getAttribute('aria-valuenow')) >= 40;
});
await task.screenshot({ path: `${out}/task.png` });

// Bookings: a few seconds of the feed.
const bookings = await page('/bookings.html');
await bookings.waitForSelector('.state.connected');
await bookings.click('#feed');
await bookings.waitForFunction(() => document.querySelectorAll('#bookings tr').length >= 8);
await bookings.screenshot({ path: `${out}/bookings.png` });

const dashboard = await page('/dashboard');
await dashboard.waitForTimeout(3000);
await dashboard.screenshot({ path: `${out}/dashboard.png` });

await browser.close();
console.log(`screenshots in ${out}/`);
