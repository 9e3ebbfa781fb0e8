import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Flusher, type Batched } from '../../src/hub/flusher.js';

/** A session stand-in that records its flushes in a shared log. */
function target(name: string, log: string[], onFlush?: () => void): Batched {
  return {
    flushPending: () => {
      log.push(name);
      onFlush?.();
    },
  };
}

const checkPhase = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Flusher', () => {
  it('flushes nothing during the turn, and every scheduled target once in the check phase, in order', async () => {
    const flusher = new Flusher();
    const log: string[] = [];
    for (const name of ['a', 'b', 'c']) flusher.schedule(target(name, log));
    await Promise.resolve();
    assert.deepEqual(log, [], 'not in the same turn, not on a microtask');
    await checkPhase();
    assert.deepEqual(log, ['a', 'b', 'c']);
    await checkPhase();
    assert.deepEqual(log, ['a', 'b', 'c'], 'each scheduling flushes once');
  });

  it('one setImmediate per turn, however many targets', async () => {
    const flusher = new Flusher();
    const log: string[] = [];
    const original = globalThis.setImmediate;
    let immediates = 0;
    globalThis.setImmediate = ((callback: () => void) => {
      immediates++;
      return original(callback);
    }) as typeof setImmediate;
    try {
      for (let i = 0; i < 100; i++) flusher.schedule(target(`t${i}`, log));
    } finally {
      globalThis.setImmediate = original;
    }
    assert.equal(immediates, 1);
    await checkPhase();
    assert.equal(log.length, 100);
  });

  it('a target scheduled while flushing is flushed in the next round, not lost', async () => {
    const flusher = new Flusher();
    const log: string[] = [];
    const late = target('late', log);
    flusher.schedule(target('first', log, () => flusher.schedule(late)));
    await checkPhase();
    assert.deepEqual(log, ['first']);
    await checkPhase();
    assert.deepEqual(log, ['first', 'late']);
  });

  it('flush() can be called at once (a session closing); the scheduled round then finds nothing left', async () => {
    const flusher = new Flusher();
    const log: string[] = [];
    flusher.schedule(target('a', log));
    flusher.flush();
    assert.deepEqual(log, ['a']);
    flusher.schedule(target('b', log));
    await checkPhase();
    assert.deepEqual(log, ['a', 'b'], 'a new schedule after a direct flush is still flushed');
  });
});
