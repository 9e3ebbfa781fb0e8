#!/usr/bin/env node
// Takes the README's screenshots of every demo, with two windows where a demo
// is about two windows. Start Herald first (npm start), then:
//   node scripts/screenshots.mjs [http://localhost:8080] [docs/img] [--phone]
// --phone takes them at a phone's width (390 px) instead, as <name>-phone.png.
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const phone = process.argv.includes('--phone');
const [base = 'http://localhost:8080', out = 'docs/img'] = process.argv.slice(2).filter((arg) => arg !== '--phone');
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const viewport = phone ? { width: 390, height: 844 } : { width: 1200, height: 760 };
const page = async (path) => {
  const context = await browser.newContext({ viewport, deviceScaleFactor: phone ? 2 : 1 });
  const tab = await context.newPage();
  tab.on('pageerror', (err) => {
    console.error(`${path}: ${err.message}`);
    process.exitCode = 1;
  });
  await tab.goto(`${base}${path}`);
  return tab;
};
const save = (tab, name) => tab.screenshot({ path: `${out}/${name}${phone ? '-phone' : ''}.png` });

const index = await page('/');
await save(index, 'index');

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
await bob.check('#lhttp');
await bob.waitForSelector('.state.connected >> text=LHTTP');
await bob.fill('#message', 'Now I speak LHTTP, the Lhttp seed\'s text protocol.');
await bob.press('#message', 'Enter');
await alice.waitForSelector('.messages li >> text=text protocol');
await fetch(`${base}/api/publish`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ topic: 'chat:general', message: 'A notice from the backend, through the HTTP API.' }),
});
await alice.waitForSelector('.messages li >> text=notice from the backend');
await save(alice, 'chat');

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
await save(viewer, 'danmaku');

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
await save(task, 'task');

// Bookings: a few seconds of the feed.
const bookings = await page('/bookings.html');
await bookings.waitForSelector('.state.connected');
await bookings.click('#feed');
await bookings.waitForFunction(() => document.querySelectorAll('#bookings tr').length >= 8);
await save(bookings, 'bookings');

// Resumable stream: an answer reloaded half way, going on from the token it had reached.
const stream = await page('/stream.html');
await stream.click('#send');
await stream.waitForFunction(() => Number(document.querySelector('#answer').dataset.seq) >= 70);
await stream.reload();
await stream.waitForFunction(() => Number(document.querySelector('#answer').dataset.seq) >= 110);
await save(stream, 'stream');

// Playground: a subscription, a refused one, a publication from the page.
const playground = await page('/playground.html');
await playground.waitForSelector('.state.connected');
for (const topic of ['news', 'not a topic']) {
  await playground.fill('#subscribe-topic', topic);
  await playground.click('#subscribe-form button');
}
await playground.waitForSelector('#topics li.refused');
await playground.click('#publish-form button');
await playground.waitForSelector('#log li.in >> text=hello from the playground');
await save(playground, 'playground');

// Dashboard: a minute of the pages above at work (the booking feed runs 30 s).
const dashboard = await page('/dashboard');
await dashboard.waitForSelector('.state.connected');
await dashboard.waitForTimeout(20_000);
await save(dashboard, 'dashboard');

await browser.close();
console.log(`screenshots in ${out}/`);
