#!/usr/bin/env node
// npm run bench: Herald and its peers, one after another, driven by the same
// load generator in another process. Server on core 0, generator on core 1
// (taskset), when the machine has two cores or more.
//   node bench/run.mjs [--quick] [--only=herald,ws-coalesce] [--cases=fanout-1k,steady] [--with-100k [--workers=6]] [--results=<file>]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')).map(([key, value]) => [key, value ?? true]));
const quick = Boolean(args.quick);
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
})();
const pin = (core, command) => (hasTaskset ? ['taskset', ['-c', String(core), ...command]] : [command[0], command.slice(1)]);

const HERALD_FLAGS = [
  '--host', '127.0.0.1', '--log-level', 'silent',
  '--set', 'demo.enabled=false',
  '--set', 'auth.jwt.secret=bench-secret-bench-secret-bench-secret',
  '--set', 'limits.maxConnectionsPerIp=200000',
  '--set', 'limits.connectionsPerSecond=100000',
  '--set', 'limits.connectionsPerSecondPerIp=100000',
  '--set', 'limits.commandsPerSecond=1000000',
  '--set', 'limits.commandBurst=1000000',
  '--set', 'limits.maxTopicsPerConnection=128',
  // One Pusher app for the pusher-fanout cases (its channels are the topics pusher:bench:*).
  '--set', 'pusher.enabled=true',
  '--set', 'pusher.apps=[{"id":"bench","key":"bench-key","secret":"bench-secret-bench"}]',
];

const SERVERS = {
  herald: { dialect: 'json', publishPath: '/api/publish', command: (port) => ['node', `${root}packages/server/dist/src/cli/main.js`, 'serve', '--port', String(port), ...HERALD_FLAGS] },
  'ws-coalesce': { dialect: 'json', publishPath: '/publish', command: () => ['node', `${root}bench/peers/ws-coalesce.mjs`] },
  'ws-naive': { dialect: 'json', publishPath: '/publish', command: () => ['node', `${root}bench/peers/ws-naive.mjs`] },
  'socket.io': { dialect: 'socketio', publishPath: '/publish', command: () => ['node', `${root}bench/peers/socketio.mjs`] },
};

