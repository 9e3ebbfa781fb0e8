import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { deadline, startHerald, TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';
import { MAX_KERNEL_BYTES } from '../../src/hub/liveness.js';

/**
 * A throttling proxy in front of Herald: the test client connects to it over
 * TCP; its Herald side forwards to the client at most `bytesPerSecond` (in
 * 50 ms steps), reading from Herald only as fast as it forwards, as a slow
 * link does; the client's direction is not throttled. `stall()` stops the
 * slow direction altogether (a peer that reads nothing).
 *
 * The Herald side is a Unix socket handed to Herald's HTTP server: over
 * loopback TCP the proxy's receive buffer grows to megabytes by itself (the
 * kernel tunes it to a reader a few microseconds away), which would swallow
 * any burst at once, whereas a Unix socket buffers a fixed ~200 KB, like a
 * real slow link's send buffer.
 */
class ThrottlingProxy {
  private readonly server: Server;
  private readonly inner: Server;
  private readonly path = join(mkdtempSync(join(tmpdir(), 'herald-link-')), 'herald.sock');
  private readonly links = new Set<{ stall: () => void; close: () => void }>();
  port = 0;

  constructor(
    herald: Herald,
    private readonly bytesPerSecond: number,
  ) {
    this.inner = createServer((socket) => internals(herald).httpServer.emit('connection', socket));
    this.server = createServer((client) => this.link(client));
  }

  async start(): Promise<this> {
    this.inner.listen(this.path);
    await once(this.inner, 'listening');
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  private link(client: Socket): void {
    const upstream = createConnection(this.path);
    client.pipe(upstream);
    const queue: Buffer[] = [];
    let queued = 0;
    let stalled = false;
    const step = Math.max(1, Math.round(this.bytesPerSecond / 20));
    upstream.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      queued += chunk.length;
      if (queued >= step) upstream.pause();
    });
    const timer = setInterval(() => {
      if (stalled) return;
      let budget = step;
      while (budget > 0 && queue.length > 0) {
        const head = queue[0]!;
        const part = head.subarray(0, budget);
        client.write(part);
        budget -= part.length;
        queued -= part.length;
        if (part.length === head.length) queue.shift();
        else queue[0] = head.subarray(part.length);
      }
      if (queued < step) upstream.resume();
    }, 50);
    const close = () => {
      clearInterval(timer);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('close', close);
    upstream.on('error', close);
    client.on('error', close);
    client.on('close', close);
    this.links.add({ stall: () => (stalled = true), close });
  }

  stall(): void {
    for (const link of this.links) link.stall();
  }

  async close(): Promise<void> {
    for (const link of this.links) link.close();
    this.links.clear();
    for (const server of [this.server, this.inner]) {
      if (server.listening) await new Promise((resolve) => server.close(resolve));
    }
  }
}

function disconnected(herald: Herald): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => herald.on('disconnect', (_connection, info) => resolve({ code: info.code, reason: info.reason, at: Date.now() })));
}

