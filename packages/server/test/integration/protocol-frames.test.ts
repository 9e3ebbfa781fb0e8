import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/index.js';
import { connect, deadline, startHerald, type TestClient } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

/**
 * Every server frame is encoded by the connection's own codec: a protocol
 * that has no way to say something (LHTTP and raw have no ping, presence or
 * gap frame) is not told, and no frame of one protocol reaches a connection
 * of another (issue #16: a JSON `token_expired` frame used to reach LHTTP
 * connections).
 */
describe('server frames in each connection\'s own protocol', () => {
  let herald: Awaited<ReturnType<typeof startHerald>>;
  before(async () => {
    herald = await startHerald({
      auth: { jwt: { secret: SECRET, clockTolerance: 0 }, expiryGrace: 300 },
      heartbeat: { interval: 100, timeout: 5000, appPing: true },
      presence: [{ pattern: 'room:*', joinLeave: true }],
      raw: [{ path: '/raw', topics: ['room:raw'], publish: false }],
    });
  });
  after(() => herald.close());

  /** Every frame a client got so far that is a JSON object (the JSON protocol's frames). */
  const jsonFrames = (client: TestClient): unknown[] => client.received.filter((frame) => typeof frame === 'object' && frame !== null);

  it('an LHTTP connection whose ?token= expires gets an LHTTP error message, then 4001; never a JSON frame', async () => {
    // Two to three seconds of life: a loaded machine must not see it expire before the connection opens.
    const exp = Math.floor(Date.now() / 1000) + 3;
    const lhttp = await connect(herald, { path: `/?token=${await signToken({ sub: 'lena' }, { exp })}` });
    const error = (await lhttp.next(8000)) as string;
    assert.ok(Date.now() >= exp * 1000, 'not before exp');
    assert.match(error, /^LHTTP\/1\.0 error\r\n/);
    assert.match(error, /\r\ncode:token_expired\r\n/);
    assert.match(error, /reconnect with a fresh token/);
    const closed = await deadline(lhttp.closed, 5000, 'the 4001 close');
    assert.deepEqual(closed, { code: CloseCode.TOKEN_EXPIRED, reason: 'token expired' });
    // Idle for several heartbeat intervals with app pings on: pinged at the WebSocket level only.
    assert.deepEqual(jsonFrames(lhttp), []);
    assert.ok(lhttp.received.every((frame) => typeof frame === 'string' && frame.startsWith('LHTTP/1.0 ')), 'only LHTTP messages');
  });

  it('app pings reach JSON connections only; LHTTP and raw connections stay silent', async () => {
    const [json, lhttp, raw] = await Promise.all([connect(herald), connect(herald, { path: '/' }), connect(herald, { path: '/raw' })]);
    // Two app pings on the JSON connection: several heartbeat ticks passed for all three.
    assert.deepEqual(await json.next(3000), { action: 'ping' });
    assert.deepEqual(await json.next(3000), { action: 'ping' });
    assert.deepEqual(lhttp.received, []);
    assert.deepEqual(raw.received, []);
    await Promise.all([json.close(), lhttp.close(), raw.close()]);
  });

  it('presence join/leave events reach JSON subscribers only; LHTTP and raw subscribers of the topic get none', async () => {
    const watcher = await connect(herald);
    await watcher.request({ action: 'subscribe', topic: 'room:raw' });
    /** The watcher's next presence event (app pings skipped): each one confirms a subscription or a departure. */
    const event = async (action: 'join' | 'leave'): Promise<void> => {
      for (;;) {
        const frame = await watcher.next(3000);
        if (frame.action === action) return;
        assert.equal(frame.action, 'ping', `unexpected ${JSON.stringify(frame)}`);
      }
    };
    const lhttp = await connect(herald, { path: '/' });
    lhttp.send('LHTTP/1.0 chat\r\nsubscribe:room:raw\r\n\r\n');
    await event('join');
    const raw = await connect(herald, { path: '/raw' });
    await event('join');
    const joiner = await connect(herald);
    await joiner.request({ action: 'subscribe', topic: 'room:raw' });
    await event('join');
    await joiner.close();
    await event('leave');
    // A publication after the events: LHTTP and raw get it, and nothing before it.
    await herald.publish('room:raw', 'after the events');
    assert.equal(await raw.next(3000), 'after the events');
    assert.match((await lhttp.next(3000)) as string, /^LHTTP\/1\.0 publish\r\npublish:room:raw\r\n\r\nafter the events$/);
    assert.equal(raw.received.length, 1);
    assert.equal(lhttp.received.length, 1);
    await Promise.all([lhttp.close(), raw.close(), watcher.close()]);
  });
});