const scale = quick ? 0.2 : 1;
const CASES = [
  // First, on a fresh process: memory measured before anything else grew the heap.
  { name: 'idle-19k', what: '19,000 idle connections: memory per connection', spec: { mode: 'idle', connections: quick ? 5000 : 19_000 } },
  { name: 'fanout-1k', what: '1,000 subscribers, WebSocket publisher at full speed', spec: { mode: 'fanout', subscribers: 1000, messages: Math.round(4000 * scale), sampleEvery: 10 } },
  { name: 'fanout-1k-http', what: '1,000 subscribers, HTTP publisher (one POST per message)', spec: { mode: 'fanout', subscribers: 1000, messages: Math.round(1500 * scale), publisher: 'http', sampleEvery: 10 } },
  { name: 'fanout-10k', what: '10,000 subscribers, WebSocket publisher at full speed', spec: { mode: 'fanout', subscribers: 10_000, messages: Math.round(400 * scale), sampleEvery: 20 } },
  { name: 'fanout-10k-http', what: '10,000 subscribers, HTTP publisher (one POST per message)', spec: { mode: 'fanout', subscribers: 10_000, messages: Math.round(300 * scale), publisher: 'http', sampleEvery: 20 } },
  { name: 'steady', what: '1,000 subscribers, 100 msg/s for 10 s: latency', spec: { mode: 'steady', subscribers: 1000, rate: 100, seconds: quick ? 3 : 10 } },
  { name: 'topics-10k', what: '10,000 topics × 1 subscriber, publisher round-robin', spec: { mode: 'fanout', subscribers: 10_000, topics: 10_000, messages: Math.round(150_000 * scale), window: 256, sampleEvery: 1 } },
  { name: 'publish-api', what: 'HTTP publishes, one message per request, no subscriber', spec: { mode: 'publishApi', count: Math.round(20_000 * scale) } },
  // Herald's SSE streams (the peers have none), each against the WebSocket case named by `ws`, in the same run.
  // sse-idle-19k restarts Herald first (`fresh`), so that the memory the WebSocket cases held is not reused.
  { name: 'sse-idle-19k', what: '19,000 idle SSE streams (on one topic: a stream names at least one): memory per connection', ws: 'idle-19k', fresh: true, spec: { mode: 'idle', transport: 'sse', connections: quick ? 5000 : 19_000 } },
  { name: 'sse-fanout-1k', what: '1,000 SSE readers, WebSocket publisher at full speed', ws: 'fanout-1k', spec: { mode: 'fanout', transport: 'sse', subscribers: 1000, messages: Math.round(4000 * scale), sampleEvery: 10 } },
  { name: 'sse-fanout-10k', what: '10,000 SSE readers, WebSocket publisher at full speed', ws: 'fanout-10k', spec: { mode: 'fanout', transport: 'sse', subscribers: 10_000, messages: Math.round(400 * scale), sampleEvery: 20 } },
  // Herald's filters (docs/backend.md, "Tags and filters"; the peers have none), each against the unfiltered case named by `unfiltered`, in the same run:
  // subscriber i filters on the tag g = i mod 10, publication k is tagged g = k mod 10, so each filter passes 10 % of the publications
  // and each publication is written to a tenth of the subscribers (ten times the publications for as many deliveries as the unfiltered case).
  // A filter case's `control`: what filters replace, a topic per group: the same subscribers, each on the topic of its group
  // without a filter, the same tagged publications each on the topic of its group. Every connection gets what it gets with
  // the filters, at the same pace: only the filters that said no are missing.
  { name: 'filter-1k-control', what: 'filter-1k with a topic per group instead of filters (10 topics × 100 subscribers)', spec: { mode: 'fanout', subscribers: 1000, topics: 10, probeTopic: true, tagGroups: 10, messages: Math.round(40_000 * scale), sampleEvery: 10 } },
  { name: 'filter-10k-control', what: 'filter-10k with a topic per group instead of filters (10 topics × 1,000 subscribers)', spec: { mode: 'fanout', subscribers: 10_000, topics: 10, probeTopic: true, tagGroups: 10, messages: Math.round(4000 * scale), sampleEvery: 20 } },
  { name: 'filter-1k', what: '1,000 subscribers with filters that pass 10 % of publications, WebSocket publisher at full speed', unfiltered: 'fanout-1k', control: 'filter-1k-control', spec: { mode: 'fanout', subscribers: 1000, filterGroups: 10, messages: Math.round(40_000 * scale), sampleEvery: 10 } },
  { name: 'filter-10k', what: '10,000 subscribers with filters that pass 10 % of publications, WebSocket publisher at full speed', unfiltered: 'fanout-10k', control: 'filter-10k-control', spec: { mode: 'fanout', subscribers: 10_000, filterGroups: 10, messages: Math.round(4000 * scale), sampleEvery: 20 } },
  // Herald's Pusher protocol (the peers have none): subscribers at /app/{key} on one channel, the JSON publisher on its topic; against the JSON case named by `ws`.
  { name: 'pusher-fanout-1k', what: '1,000 Pusher-protocol subscribers, WebSocket (JSON) publisher at full speed', ws: 'fanout-1k', spec: { mode: 'fanout', protocol: 'pusher', subscribers: 1000, messages: Math.round(4000 * scale), sampleEvery: 10 } },
  { name: 'pusher-fanout-10k', what: '10,000 Pusher-protocol subscribers, WebSocket (JSON) publisher at full speed', ws: 'fanout-10k', spec: { mode: 'fanout', protocol: 'pusher', subscribers: 10_000, messages: Math.round(400 * scale), sampleEvery: 20 } },
];

