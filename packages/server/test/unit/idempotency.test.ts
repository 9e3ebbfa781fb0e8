import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { HeraldError, InDoubtError } from '../../src/errors.js';
import { IDEMPOTENCY_ENTRY_BYTES, IdempotencyCache } from '../../src/util/idempotency.js';

const roomy = { window: 60_000, maxKeys: 1000, maxBytes: 1 << 20, wait: 1000 };

/** A `run` that counts its calls and resolves with the call number. */
function counter(): { run: () => Promise<number>; calls: () => number } {
  let calls = 0;
  return { run: () => Promise.resolve(++calls), calls: () => calls };
}

/** A promise settled from outside. */
function later<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('IdempotencyCache', () => {
  afterEach(() => mock.timers.reset());

  it('a repeated key on a topic answers the first result and runs nothing', async () => {
    const cache = new IdempotencyCache<number>(roomy);
    const { run, calls } = counter();
    const first = cache.remember('t', 'k', run);
    assert.equal(cache.remember('t', 'k', run), first, 'the same promise, even before it settles');
    assert.equal(await cache.remember('t', 'k', run), 1);
    assert.equal(calls(), 1);
  });

  it('keys are per topic', async () => {
    const cache = new IdempotencyCache<number>(roomy);
    const { run, calls } = counter();
    await cache.remember('a', 'k', run);
    await cache.remember('b', 'k', run);
    await cache.remember('a', 'k2', run);
    assert.equal(calls(), 3);
    assert.equal(cache.size, 3);
    // A key may hold the separator: the topic (which never holds a newline) still tells them apart.
    await cache.remember('a', 'k\nb', run);
    assert.equal(await cache.remember('a', 'k', run), 1);
    assert.equal(calls(), 4);
  });

  it('a rejected result is forgotten, so that a retry runs again', async () => {
    const cache = new IdempotencyCache<number>(roomy);
    await assert.rejects(cache.remember('t', 'k', () => Promise.reject(new Error('broker down'))), /broker down/);
    await settle();
    assert.equal(cache.size, 0);
    assert.equal(cache.estimatedBytes, 0, 'its bytes are given back');
    assert.equal(await cache.remember('t', 'k', () => Promise.resolve(7)), 7);
  });

  it('a key is forgotten after the window', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const cache = new IdempotencyCache<number>({ ...roomy, window: 1000 });
    const { run, calls } = counter();
    await cache.remember('t', 'old', run);
    mock.timers.tick(600);
    await cache.remember('t', 'new', run);
    mock.timers.tick(500);
    assert.equal(await cache.remember('t', 'new', run), 2, '500 ms old: remembered');
    assert.equal(await cache.remember('t', 'old', run), 3, '1100 ms old: forgotten, published again');
    assert.equal(calls(), 3);
  });

  it('past maxKeys the oldest keys go first', async () => {
    const cache = new IdempotencyCache<number>({ ...roomy, maxKeys: 3 });
    const { run } = counter();
    for (const key of ['k1', 'k2', 'k3', 'k4']) await cache.remember('t', key, run);
    assert.equal(cache.size, 3);
    assert.equal(await cache.remember('t', 'k4', run), 4, 'the newest is kept');
    assert.equal(await cache.remember('t', 'k2', run), 2);
    assert.equal(await cache.remember('t', 'k1', run), 5, 'the oldest went');
  });

  it('past maxBytes the oldest keys go first; the estimate is per entry plus two bytes a character', async () => {
    const entry = (topic: string, key: string): number => IDEMPOTENCY_ENTRY_BYTES + 2 * (topic.length + 1 + key.length);
    const cache = new IdempotencyCache<number>({ ...roomy, maxBytes: entry('t', 'k1') * 2 });
    const { run } = counter();
    await cache.remember('t', 'k1', run);
    assert.equal(cache.estimatedBytes, entry('t', 'k1'));
    await cache.remember('t', 'k2', run);
    assert.equal(cache.size, 2);
    await cache.remember('t', 'k3', run);
    assert.deepEqual([cache.size, cache.estimatedBytes], [2, entry('t', 'k2') * 2]);
    await cache.remember('t', 'a-much-longer-key', run);
    assert.equal(cache.size, 1, 'a bigger entry pushes out more than one');
    assert.ok(cache.estimatedBytes <= entry('t', 'k1') * 2);
  });

  it('an entry too big for maxBytes on its own is answered but not remembered', async () => {
    const cache = new IdempotencyCache<number>({ ...roomy, maxBytes: 10 });
    const { run, calls } = counter();
    assert.equal(await cache.remember('t', 'k', run), 1);
    assert.deepEqual([cache.size, cache.estimatedBytes], [0, 0]);
    await cache.remember('t', 'k', run);
    assert.equal(calls(), 2);
  });

  it('a result rejected after its key was pushed out does not forget the key\'s newer entry', async () => {
    const cache = new IdempotencyCache<number>({ ...roomy, maxKeys: 1 });
    const first = later<number>();
    const firstResult = cache.remember('t', 'k', () => first.promise);
    await cache.remember('t', 'other', () => Promise.resolve(0)); // pushes k out
    const second = cache.remember('t', 'k', () => Promise.resolve(2)); // k again: a new entry
    first.reject(new Error('late failure'));
    await assert.rejects(firstResult);
    await settle();
    assert.equal(cache.remember('t', 'k', () => Promise.resolve(3)), second, 'the newer entry is still remembered');
    assert.equal(cache.size, 1);
  });

  describe('a first attempt answered in doubt (the broker may still make it)', () => {
    /** A first attempt rejected in doubt, whose outcome the test settles. */
    async function inDoubt(cache: IdempotencyCache<number>) {
      const outcome = later<number>();
      await assert.rejects(cache.remember('t', 'k', () => Promise.reject(new InDoubtError('no answer within 1000 ms', outcome.promise))), { code: 'unavailable' });
      await settle();
      return outcome;
    }

    it('keeps its key: a retry made while in doubt publishes nothing and answers its result once it is made', async () => {
      const cache = new IdempotencyCache<number>(roomy);
      const outcome = await inDoubt(cache);
      assert.deepEqual([cache.size, cache.inDoubt], [1, 1]);
      const { run, calls } = counter();
      const retry = cache.remember('t', 'k', run);
      outcome.resolve(41);
      assert.equal(await retry, 41);
      assert.equal(await cache.remember('t', 'k', run), 41, 'a later retry too');
      assert.equal(calls(), 0);
      assert.equal(cache.inDoubt, 0);
    });

    it('a retry is answered unavailable after `wait` while the doubt lasts, and publishes nothing', async () => {
      mock.timers.enable({ apis: ['setTimeout'] });
      const cache = new IdempotencyCache<number>(roomy);
      const outcome = await inDoubt(cache);
      const { run, calls } = counter();
      const retry = cache.remember('t', 'k', run);
      mock.timers.tick(999);
      await settle();
      mock.timers.tick(1);
      await assert.rejects(retry, (err: unknown) => err instanceof InDoubtError && /still unanswered/.test(err.message));
      outcome.resolve(5);
      await settle();
      assert.equal(await cache.remember('t', 'k', run), 5);
      assert.equal(calls(), 0);
    });

    it('is forgotten once it surely was not made: a retry waiting then is answered unavailable (within `wait`), the next one publishes', async () => {
      const cache = new IdempotencyCache<number>(roomy);
      const outcome = await inDoubt(cache);
      const { run, calls } = counter();
      const retry = cache.remember('t', 'k', run);
      outcome.reject(new HeraldError('unavailable', 'Redis refused it'));
      await assert.rejects(retry, /failed \(Redis refused it\): the key is forgotten, retry to publish/);
      assert.equal(calls(), 0);
      assert.equal(await cache.remember('t', 'k', run), 1);
      assert.equal(await cache.remember('t', 'k', run), 1, 'the retry\'s result is remembered');
      assert.equal(calls(), 1);
    });

    it('never known (the connection dropped with it unanswered): retries are refused until the key is forgotten', async () => {
      mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
      const cache = new IdempotencyCache<number>({ ...roomy, window: 1000 });
      const outcome = await inDoubt(cache);
      outcome.reject(new InDoubtError('the connection dropped before Redis answered', null));
      await settle();
      const { run, calls } = counter();
      await assert.rejects(cache.remember('t', 'k', run), (err: unknown) => err instanceof InDoubtError && /will never be known/.test(err.message));
      mock.timers.tick(1001);
      assert.equal(await cache.remember('t', 'k', run), 1, 'after the window the key publishes again');
      assert.equal(calls(), 1);
    });

    it('is forgotten at once when the caller keeps no doubt (the store keeps the key itself)', async () => {
      const cache = new IdempotencyCache<number>(roomy);
      await assert.rejects(cache.remember('t', 'k', () => Promise.reject(new InDoubtError('late', later<number>().promise)), false));
      await settle();
      assert.equal(cache.size, 0);
    });
  });
});
