/**
 * Runs every unit test file (the protocol's, the client's and the server's
 * test/unit) in one process: `npm run test:unit`. `node --test` gives each
 * file a process of its own and, on a 2-core machine, runs them one at a
 * time: start-up and imports cost about 350 ms a file, most of the run. Here
 * the files share one process and run one after another. Each leaves nothing
 * behind (mock timers are reset after each test), so the result is the same
 * as in isolation, which `npm test` still does (it names the files).
 * Run it after the build: it imports the compiled files.
 */
import { readdirSync } from 'node:fs';

const folders = ['packages/protocol/dist/test/', 'packages/client/dist/test/', 'packages/server/dist/test/unit/'];
for (const folder of folders) {
  const url = new URL(`../${folder}`, import.meta.url);
  for (const file of readdirSync(url).filter((name) => name.endsWith('.test.js')).sort()) {
    await import(new URL(file, url).href);
  }
}
