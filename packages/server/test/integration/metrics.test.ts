import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DisconnectInfo } from '../../src/index.js';
import { connect, deadline, http, startHerald } from '../helpers/helpers.js';
import { parsePrometheus, value } from '../helpers/metrics.js';

describe('/metrics', () => {
  it('counts a scripted scenario: 10 connections, 100 publications, one slow client cut', async () => {
    const herald = await startHerald({ limits: { maxQueueBytes: 128 * 1024 } });
    const clients = await Promise.all(Array.from({ length: 10 }, () => connect(herald)));
    for (const c of clients) await c.request({ action: 'subscribe', topic: 'metered' });

    for (let i = 0; i < 100; i++) assert.equal((await http(herald, 'POST', '/api/publish', { topic: 'metered', message: i })).status, 200);
    for (const c of clients) await c.collect(100);

    let samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.equal(value(samples, 'herald_connections', { protocol: 'json' }), 10);
    assert.equal(value(samples, 'herald_connects_total', { protocol: 'json' }), 10);
    assert.equal(value(samples, 'herald_topics'), 1);
    assert.equal(value(samples, 'herald_subscriptions'), 10);
    assert.equal(value(samples, 'herald_messages_published_total', { source: 'http' }), 100);
    assert.equal(value(samples, 'herald_messages_delivered_total'), 1000);
    assert.equal(value(samples, 'herald_publish_fanout_seconds_count'), 100);
    assert.equal(value(samples, 'herald_http_requests_total', { route: '/api/publish', method: 'POST', status: '200' }), 100);
    assert.equal(value(samples, 'herald_broker_up', { broker: 'memory' }), 1);
    assert.ok(value(samples, 'nodejs_eventloop_lag_seconds') >= 0, 'event-loop lag');
    assert.ok(value(samples, 'process_cpu_user_seconds_total') > 0, 'process metrics');

    // A client that stops reading is cut with 1013: the slow-consumer counter and the disconnect by code move.
    const slow = clients[0]!;
    const cut = new Promise<DisconnectInfo>((resolve) => herald.on('disconnect', (_c, info) => info.code === 1013 && resolve(info)));
    slow.ws.pause();
    const big = 'z'.repeat(32 * 1024);
    let sent = 0;
    let isCut = false;
    void cut.then(() => (isCut = true));
    while (!isCut && sent < 2000) {
      await herald.publish('metered', big, 'library');
      sent++;
      if (sent % 16 === 0) await Promise.all(clients.slice(1).map((c) => c.collect(100 + sent)));
    }
    await deadline(cut, 5000, 'the slow client to be cut');
    await herald.publish('metered', 'after', 'library');

    samples = parsePrometheus((await http(herald, 'GET', '/metrics')).text);
    assert.equal(value(samples, 'herald_slow_consumer_disconnects_total'), 1);
    assert.equal(value(samples, 'herald_disconnects_total', { code: '1013', by: 'server' }), 1);
    assert.equal(value(samples, 'herald_connections', { protocol: 'json' }), 9);
    assert.equal(value(samples, 'herald_messages_published_total', { source: 'library' }), sent + 1);
    // Every frame attempted is delivered or dropped: 100 × 10, then `sent` × 10 (the slow client's share
    // dropped from its cut on), then the last publication to the 9 left.
    assert.equal(value(samples, 'herald_messages_delivered_total') + value(samples, 'herald_messages_dropped_total'), 1000 + sent * 10 + 9);
    assert.ok(value(samples, 'herald_messages_dropped_total') >= 1);
    for (const sample of samples) {
      assert.ok(!('topic' in sample.labels) && !('uid' in sample.labels), `no topic or uid label on ${sample.name}`);
    }
    for (const c of clients.slice(1)) await c.close();
    await herald.close();
  });

  it('is protected like the API', async () => {
    const herald = await startHerald({ apiKeys: ['metrics-key-0123456789'] });
    assert.equal((await http(herald, 'GET', '/metrics')).status, 401);
    const ok = await http(herald, 'GET', '/metrics', undefined, { authorization: 'Bearer metrics-key-0123456789' });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /text\/plain/);
    await herald.close();
  });
});
