#!/usr/bin/env node
// V8 heap and external memory per idle WebSocket connection, measured after
// forced garbage collections (so, unlike idle-19k's RSS, the same build gives
// the same figure run after run). Herald runs in this process; the
// connections come from a child process.
//   node --expose-gc bench/heap-per-connection.mjs [--connections=5000] [--tree=/path/to/another/checkout] [--transport=sse] [--subscribe]
// --tree measures another built checkout of Herald (e.g. an older commit in a
// git worktree) with this same script, for before/after comparisons.
// --transport=sse measures idle SSE streams instead (GET /sse?topic=idle: a
// stream names at least one topic, so each also holds one subscription);
// --subscribe subscribes each WebSocket to that topic too, for a like-for-like
// comparison.
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (process.argv[2] === '--clients') {
  // The child: opens the connections from four local addresses, tells the parent, waits.
  const { default: WebSocket } = await import('ws');
  const { connect: connectSse } = await import('./lib/rawsse.mjs');
  const [port, count] = process.argv.slice(3, 5).map(Number);
  const transport = process.argv[5] ?? 'ws';
  const subscribe = process.argv[6] === 'subscribe';
  let open = 0;
  const opened = () => {
    if (++open === count) process.send('open');
  };
  const failed = (i) => (err) => {
    console.error(`connection ${i}: ${err.message}`);
    process.exit(1);
  };
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const localAddress = `127.0.0.${10 + (i % 4)}`;
    if (transport === 'sse') {
      // Open once the stream's `event: subscribe` arrived: the server has made the connection a session.
      let subscribed = false;
      const onEvent = (type) => type === 'subscribe' && !subscribed && (subscribed = true) && opened();
      sockets.push(connectSse({ port, path: '/sse?topic=idle', localAddress, onEvent }).catch(failed(i)));
    } else {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { localAddress });
      if (subscribe) {
        ws.on('open', () => ws.send(JSON.stringify({ id: 1, action: 'subscribe', topic: 'idle' })));
        ws.once('message', opened); // the subscribe reply
      } else ws.on('open', opened);
      ws.on('error', failed(i));
      sockets.push(ws);
    }
    if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.on('message', () => process.exit(0));
} else {
  if (typeof globalThis.gc !== 'function') {
    console.error('run with node --expose-gc');
    process.exit(2);
  }
  const args = Object.fromEntries(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=')));
  const connections = Number(args.connections ?? 5000);
  const transport = args.transport ?? 'ws';
  if (!['ws', 'sse'].includes(transport)) {
    console.error('--transport is ws or sse');
    process.exit(2);
  }
  const tree = args.tree ?? fileURLToPath(new URL('..', import.meta.url));
  const { createHerald } = await import(pathToFileURL(`${tree}/packages/server/dist/src/index.js`).href);
  const options = { port: 0, host: '127.0.0.1', log: { level: 'silent' }, demo: { enabled: false } };
  const limits = { maxConnectionsPerIp: 200_000, connectionsPerSecond: 100_000 };
  // limits.connectionsPerSecondPerIp is raised where the build has it (older builds refuse the key).
  const started = await createHerald({ ...options, limits: { ...limits, connectionsPerSecondPerIp: 100_000 } }).catch(() => createHerald({ ...options, limits }));
  const settled = async () => {
    for (let i = 0; i < 4; i++) {
      globalThis.gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return process.memoryUsage();
  };
  const before = await settled();
  const child = fork(fileURLToPath(import.meta.url), ['--clients', String(started.port), String(connections), transport, 'subscribe' in args ? 'subscribe' : '']);
  await new Promise((resolve) => child.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await settled();
  const open = started.status().connections;
  const per = (key) => Math.round((after[key] - before[key]) / connections);
  console.log(JSON.stringify({ tree, transport, subscribed: transport === 'sse' || 'subscribe' in args, connections, open, heapPerConnection: per('heapUsed'), externalPerConnection: per('external'), rssPerConnection: per('rss') }));
  child.send('done');
  await started.close();
  process.exit(open === connections ? 0 : 1);
}
