/**
 * Runs every unit test file of this folder in one process (`npm run
 * test:unit`). `node --test` gives each file a process of its own and, on a
 * 2-core machine, runs them one at a time: about 350 ms of start-up and
 * imports per file, most of the run. Here they share one process and run one
 * after another, in name order. Each file leaves nothing behind (mock timers
 * are reset after each test), so the result is the same as in isolation,
 * which `npm test` still does (it names the `*.test.js` files, not this one).
 */
import { readdirSync } from 'node:fs';

const here = new URL('./', import.meta.url);
for (const file of readdirSync(here).filter((name) => name.endsWith('.test.js')).sort()) {
  await import(new URL(file, here).href);
}
