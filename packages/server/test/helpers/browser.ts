import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
import type { Herald, HeraldOptions } from '../../src/index.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Launches Debian's Chromium headless. Without it the browser tests are
 * skipped on a developer machine, but fail under CI=true: CI must run them.
 */
export async function launchBrowser(): Promise<Browser | string> {
  if (!existsSync(CHROMIUM)) {
    const why = `${CHROMIUM} not found (apt-get install chromium)`;
    if (process.env.CI === 'true') throw new Error(`browser tests must run under CI: ${why}`);
    return why;
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Launches the browser for a suite (before) and closes it (after). `browser()`
 * is the running browser, or null with `skipped` saying why it is missing.
 */
export function useBrowser(): { browser: () => Browser | null; skipped: () => string | undefined } {
  let browser: Browser | null = null;
  let skip: string | undefined;
  before(async () => {
    const launched = await launchBrowser();
    if (typeof launched === 'string') skip = launched;
    else browser = launched;
  });
  after(() => browser?.close());
  return { browser: () => browser, skipped: () => skip };
}

/** Where the browser tests save their screenshots (looked at by people, kept by CI). */
export const ARTIFACTS = fileURLToPath(new URL('../../../../../test-artifacts/', import.meta.url));

/** The viewports the demo pages are checked at. */
export const DESKTOP = { width: 1200, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** Saves a screenshot of the page as test-artifacts/<name>.png. */
export async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage });
}

/** Fails when the page is wider than its viewport (a horizontal scroll bar on a phone), naming what sticks out. */
export async function assertFits(page: Page, what: string): Promise<void> {
  const { scrollWidth, innerWidth, outside } = (await page.evaluate(`({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    outside: [...document.querySelectorAll('body *')]
      .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 0.5)
      .slice(0, 3)
      .map((element) => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')),
  })`)) as { scrollWidth: number; innerWidth: number; outside: string[] };
  if (scrollWidth > innerWidth) throw new Error(`${what}: the page is ${scrollWidth} px wide in a ${innerWidth} px viewport (${outside.join(', ')})`);
}

/** The configuration `npm start` uses (demo/herald.yaml), so that the demo tests check what a newcomer sees. */
export const NPM_START_CONFIG = parseYaml(readFileSync(fileURLToPath(new URL('../../../../../demo/herald.yaml', import.meta.url)), 'utf8')) as HeraldOptions;

/** Opens `path` of a Herald in a new page of `context`, failing on any script error of the page. */
export async function openIn(context: BrowserContext, herald: Herald, path: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => assert.fail(`${path}: ${err.message}`));
  await page.goto(`${herald.url}${path}`);
  return page;
}

/** Opens `path` in a window of a new person: a browser context of its own (separate storage). */
export async function openAs(browser: Browser, herald: Herald, path: string, viewport = DESKTOP): Promise<Page> {
  return openIn(await browser.newContext({ viewport }), herald, path);
}
