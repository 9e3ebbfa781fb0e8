import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { connect, startHerald } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const FRAGMENTS = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '1e309', '-0', '"action"', '"subscribe"', '"publish"', '"topic"', '"topics"', '"message"', '"id"', '"since"', '"offset"', '"__proto__"', '"constructor"', '\\u0000', '"\\ud800"', ' ', '9'.repeat(30)];

function garbage(random: () => number): string {
  const parts: string[] = [];
  const n = 1 + Math.floor(random() * 20);
  for (let i = 0; i < n; i++) parts.push(FRAGMENTS[Math.floor(random() * FRAGMENTS.length)]!);
  return parts.join('');
}

describe('robustness', () => {
  it('survives thousands of malformed and random frames; every one is answered or ignored, never fatal', async () => {
    // The fuzzer sends 3000 frames at once: lift the command rate limit, which has its own test.
    const herald = await startHerald({ limits: { maxFrameBytes: 4096, commandsPerSecond: 100_000, commandBurst: 100_000 } });
    const [fuzzer, bystander] = await Promise.all([connect(herald), connect(herald)]);
    await bystander.request({ action: 'subscribe', topic: 'steady' });
    const random = prng(20261122);
    for (let i = 0; i < 3000; i++) {
      const kind = random();
      if (kind < 0.6) fuzzer.send(garbage(random));
      else if (kind < 0.8) fuzzer.ws.send(randomBytes(Math.floor(random() * 200)), { binary: true });
      else fuzzer.send({ id: i, action: ['subscribe', 'publish', 'unsubscribe', 'ping', 'x'][Math.floor(random() * 5)], topic: garbage(random), topics: random() < 0.5 ? [garbage(random)] : undefined, message: garbage(random) });
    }
    // Invalid UTF-8 in a text frame is a protocol error: ws closes that connection (1007).
    // Everything above was valid UTF-8 or binary, so the fuzzer must still be open and answering.
    const pong = await fuzzer.request({ action: 'ping' }, 10_000);
    assert.equal(pong.ok, true);
    assert.ok(fuzzer.received.length > 1000, `the bad frames were answered (${fuzzer.received.length} frames)`);
    for (const frame of fuzzer.received as any[]) {
      assert.equal(typeof frame, 'object', 'every answer is a JSON frame');
      if (frame.ok === false || frame.action === 'error') assert.match(frame.error.code, /^[a-z_]+$/);
    }

    await herald.publish('steady', 'unharmed');
    assert.deepEqual(await bystander.next(), { action: 'publish', topic: 'steady', message: 'unharmed' });
    await Promise.all([fuzzer.close(), bystander.close()]);
    await herald.close();
  });

  it('a text frame with invalid UTF-8 closes only that connection, with 1007', async () => {
    const herald = await startHerald();
    const [bad, bystander] = await Promise.all([connect(herald), connect(herald)]);
    await bystander.request({ action: 'subscribe', topic: 'steady' });
    bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    assert.equal((await bad.closed).code, 1007);
    await herald.publish('steady', 1);
    assert.deepEqual(await bystander.next(), { action: 'publish', topic: 'steady', message: 1 });
    await bystander.close();
    await herald.close();
  });

  it('peers that vanish mid-stream (TCP cut) are cleaned up; the others receive everything', async () => {
    const herald = await startHerald();
    const vanishing = await Promise.all(Array.from({ length: 20 }, () => connect(herald)));
    const stayer = await connect(herald);
    for (const c of [...vanishing, stayer]) await c.request({ action: 'subscribe', topic: 'stream' });
    const gone = Promise.all(vanishing.map((c) => c.closed));
    for (let i = 0; i < 200; i++) {
      await herald.publish('stream', { i, pad: 'p'.repeat(512) });
      if (i === 50) for (const c of vanishing) (c.ws as unknown as { _socket: { destroy(): void } })._socket.destroy();
    }
    await gone;
    const frames = await stayer.collect(200);
    assert.deepEqual(frames.map((f) => f.message.i), Array.from({ length: 200 }, (_, i) => i));
    // The server notices every cut connection and drops it from the topic.
    while (internals(herald).hub.subscriberCount('stream') > 1) await new Promise((resolve) => herald.on('disconnect', resolve));
    assert.equal(herald.status().connections, 1);
    await stayer.close();
    await herald.close();
  });
});
