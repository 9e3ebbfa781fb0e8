#!/usr/bin/env node
// npm run soak [-- --seconds 300 --rate 300 --clients 12]
// Two Herald nodes on Redis and one on NATS (history in Redis), a fourth on Redis with history in
// its memory, HTTP and WebSocket publishers, SDK clients that drop and recover at random and
// subscribe afresh, Redis and NATS killed and restarted, Redis subscriber links cut. Prints the
// figures; exits 1 on any violation. Needs redis-server and
// nats-server on the PATH (it starts its own, on free ports). See packages/server/test/helpers/soak-run.ts.
import { parseArgs } from 'node:util';
import { describeFigures, runSoak } from '../packages/server/dist/test/helpers/soak-run.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '300' }, rate: { type: 'string', default: '300' }, clients: { type: 'string', default: '12' } },
});
const figures = await runSoak({
  seconds: Number(values.seconds),
  rate: Number(values.rate),
  clients: Number(values.clients),
  log: (line) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`),
});
console.log(describeFigures(figures));
process.exit(figures.violations.length === 0 ? 0 : 1);
