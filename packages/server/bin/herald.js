#!/usr/bin/env node
// The `herald` command. The CLI itself is compiled TypeScript in dist/; this
// small file is part of the repository so that npm links the command on the
// first `npm install`, before anything is built.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('herald: the CLI is not built yet: run "npm run build" (or "npm start") in the Herald checkout first\n');
  process.exit(2);
}
await import(cli.href);