const only = args.only ? String(args.only).split(',') : Object.keys(SERVERS);
const cases = args.cases ? CASES.filter((c) => String(args.cases).split(',').includes(c.name)) : CASES;

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server on ${port} did not start`);
}

function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  return { cpu: ticks / 100, rss };
}

let sourceBlock = 10;
function runGenerator(spec, onLine) {
  // Each case connects from its own loopback addresses, so that TIME_WAIT ports of one case never starve the next.
  const sources = Array.from({ length: 4 }, (_, i) => `127.0.${sourceBlock}.${i + 1}`);
  sourceBlock++;
  const [command, argv] = pin(1, ['node', `${root}bench/lib/loadgen.mjs`, JSON.stringify({ ...spec, sources })]);
  const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  let buffer = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (onLine && !('closedByServer' in line) && !('perSecond' in line)) onLine(line, child);
        else resolve(line);
      }
    });
    child.on('exit', (code) => code !== 0 && reject(new Error(`load generator exited with ${code}`)));
  });
}

async function startServer(server) {
  const port = await freePort();
  const [command, argv] = pin(0, server.command(port));
  const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, PORT: String(port) } });
  await waitForPort(port);
  return { port, child };
}

async function runServer(name, server) {
  let { port, child } = await startServer(server);
  const results = {};
  let ran = 0;
  for (const testCase of cases) {
    if (testCase.spec.mode === 'publishApi' && name === 'socket.io') continue;
    if (testCase.spec.transport === 'sse' && name !== 'herald') continue; // only Herald has SSE
    if ((testCase.spec.filterGroups || testCase.spec.tagGroups) && name !== 'herald') continue; // only Herald has filters (and tags)
    if (testCase.spec.protocol === 'pusher' && name !== 'herald') continue; // only Herald speaks Pusher here
    if (testCase.fresh && ran > 0) {
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
      ({ port, child } = await startServer(server));
    }
    ran++;
    const spec = { ...testCase.spec, port, dialect: server.dialect, publishPath: server.publishPath, path: server.publishPath, mark: testCase.spec.mode === 'fanout' };
    const before = procStats(child.pid);
    let memory;
    let publishing;
    let publishingStart;
    const result = await runGenerator(spec, (line, generator) => {
      const held = procStats(child.pid);
      if ('subscribed' in line) publishingStart = held;
      else if ('delivered' in line) publishing = Math.round((held.cpu - publishingStart.cpu) * 100) / 100;
      // idle: the connections are open; read the server's memory, then let the generator close them.
      else memory = { rssBefore: before.rss, rssWith: held.rss, perConnection: Math.round((held.rss - before.rss) / line.opened) };
      generator.stdin.write('done\n');
    });
    const after = procStats(child.pid);
    // publishingCpuSeconds (fanout): the server's CPU time from the last subscription made to the last delivery counted.
    results[testCase.name] = { ...result, ...(memory ? { memory } : {}), serverCpuSeconds: Math.round((after.cpu - before.cpu) * 100) / 100, ...(publishing !== undefined ? { publishingCpuSeconds: publishing } : {}) };
    process.stderr.write(`  ${name} ${testCase.name}: ${JSON.stringify(results[testCase.name])}\n`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  child.kill('SIGKILL');
  return results;
}

// Herald in-process: the library API, no sockets; on the memory broker, or through a NATS server.
async function libraryPublish(broker = {}) {
  const script = `
    const { createHerald } = await import(${JSON.stringify(`${root}packages/server/dist/src/index.js`)});
    const herald = await createHerald({ port: 0, host: '127.0.0.1', log: { level: 'silent' }, demo: { enabled: false }, ...${JSON.stringify(broker)} });
    while (herald.broker.state !== 'ready') await new Promise((resolve) => setTimeout(resolve, 20));
    const count = ${Math.round(200_000 * scale)};
    const t0 = performance.now();
    for (let i = 0; i < count; i++) herald.publish('bench-lib', { s: i });
    await herald.publish('bench-lib', 'last');
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ publications: count, seconds: Math.round(seconds * 1000) / 1000, perSecond: Math.round(count / seconds) }));
    await herald.close();
    process.exit(0);`;
  const [command, argv] = pin(0, ['node', '--input-type=module', '-e', script]);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  await new Promise((resolve) => child.on('exit', resolve));
  return JSON.parse(out.trim().split('\n').pop());
}

const heraldBatch = async () => {
  const port = await freePort();
  const [command, argv] = pin(0, SERVERS.herald.command(port));
  const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  const result = await runGenerator({ mode: 'publishApi', port, path: '/api/publish', count: Math.round(100_000 * scale), batch: 100, concurrency: 4 });
  child.kill('SIGKILL');
  return result;
};

// 100,000 idle connections: herald serve --workers, several generators, several source addresses.
async function idle100k() {
  const workers = Number(args.workers ?? 6);
  const generators = 6;
  const total = Number(args.connections ?? 100_000);
  const port = await freePort();
  const child = spawn('node', [`${root}packages/server/dist/src/cli/main.js`, 'serve', '--port', String(port), '--workers', String(workers), ...HERALD_FLAGS], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, 30_000);
  const processes = () => [child.pid, ...execFileSync('pgrep', ['-P', String(child.pid)]).toString().trim().split('\n').map(Number)];
  // The workers are up once each answers; give them a moment to all listen.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const rssOf = (pids) => pids.reduce((sum, pid) => sum + procStats(pid).rss, 0);
  const before = rssOf(processes());
  const started = Date.now();
  const opened = [];
  const held = [];
  await Promise.all(
    Array.from({ length: generators }, (_, g) =>
      new Promise((resolve, reject) => {
        const sources = Array.from({ length: 4 }, (_, i) => `127.${100 + g}.0.${i + 1}`);
        const spec = { mode: 'idle', port, dialect: 'json', connections: Math.ceil(total / generators), sources };
        const generator = spawn('node', [`${root}bench/lib/loadgen.mjs`, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
        held.push(generator);
        generator.stdout.once('data', (chunk) => {
          opened.push(JSON.parse(String(chunk)).opened);
          resolve();
        });
        generator.on('exit', (code) => code !== 0 && reject(new Error(`generator ${g} exited with ${code}`)));
      }),
    ),
  );
  const seconds = (Date.now() - started) / 1000;
  const pids = processes();
  const after = rssOf(pids);
  // The workers tell each other their figures every heartbeat (5 s): then any of them answers for all.
  await new Promise((resolve) => setTimeout(resolve, 6000));
  const status = await new Promise((resolve) => {
    import('node:http').then(({ default: http }) =>
      http.get(`http://127.0.0.1:${port}/api/status`, (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve(JSON.parse(body)));
      }),
    );
  });
  for (const generator of held) generator.stdin.write('done\n');
  await Promise.all(held.map((generator) => new Promise((resolve) => generator.on('exit', resolve))));
  child.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  const connections = opened.reduce((a, b) => a + b, 0);
  return { connections, serverSaw: status.cluster?.connections ?? status.connections, workers, processes: pids.length, openSeconds: Math.round(seconds * 10) / 10, rssBefore: before, rssWith: after, perConnection: Math.round((after - before) / connections) };
}

