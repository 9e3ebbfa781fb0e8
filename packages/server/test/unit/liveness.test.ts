import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Liveness } from '../../src/hub/liveness.js';

const INTERVAL = 1_000;
const TIMEOUT = 500;

/** Ticks `liveness` at `now` with the transport's counter at `bytes`. */
function ticker(liveness: Liveness): (now: number, bytes?: number) => string {
  return (now, bytes = 0) => liveness.tick(now, INTERVAL, TIMEOUT, () => bytes);
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
    assert.equal(tick(1_000, 100), 'ping');
    assert.equal(tick(1_400, 200), 'wait', 'bytes left: the peer is reading');
    assert.equal(tick(1_800, 300), 'wait');
    assert.equal(tick(2_200, 300), 'wait', 'no progress for 400 ms');
    assert.equal(tick(2_300, 300), 'dead', 'no progress for the timeout');
  });

  it('the counter read at the ping is the baseline: the same count later is not progress', () => {
    const tick = ticker(new Liveness(0));
    assert.equal(tick(1_000, 5_000), 'ping');
    assert.equal(tick(1_500, 5_000), 'dead');
  });
});
