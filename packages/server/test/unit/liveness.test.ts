import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Liveness, MAX_KERNEL_BYTES, type LivenessRules } from '../../src/hub/liveness.js';

const RULES: LivenessRules = { interval: 1_000, timeout: 500, minReadRate: 0 };

/** Ticks `liveness` at `now` with the transport's counters at `handed` (handed over) and `queued`. */
function ticker(liveness: Liveness, rules: LivenessRules = RULES): (now: number, handed?: number, queued?: number) => string {
  return (now, handed = 0, queued = 0) => liveness.tick(now, rules, { bytesHandedOver: handed, queuedBytes: queued });
}

describe('Liveness (the heartbeat\'s reading of one connection)', () => {
  it('asks for a ping once the peer has been silent for the interval, and only once while it is outstanding', () => {
    const tick = ticker(new Liveness(0));
    assert.equal(tick(999), 'wait');
    assert.equal(tick(1_000), 'ping');
    assert.equal(tick(1_100), 'wait', 'the ping is outstanding');
  });

  it('a pinged peer that shows nothing for the timeout is dead', () => {
    const tick = ticker(new Liveness(0));
    assert.equal(tick(1_000), 'ping');
    assert.equal(tick(1_499), 'wait');
    assert.equal(tick(1_500), 'dead');
  });

  it('anything from the peer after the ping answers it: the next ping waits a full interval', () => {
    const liveness = new Liveness(0);
    const tick = ticker(liveness);
    assert.equal(tick(1_000), 'ping');
    liveness.seen(1_200);
    assert.equal(liveness.lastSeen, 1_200);
    assert.equal(tick(1_600), 'wait', 'not dead: it answered');
    assert.equal(tick(2_199), 'wait');
    assert.equal(tick(2_200), 'ping');
  });

  it('outbound progress keeps a pinged peer alive; the timeout runs from the last progress', () => {
    const tick = ticker(new Liveness(0));
    assert.equal(tick(1_000, 100, 50), 'ping');
    assert.equal(tick(1_400, 200, 50), 'wait', 'bytes left: the peer is reading');
    assert.equal(tick(1_800, 300, 50), 'wait');
    assert.equal(tick(2_200, 300, 50), 'wait', 'no progress for 400 ms');
    assert.equal(tick(2_300, 300, 50), 'dead', 'no progress for the timeout, with bytes still queued');
  });

  it('the counter read at the ping is the baseline: the same count later is not progress', () => {
    const tick = ticker(new Liveness(0));
    assert.equal(tick(1_000, 5_000, 10), 'ping');
    assert.equal(tick(1_500, 5_000, 10), 'dead');
  });

  describe('with minReadRate: bytes the kernel holds get the time to be read', () => {
    const rules: LivenessRules = { ...RULES, minReadRate: 1_000 };

    it('all handed over, nothing queued: the timeout starts after what was handed over since the last answered ping, at minReadRate', () => {
      const liveness = new Liveness(0);
      const tick = ticker(liveness, rules);
      assert.equal(tick(1_000, 0), 'ping');
      liveness.seen(1_010);
      assert.equal(tick(1_100, 0), 'wait', 'answered: the peer read up to position 0');
      // A 2,000-byte burst goes to the kernel at once; the next ping sits behind it.
      assert.equal(tick(2_010, 2_000), 'ping');
      assert.equal(tick(4_400, 2_000), 'wait', 'reading the 2,000 bytes takes 2 s at 1,000 B/s: the timeout starts at 4,010');
      assert.equal(tick(4_509, 2_000), 'wait');
      assert.equal(tick(4_510, 2_000), 'dead', '2 s to read, then the 500 ms timeout');
    });

    it('the peer that reads to the ping and answers is alive, and the next grace counts only what followed', () => {
      const liveness = new Liveness(0);
      const tick = ticker(liveness, rules);
      assert.equal(tick(1_000, 3_000), 'ping');
      assert.equal(tick(3_000, 3_000), 'wait', 'within the 3 s a 3,000-byte read may take');
      liveness.seen(3_900);
      assert.equal(tick(4_000, 3_000), 'wait', 'answered');
      assert.equal(tick(4_900, 3_100), 'ping');
      assert.equal(tick(5_499, 3_100), 'wait', '100 bytes since the answered ping: 100 ms, then the timeout');
      assert.equal(tick(5_500, 3_100), 'dead');
    });

    it('the same time while Herald still queues bytes: the kernel takes more only once much of its buffer drained', () => {
      const tick = ticker(new Liveness(0), rules);
      assert.equal(tick(1_000, 2_000, 500), 'ping');
      assert.equal(tick(3_499, 2_000, 500), 'wait');
      assert.equal(tick(3_500, 2_000, 500), 'dead');
    });

    it('the time given is bounded by MAX_KERNEL_BYTES', () => {
      const tick = ticker(new Liveness(0), rules);
      const huge = 100 * MAX_KERNEL_BYTES;
      assert.equal(tick(1_000, huge), 'ping');
      const limit = 1_000 + (MAX_KERNEL_BYTES * 1000) / rules.minReadRate + rules.timeout;
      assert.equal(tick(limit - 1, huge), 'wait');
      assert.equal(tick(limit, huge), 'dead');
    });
  });
});