const fmt = (value, digits = 0) => (value === null || value === undefined ? '–' : Number(value).toLocaleString('en-US', { maximumFractionDigits: digits }));

const started = Date.now();
if (!existsSync(`${root}packages/server/dist/src/cli/main.js`)) throw new Error('build first: npm run build');
console.log(`Herald benchmark  ${new Date().toISOString()}`);
console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${hasTaskset ? 'server on core 0, load generator on core 1' : 'not pinned (no taskset or one core)'}${quick ? ', QUICK (smaller counts)' : ''}`);
console.log(`herald: ${HERALD_FLAGS.filter((flag) => flag !== '--set').join(' ')} (JWT auth configured, limits on, metrics on, history off)\n`);

const all = {};
for (const name of only) {
  process.stderr.write(`${name}…\n`);
  all[name] = await runServer(name, SERVERS[name]);
}
const extra = {};
if (args['with-100k']) {
  process.stderr.write('herald 100k idle across workers…\n');
  extra.idle100k = await idle100k();
  process.stderr.write(`  ${JSON.stringify(extra.idle100k)}\n`);
}
if (only.includes('herald') && (!args.cases || String(args.cases).includes('publish-api'))) {
  extra.heraldBatch = await heraldBatch();
  extra.heraldLibrary = await libraryPublish();
  // The Lhttp seed's claim: 10,000 publishes in 0.04 s through NATS. Herald's library publish through a NATS server:
  const natsServer = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((path) => existsSync(path));
  if (natsServer) {
    const natsPort = await freePort();
    const nats = spawn(natsServer, ['-a', '127.0.0.1', '-p', String(natsPort)], { stdio: 'ignore' });
    await waitForPort(natsPort);
    extra.heraldLibraryNats = await libraryPublish({ broker: 'nats', nats: { url: `nats://127.0.0.1:${natsPort}` } });
    nats.kill();
  }
}

