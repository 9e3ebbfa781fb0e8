import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { DeliveryQueue, type AttemptOutcome, type Batch, type DeliveryOptions } from '../../src/events/delivery.js';
import { retryAfter, withoutCredentials } from '../../src/events/webhooks.js';

const OPTIONS: DeliveryOptions = { batchWindow: 10, maxBatch: 3, maxQueue: 100, retryDelay: 5, maxRetryDelay: 20, maxAge: 60_000 };

/** A queue over a scripted attempt function; records batches, outcomes and what the report was told. */
function setup(script: Array<AttemptOutcome | 'hang'> = [], options: Partial<DeliveryOptions> = {}) {
  const attempts: Array<{ id: string; items: number[]; attempt: number; at: number }> = [];
  const told = { delivered: 0, retried: 0, failed: [] as Array<[string, number]> };
  const warnings: string[] = [];
  const log = { warn: (_: unknown, message: string) => warnings.push(message), error: (_: unknown, message: string) => warnings.push(message) } as unknown as Logger;
  const queue = new DeliveryQueue<number>(
    'test',
    { ...OPTIONS, ...options },
    async (batch: Batch<number>, attempt) => {
      attempts.push({ id: batch.id, items: [...batch.items], attempt, at: Date.now() });
      const next = script.shift() ?? { ok: true };
      if (next === 'hang') return new Promise<AttemptOutcome>(() => undefined);
      return next;
    },
    { delivered: (n) => (told.delivered += n), retried: () => told.retried++, failed: (reason, n) => told.failed.push([reason, n]) },
    log,
  );
  const settled = async (check: () => boolean): Promise<void> => {
    const until = Date.now() + 5000;
    while (!check()) {
      assert.ok(Date.now() < until, 'timed out');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  };
  return { queue, attempts, told, warnings, settled };
}

describe('DeliveryQueue', () => {
  it('batches by size at once and by window otherwise, in order, one batch at a time', async () => {
    const { queue, attempts, told, settled } = setup();
    for (let i = 1; i <= 7; i++) queue.push(i);
    await settled(() => told.delivered === 7);
    assert.deepEqual(attempts.map((a) => a.items), [[1, 2, 3], [4, 5, 6], [7]]);
    assert.equal(queue.size, 0);
  });

  it('retries a failed batch with the same id and items until it is acknowledged; later items wait behind it', async () => {
    const fail: AttemptOutcome = { ok: false, retry: true, reason: 'status 500' };
    const { queue, attempts, told, settled } = setup([fail, fail]);
    queue.push(1);
    queue.push(2);
    await settled(() => attempts.length >= 1);
    queue.push(3);
    await settled(() => told.delivered === 3);
    assert.deepEqual(attempts.slice(0, 3).map((a) => [a.items, a.attempt]), [[[1, 2], 0], [[1, 2], 1], [[1, 2], 2]]);
    assert.equal(new Set(attempts.slice(0, 3).map((a) => a.id)).size, 1);
    assert.deepEqual(attempts.at(-1)!.items, [3]);
    assert.equal(told.retried, 2);
  });

  it('a refusal gives the batch up at once; a batch past maxAge is given up', async () => {
    const { queue, told, settled, attempts } = setup([{ ok: false, retry: false, reason: 'status 400' }]);
    queue.push(1);
    await settled(() => told.failed.length === 1);
    assert.deepEqual(told.failed, [['refused', 1]]);
    assert.equal(attempts.length, 1);

    const old = setup([{ ok: false, retry: true, reason: 'status 503' }], { maxAge: 1, retryDelay: 50, maxRetryDelay: 50 });
    old.queue.push(1);
    await old.settled(() => old.told.failed.length === 1);
    assert.deepEqual(old.told.failed, [['expired', 1]]);
  });

  it('bounded: what it holds, the batch being attempted included (its size, the gauge), never passes maxQueue; past it the oldest waiting items are dropped, reported and logged', async () => {
    const { queue, told, warnings, attempts, settled } = setup(['hang'], { maxQueue: 4, maxBatch: 2, batchWindow: 0 });
    queue.push(1);
    queue.push(2);
    await settled(() => attempts.length === 1);
    const sizes: number[] = [];
    for (let i = 3; i <= 8; i++) {
      queue.push(i);
      sizes.push(queue.size);
    }
    assert.deepEqual(sizes, [3, 4, 4, 4, 4, 4]);
    assert.deepEqual(told.failed, [['overflow', 1], ['overflow', 1], ['overflow', 1], ['overflow', 1]], 'items 3 to 6 dropped, the batch in flight kept');
    assert.match(warnings[0]!, /queue full/);
  });

  it("honours the receiver's Retry-After beyond maxRetryDelay, and gives the batch up at once when it reaches past maxAge", async () => {
    const { queue, attempts, told, settled } = setup([{ ok: false, retry: true, reason: 'status 503', after: 300 }], { maxRetryDelay: 20 });
    queue.push(1);
    await settled(() => told.delivered === 1);
    assert.equal(attempts.length, 2);
    assert.ok(attempts[1]!.at - attempts[0]!.at >= 295, `retried ${attempts[1]!.at - attempts[0]!.at} ms after, not before the 300 asked`);

    const far = setup([{ ok: false, retry: true, reason: 'status 429', after: 120_000 }], { maxAge: 60_000 });
    far.queue.push(1);
    await far.settled(() => far.told.failed.length === 1);
    assert.deepEqual(far.told.failed, [['expired', 1]]);
    assert.equal(far.attempts.length, 1);
  });

  it('Retry-After is read as seconds or an HTTP-date; a URL in an error message loses its credentials', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfter('120', now), 120_000);
    assert.equal(retryAfter('Thu, 01 Jan 2026 00:02:00 GMT', now), 120_000);
    assert.equal(retryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a date past: no wait');
    assert.equal(retryAfter('soon', now), undefined);
    assert.equal(retryAfter(null, now), undefined);
    assert.equal(withoutCredentials('cannot fetch http://user:pw@host:8080/x'), 'cannot fetch http://***@host:8080/x');
  });

  it('close delivers what is queued without waiting for the window, and gives up what it cannot deliver in time', async () => {
    const { queue, told, attempts } = setup([], { batchWindow: 60_000 });
    queue.push(1);
    await queue.close(1000);
    assert.deepEqual(attempts.map((a) => a.items), [[1]]);
    assert.equal(told.delivered, 1);
    queue.push(2);
    assert.deepEqual(told.failed, [['shutdown', 1]], 'nothing is taken after close');

    const stuck = setup(['hang']);
    stuck.queue.push(1);
    const started = Date.now();
    await stuck.queue.close(50);
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(stuck.told.failed, [['shutdown', 1]]);
  });
});
