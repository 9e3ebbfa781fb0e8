import { existsSync } from 'node:fs';
import { after, before } from 'node:test';
import { chromium, type Browser } from 'playwright-core';

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