// The table.
const rows = [];
for (const testCase of cases) {
  for (const name of only) {
    const r = all[name]?.[testCase.name];
    if (!r) continue;
    const h = all.herald?.[testCase.name];
    // An SSE case: Herald's SSE ÷ Herald's WebSocket, same case, same run.
    const ws = testCase.ws ? all.herald?.[testCase.ws] : undefined;
    let figure;
    let ratio = '';
    if (testCase.spec.mode === 'idle') {
      figure = r.memory ? `${fmt(r.memory.perConnection / 1024, 1)} KB/conn` : '–';
      if (h?.memory && name !== 'herald') ratio = `${fmt(h.memory.perConnection / r.memory.perConnection, 2)}× mem`;
      if (ws?.memory && r.memory) ratio = `SSE÷WS ${fmt(r.memory.perConnection / ws.memory.perConnection, 2)}× mem`;
    } else if (testCase.spec.mode === 'steady') {
      figure = `p50 ${fmt(r.latency.p50, 2)} / p99 ${fmt(r.latency.p99, 2)} / max ${fmt(r.latency.max, 1)} ms`;
      if (h && name !== 'herald') ratio = `${fmt(h.latency.p99 / r.latency.p99, 2)}× p99`;
    } else {
      figure = `${fmt(r.perSecond)}/s${r.latency ? `, p99 ${fmt(r.latency.p99, 1)} ms` : ''}`;
      if (h && name !== 'herald') ratio = `${fmt(h.perSecond / r.perSecond, 2)}×`;
      if (ws) ratio = testCase.spec.protocol === 'pusher' ? `Pusher÷JSON ${fmt(r.perSecond / ws.perSecond, 2)}× (target ≥ 0.9)` : `SSE÷WS ${fmt(r.perSecond / ws.perSecond, 2)}×`;
    }
    rows.push([testCase.name, name, figure, fmt(r.lost ?? 0), fmt(r.serverCpuSeconds, 2), ratio]);
  }
}
const header = ['case', 'server', 'result', 'lost', 'server CPU s', 'herald ÷ peer'];
const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => String(row[i]).length)));
const line = (cells) => `| ${cells.map((cell, i) => String(cell).padEnd(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
if (extra.heraldBatch) console.log(`\nherald /api/publish in batches of 100: ${fmt(extra.heraldBatch.perSecond)} publications/s (${fmt(extra.heraldBatch.publications)} in ${extra.heraldBatch.seconds} s)`);
if (extra.idle100k) {
  const r = extra.idle100k;
  console.log(`herald --workers ${r.workers}: ${fmt(r.connections)} idle connections opened in ${r.openSeconds} s (the servers counted ${fmt(r.serverSaw)}), ${fmt(r.perConnection / 1024, 1)} KB each over ${r.processes} processes`);
}
const sseCases = cases.filter((c) => c.ws && all.herald?.[c.name]);
if (sseCases.length > 0) {
  console.log('\nherald SSE ÷ herald WebSocket, and Pusher protocol ÷ JSON protocol, same run (Pusher target: at least 0.9×):');
  for (const c of sseCases) {
    const r = all.herald[c.name];
    const w = all.herald[c.ws];
    if (!w) {
      console.log(`  ${c.name}: run ${c.ws} too (--cases=${c.ws},${c.name}) for the ratio`);
    } else if (c.spec.mode === 'idle') {
      console.log(`  ${c.name} ÷ ${c.ws}: ${fmt(r.memory.perConnection / w.memory.perConnection, 2)}× memory per connection (${fmt(r.memory.perConnection / 1024, 1)} vs ${fmt(w.memory.perConnection / 1024, 1)} KB)`);
    } else {
      console.log(
        `  ${c.name} ÷ ${c.ws}: ${fmt(r.perSecond / w.perSecond, 2)}× deliveries/s (${fmt(r.perSecond)} vs ${fmt(w.perSecond)}), p99 ${fmt(r.latency.p99, 1)} vs ${fmt(w.latency.p99, 1)} ms, lost ${fmt(r.lost)} vs ${fmt(w.lost)}, server CPU ${fmt(r.serverCpuSeconds, 2)} vs ${fmt(w.serverCpuSeconds, 2)} s`,
      );
    }
  }
}
const filterCases = cases.filter((c) => c.unfiltered && all.herald?.[c.name]);
if (filterCases.length > 0) {
  console.log('\nherald filters beside unfiltered delivery, same run (server CPU over the publishing alone):');
  const us = (seconds, count) => (count > 0 ? (seconds * 1e6) / count : null);
  for (const c of filterCases) {
    const f = all.herald[c.name];
    const u = all.herald[c.unfiltered];
    if (!u) {
      console.log(`  ${c.name}: run ${c.unfiltered} too (--cases=${c.unfiltered},${c.name}) for the comparison`);
      continue;
    }
    const perDeliveryF = us(f.publishingCpuSeconds, f.deliveries);
    const perDeliveryU = us(u.publishingCpuSeconds, u.deliveries);
    console.log(`  ${c.name}: ${fmt(f.perSecond)} deliveries/s, ${fmt(perDeliveryF, 2)} µs server CPU per delivery (${fmt(f.deliveries)} deliveries of ${fmt(f.published)} publications, lost ${fmt(f.lost)})`);
    console.log(`  ${c.unfiltered}: ${fmt(u.perSecond)} deliveries/s, ${fmt(perDeliveryU, 2)} µs server CPU per delivery (${fmt(u.deliveries)} deliveries of ${fmt(u.published)} publications, lost ${fmt(u.lost)})`);
    console.log(`  ${c.name} ÷ ${c.unfiltered}: ${fmt(f.perSecond / u.perSecond, 2)}× deliveries/s, ${fmt(perDeliveryF / perDeliveryU, 2)}× server CPU per delivery`);
    // What a filter that said no cost, beside the write it saved: a filtered publication's CPU less the control's (the same
    // publication written to as many connections, without the subscribers left out), over the subscribers left out.
    const ctl = all.herald[c.control];
    if (!ctl) {
      console.log(`  run ${c.control} too (--cases=${c.unfiltered},${c.control},${c.name}) for the cost of a filter beside the write it saves`);
      continue;
    }
    const skipped = c.spec.subscribers - f.deliveries / f.published;
    const perSkip = (us(f.publishingCpuSeconds, f.published) - us(ctl.publishingCpuSeconds, ctl.published)) / skipped;
    console.log(`  ${c.control} (a topic per group, no filter): ${fmt(ctl.perSecond)} deliveries/s, ${fmt(us(ctl.publishingCpuSeconds, ctl.published), 1)} µs server CPU per publication, against ${fmt(us(f.publishingCpuSeconds, f.published), 1)} µs with filters (${fmt(skipped)} subscribers left out of each)`);
    console.log(`  a filter that leaves a subscriber out: ${fmt(perSkip, 3)} µs of server CPU, against ${fmt(perDeliveryU, 2)} µs for the write it saves (${fmt((perSkip / perDeliveryU) * 100, 1)} %)`);
  }
}
if (extra.heraldLibrary) console.log(`herald library publish(), no subscriber: ${fmt(extra.heraldLibrary.perSecond)} publications/s`);
if (extra.heraldLibraryNats) console.log(`herald library publish() through a NATS server: ${fmt(extra.heraldLibraryNats.perSecond)} publications/s (10,000 in ${fmt(10_000 / extra.heraldLibraryNats.perSecond, 3)} s)`);
console.log(`\n${cases.map((c) => `${c.name}: ${c.what}`).join('\n')}`);
console.log(`\ntotal ${Math.round((Date.now() - started) / 1000)} s`);

// --results=<file>: where the JSON goes (default bench/results/<date>.json).
if (!args.results) mkdirSync(`${root}bench/results`, { recursive: true });
const file = args.results ? String(args.results) : `${root}bench/results/${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().map((cpu) => cpu.model), pinned: hasTaskset, quick, results: all, extra }, null, 2));
console.log(`results: ${file}`);
