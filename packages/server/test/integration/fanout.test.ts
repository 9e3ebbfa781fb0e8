import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, http, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';

describe('fan-out', () => {
  it('1,000 clients × 100 messages: every client receives every message exactly once, in order', async () => {
    // All clients come from 127.0.0.1: lift the per-address limit (default 1000) for this test.
    const herald = await startHerald({ limits: { maxConnectionsPerIp: 2000, connectionsPerSecondPerIp: 2000 } });
    const clients: TestClient[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const opened = await Promise.all(Array.from({ length: 100 }, () => connect(herald)));
      clients.push(...opened);
    }
    await Promise.all(clients.map((c) => c.request({ action: 'subscribe', topic: 'crowd' })));
    assert.equal(internals(herald).hub.subscriberCount('crowd'), 1000);

    // Half the messages from a WebSocket publisher, half from the HTTP API, interleaved in order.
    const publisher = await connect(herald);
    for (let n = 0; n < 100; n++) {
      if (n % 2 === 0) await publisher.request({ action: 'publish', topic: 'crowd', message: { n } });
      else assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'crowd', message: { n } })).status, 200);
    }
    const expected = Array.from({ length: 100 }, (_, n) => n);
    await Promise.all(
      clients.map(async (c) => {
        const frames = await c.collect(100, 30_000);
        assert.deepEqual(
          frames.map((f) => f.message.n),
          expected,
        );
      }),
    );
    // Nothing more arrived: a ping reply is the next frame on a sample of clients.
    for (const c of clients.slice(0, 20)) {
      await c.request({ action: 'ping' });
      assert.equal(c.received.length, 100);
    }
    assert.equal(herald.status().deliveries, 100_000);
    await Promise.all([...clients, publisher].map((c) => c.close()));
    await herald.close();
  });
});
