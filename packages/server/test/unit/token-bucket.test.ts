import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../src/util/token-bucket.js';

/** Takes one token at a time at `now` until it is refused; how many were taken. */
function drain(bucket: TokenBucket, now: number): number {
  let taken = 0;
  while (bucket.take(now)) taken++;
  return taken;
}

describe('TokenBucket', () => {
  it('starts full: burst tokens at once, then none', () => {
    const bucket = new TokenBucket(10, 20, 0);
    assert.equal(drain(bucket, 0), 20);
    assert.equal(bucket.take(0), false);
  });

  it('refills at rate per second, in proportion to the time passed', () => {
    const bucket = new TokenBucket(10, 20, 0);
    drain(bucket, 0);
    assert.equal(bucket.take(50), false, 'half a token after 50 ms');
    assert.equal(bucket.take(100), true, 'one token after 100 ms');
    assert.equal(bucket.take(100), false);
    assert.equal(drain(bucket, 600), 5, 'five more after another 500 ms');
  });

  it('saves up at most burst tokens, however long it waits', () => {
    const bucket = new TokenBucket(10, 20, 0);
    drain(bucket, 0);
    assert.equal(drain(bucket, 3_600_000), 20);
  });

  it('takeMany takes all or nothing', () => {
    const bucket = new TokenBucket(1, 5, 0);
    assert.equal(bucket.takeMany(3, 0), true);
    assert.equal(bucket.takeMany(3, 0), false, 'two left: three are refused');
    assert.equal(bucket.takeMany(2, 0), true, 'and none was taken by the refusal');
    assert.equal(bucket.takeMany(6, 3_600_000), false, 'more than burst is never possible');
    assert.equal(bucket.takeMany(5, 3_600_000), true);
  });

  it('a clock that goes back neither refills nor breaks the bucket', () => {
    const bucket = new TokenBucket(10, 2, 1000);
    drain(bucket, 1000);
    assert.equal(bucket.take(500), false, 'earlier than the last take: nothing refilled');
    assert.equal(bucket.take(1100), true, 'refills from the last time it saw');
  });

  it('a fractional rate still refills', () => {
    const bucket = new TokenBucket(0.5, 1, 0);
    assert.equal(bucket.take(0), true);
    assert.equal(bucket.take(1000), false, 'half a token after a second');
    assert.equal(bucket.take(2000), true);
  });
});