describe('a peer on a slow link', () => {
  // The kernel holds up to ~700 KB of the burst (the Unix socket's buffer) that Herald cannot see being
  // read: at 400 KB/s it drains within the 3 s timeout, as a real link's buffers do within the default
  // 10 s. The burst lasts 7.5 s, more than twice interval + timeout: the old heartbeat cut at about 3.3 s.
  const heartbeat = { interval: 300, timeout: 3000 };
  const rate = 400 * 1024;
  const limits = { maxQueueBytes: 4 * 1024 * 1024 };

  it('that keeps reading a long burst is alive: no heartbeat timeout, every publication arrives', async (t) => {
    const herald = await startHerald({ heartbeat, limits });
    const proxy = await new ThrottlingProxy(herald, rate).start();
    let closed: { code: number; reason: string } | null = null;
    herald.on('disconnect', (_connection, info) => (closed = info));
    const client = await TestClient.open(`ws://127.0.0.1:${proxy.port}/ws`);
    t.after(() => proxy.close());
    assert.equal((await client.request({ action: 'subscribe', topic: 'burst' })).ok, true);
    // 3 MB at 400 KB/s: about 7.5 s of reading, with the ping behind it all. The client sends nothing meanwhile but its pong.
    const chunk = 'x'.repeat(10 * 1024);
    for (let i = 0; i < 300; i++) await herald.publish('burst', { i, chunk });
    const frames = await client.collect(300, 30_000);
    assert.deepEqual(frames.map((frame) => frame.message.i), Array.from({ length: 300 }, (_, i) => i));
    assert.equal(closed, null, `not closed (was: ${JSON.stringify(closed)})`);
    assert.equal(internals(herald).sessions.size, 1);
    // Still alive afterwards: pings are answered once the link is idle.
    await herald.publish('burst', 'after');
    assert.equal((await client.next(5000)).message, 'after');
    await client.close();
    await herald.close();
  });

  it('that keeps reading a burst the kernel holds for longer than the timeout is alive (400 KB at 40 KB/s: 10 s of reading, 3 s timeout)', async (t) => {
    // The 900 KB at 20 KB/s under the default 25 s / 10 s heartbeat, scaled down: the whole burst
    // fits in the socket buffers at once, so Herald sees no outbound progress after the ping while the peer
    // reads on for ~10 s; heartbeat.minReadRate (16 KiB/s by default) gives it the time to. (Found by the
    // review of issue 13: it was cut at 3.6-4.8 s, 2-6 of the 40 publications lost.)
    const herald = await startHerald({ heartbeat, limits });
    const proxy = await new ThrottlingProxy(herald, 40 * 1024).start();
    let closed: { code: number; reason: string } | null = null;
    herald.on('disconnect', (_connection, info) => (closed = info));
    const client = await TestClient.open(`ws://127.0.0.1:${proxy.port}/ws`);
    t.after(() => proxy.close());
    assert.equal((await client.request({ action: 'subscribe', topic: 'burst' })).ok, true);
    const chunk = 'x'.repeat(10 * 1024);
    for (let i = 0; i < 40; i++) await herald.publish('burst', { i, chunk });
    const frames = await client.collect(40, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; Herald closed the connection: ${JSON.stringify(closed)}`);
    });
    assert.deepEqual(frames.map((frame) => frame.message.i), Array.from({ length: 40 }, (_, i) => i));
    assert.equal(closed, null, `not closed (was: ${JSON.stringify(closed)})`);
    await herald.publish('burst', 'after');
    assert.equal((await client.next(5000)).message, 'after', 'and still alive afterwards');
    await client.close();
    await herald.close();
  });

  it('that stops reading is cut by the heartbeat, with publications still queued under maxQueueBytes', async (t) => {
    // Cut once it had the time to read what the kernel may hold at heartbeat.minReadRate (here 1 MiB/s:
    // under a second for this burst), then the timeout.
    const minReadRate = 1024 * 1024;
    const herald = await startHerald({ heartbeat: { ...heartbeat, minReadRate }, limits });
    const proxy = await new ThrottlingProxy(herald, rate).start();
    const cut = disconnected(herald);
    const client = await TestClient.open(`ws://127.0.0.1:${proxy.port}/ws`);
    t.after(() => proxy.close());
    assert.equal((await client.request({ action: 'subscribe', topic: 'burst' })).ok, true);
    proxy.stall();
    const chunk = 'x'.repeat(10 * 1024);
    for (let i = 0; i < 100; i++) await herald.publish('burst', { i, chunk });
    const started = Date.now();
    const info = await deadline(cut, 10_000, 'the stalled peer to be cut');
    assert.equal(info.code, 1006);
    assert.match(info.reason, /heartbeat timeout/);
    const readTime = (MAX_KERNEL_BYTES * 1000) / minReadRate;
    assert.ok(info.at - started < heartbeat.interval + readTime + heartbeat.timeout + 1000, `cut after ${info.at - started} ms`);
    await herald.close();
  });
});
