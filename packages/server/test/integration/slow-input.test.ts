import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { deadline, startHerald } from '../helpers/helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A raw TCP connection to Herald that collects what it receives and resolves `ended` when the server closes it. */
function rawSocket(herald: Herald): { socket: Socket; received: () => string; ended: Promise<void> } {
  const socket = tcpConnect(herald.port, '127.0.0.1');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => text, ended };
}

/** A masked client frame (RFC 6455 §5.2). */
function clientFrame(opcode: number, payload: Buffer, fin: boolean): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const header = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([header, mask, masked]);
}

/** A raw WebSocket after its handshake. */
async function rawWebSocket(herald: Herald): Promise<ReturnType<typeof rawSocket>> {
  const raw = rawSocket(herald);
  await once(raw.socket, 'connect');
  raw.socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  while (!raw.received().includes('\r\n\r\n')) await once(raw.socket, 'data');
  assert.match(raw.received(), /^HTTP\/1\.1 101 /);
  return raw;
}

/** The close code of the close frame the server sent, if any. */
function closeCodeIn(text: string): number | undefined {
  const bytes = Buffer.from(text, 'latin1');
  const at = bytes.indexOf(0x88);
  return at === -1 ? undefined : bytes.readUInt16BE(at + 2);
}

describe('slow HTTP input is timed out', () => {
  it('a request body sent a byte at a time is cut at http.requestTimeout with 408', async () => {
    const herald = await startHerald({ http: { requestTimeout: 1_000, headersTimeout: 500 } });
    const raw = rawSocket(herald);
    await once(raw.socket, 'connect');
    raw.socket.write('POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    const started = Date.now();
    const drip = setInterval(() => raw.socket.writable && raw.socket.write(' '), 100);
    await deadline(raw.ended, 10_000, 'the slow-body socket to be closed');
    clearInterval(drip);
    assert.match(raw.received(), /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - started >= 900, 'not before the timeout');
  });

  it('headers sent a line at a time are cut at http.headersTimeout (WebSocket upgrades too)', async () => {
    const herald = await startHerald({ http: { headersTimeout: 500 } });
    const raw = rawSocket(herald);
    await once(raw.socket, 'connect');
    raw.socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
    const drip = setInterval(() => raw.socket.writable && raw.socket.write('X-Slow: 1\r\n'), 100);
    await deadline(raw.ended, 10_000, 'the slow-headers socket to be closed');
    clearInterval(drip);
    assert.match(raw.received(), /^HTTP\/1\.1 408 /);
  });

  it('an idle connection that never sends a request is closed at http.idleTimeout; a WebSocket is not', async () => {
    const herald = await startHerald({ http: { idleTimeout: 500 } });
    const idle = rawSocket(herald);
    await once(idle.socket, 'connect');
    const ws = await rawWebSocket(herald);
    await deadline(idle.ended, 10_000, 'the idle socket to be closed');
    // The WebSocket, quiet for as long, is still answered.
    await new Promise((resolve) => setTimeout(resolve, 700));
    ws.socket.write(clientFrame(0x9, Buffer.from('hi'), true));
    while (!Buffer.from(ws.received(), 'latin1').includes(Buffer.from([0x8a, 2, 0x68, 0x69]))) await deadline(once(ws.socket, 'data'), 5_000, 'the pong');
    ws.socket.destroy();
  });
});

describe('an unfinished fragmented message has a bounded cost', () => {
  it('closes the connection with 1008 at the fragment past limits.maxMessageFragments; up to it the connection works', async () => {
    const herald = await startHerald({ limits: { maxMessageFragments: 16 } });
    const ws = await rawWebSocket(herald);
    ws.socket.write(clientFrame(0x1, Buffer.from('['), false));
    for (let i = 1; i < 16; i++) ws.socket.write(clientFrame(0x0, Buffer.from(' '), false));
    // 16 fragments held: still open (a ping in between is answered).
    ws.socket.write(clientFrame(0x9, Buffer.from('ok'), true));
    while (!Buffer.from(ws.received(), 'latin1').includes(Buffer.from([0x8a, 2, 0x6f, 0x6b]))) await deadline(once(ws.socket, 'data'), 5_000, 'the pong');
    ws.socket.write(clientFrame(0x0, Buffer.from(' '), false));
    await deadline(ws.ended, 5_000, 'the close at fragment 17');
    assert.equal(closeCodeIn(ws.received()), 1008);
  });

  it('100 connections holding unfinished 1-byte-fragment messages hold a bounded amount of memory', async () => {
    const herald = await startHerald({ limits: { maxConnectionsPerIp: 1000, connectionsPerSecondPerIp: 1000 } });
    const limit = herald.config.limits.maxMessageFragments;
    assert.ok(limit <= 1024, `the default bound stays small (${limit} fragments)`);
    const sockets = await Promise.all(Array.from({ length: 100 }, () => rawWebSocket(herald)));
    gc();
    const before = process.memoryUsage();
    // Each holds as many one-byte fragments as it may, then a ping: its pong shows the server has read them all.
    const fragments = Buffer.concat([
      clientFrame(0x1, Buffer.from('x'), false),
      ...Array.from({ length: limit - 1 }, () => clientFrame(0x0, Buffer.from('x'), false)),
      clientFrame(0x9, Buffer.from('ok'), true),
    ]);
    for (const ws of sockets) ws.socket.write(fragments);
    const pong = Buffer.from([0x8a, 2, 0x6f, 0x6b]);
    await deadline(
      Promise.all(sockets.map(async (ws) => {
        while (!Buffer.from(ws.received(), 'latin1').includes(pong)) await once(ws.socket, 'data');
      })),
      30_000,
      'every connection to read its fragments',
    );
    gc();
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    // ws keeps ~120 bytes per fragment: ~1.5 MiB for 100 × 128; without the bound, a connection could hold 16,384 (~190 MiB for 100).
    assert.ok(grown < 8 * 1024 * 1024, `memory grew by ${(grown / 1024 / 1024).toFixed(1)} MiB`);
    // One fragment more and each is closed with 1008.
    for (const ws of sockets) ws.socket.write(clientFrame(0x0, Buffer.from('x'), false));
    await deadline(Promise.all(sockets.map((ws) => ws.ended)), 30_000, 'every connection to be closed');
    for (const ws of sockets) assert.equal(closeCodeIn(ws.received()), 1008);
  });
});
