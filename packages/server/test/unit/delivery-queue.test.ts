import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { DeliveryQueue, type AttemptOutcome, type Batch, type DeliveryOptions } from '../../src/events/delivery.js';

const OPTIONS: DeliveryOptions = { batchWindow: 10, maxBatch: 3, maxQueue: 100, retryDelay: 5, maxRetryDelay: 20, maxAge: 60_000 };

/** A queue over a scripted attempt function; records batches, outcomes and what the report was told. */
function setup(script: Array<AttemptOutcome | 'hang'> = [], options: Partial<DeliveryOptions> = {}) {
  const attempts: Array<{ id: string; items: number[]; attempt: number }> = [];
  const told = { delivered: 0, retried: 0, failed: [] as Array<[string, number]> };
  const warnings: string[] = [];
  const log = { warn: (_: unknown, message: string) => warnings.push(message), error: (_: unknown, message: string) => warnings.push(message) } as unknown as Logger;
  const queue = new DeliveryQueue<number>(
    'test',
    { ...OPTIONS, ...options },
    async (batch: Batch<number>, attempt) => {
      attempts.push({ id: batch.id, items: [...batch.items], attempt });
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

  it('bounded: past maxQueue the oldest waiting items are dropped, reported and logged', async () => {
    const { queue, told, warnings, attempts, settled } = setup(['hang'], { maxQueue: 4, maxBatch: 2, batchWindow: 0 });
    queue.push(1);
    queue.push(2);
    await settled(() => attempts.length === 1);
    for (let i = 3; i <= 8; i++) queue.push(i);
    assert.deepEqual(told.failed, [['overflow', 1], ['overflow', 1]]);
    assert.equal(queue.size, 6, 'the batch being attempted and the 4 newest');
    assert.match(warnings[0]!, /queue full/);
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
