// §3: a client reading a 900 KB burst through a proxy forwarding at 20 KB/s, default heartbeat (25 s / 10 s).
// The proxy reads from Herald only as fast as it forwards (backpressure), like slow-link.test.ts's, but the Herald
// side is either a Unix socket (as the test) or loopback TCP (as the issue: "a net proxy").
// usage: node review13/s3-slowlink.mjs [unix|tcp] [bytesPerSecond=20480] [burstKB=900]
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
import { node, Raw, pause, internals } from './lib.mjs';
const upstreamKind = process.argv[2] ?? 'tcp'; const rate = Number(process.argv[3] ?? 20480); const burstKB = Number(process.argv[4] ?? 900);
const hb = process.env.HB ? process.env.HB.split(',').map(Number) : null;
const herald = await node({ broker: 'memory', ...(hb ? { heartbeat: { interval: hb[0], timeout: hb[1] } } : {}) }); // default heartbeat and maxQueueBytes unless HB=interval,timeout
let target;
if (upstreamKind === 'unix') {
  const path = join(mkdtempSync(join(tmpdir(), 'r13-')), 'h.sock');
  const inner = createServer((s) => internals(herald).httpServer.emit('connection', s)); inner.listen(path); await once(inner, 'listening');
  target = () => createConnection(path);
} else target = () => createConnection(herald.port, '127.0.0.1');
const proxy = createServer((client) => {
  const up = target(); client.pipe(up);
  const q = []; let queued = 0; const step = Math.max(1, Math.round(rate / 20));
  up.on('data', (c) => { q.push(c); queued += c.length; if (queued >= step) up.pause(); });
  const t = setInterval(() => { let b = step; while (b > 0 && q.length) { const h = q[0]; const p = h.subarray(0, b); client.write(p); b -= p.length; queued -= p.length; if (p.length === h.length) q.shift(); else q[0] = h.subarray(p.length); } if (queued < step) up.resume(); }, 50);
  const close = () => { clearInterval(t); client.destroy(); up.destroy(); };
  up.on('close', close); up.on('error', close); client.on('error', close); client.on('close', close);
});
proxy.listen(0, '127.0.0.1'); await once(proxy, 'listening');
let closed = null; const t0 = Date.now();
herald.on('disconnect', (_c, info) => { closed = { ...info, at: (Date.now() - t0) / 1000 }; });
const c = new Raw(`ws://127.0.0.1:${proxy.address().port}/ws`); await c.opened;
await c.request({ action: 'subscribe', topic: 'burst' });
const n = Math.round(burstKB / 10); const chunk = 'x'.repeat(10 * 1024);
for (let i = 0; i < n; i++) await herald.publish('burst', { i, chunk });
const expectS = (burstKB * 1024) / rate;
const until = Date.now() + (expectS + 40) * 1000;
while (c.pubs.length < n && !c.closed && Date.now() < until) await pause(250);
const doneAt = (Date.now() - t0) / 1000;
if (!c.closed) { await pause(2000); await herald.publish('burst', { i: 'after' }); await pause(3000); }
console.log(JSON.stringify({ upstream: upstreamKind, rate, burstKB, expectedDrainS: +expectS.toFixed(1), received: c.pubs.length, of: n, receivedAt: doneAt, serverClosed: closed, clientClosed: c.closed ? { code: c.closeCode, at: doneAt } : null, afterDelivered: c.pubs.some((p) => p.message.i === 'after') }));
process.exit(0);
