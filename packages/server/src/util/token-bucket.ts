/**
 * A token bucket: `rate` tokens per second, at most `burst` saved up. Used
 * for commands and new subscriptions per connection, and new connections per node.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now = Date.now()): boolean {
    return this.takeMany(1, now);
  }

  /** Takes `count` tokens at once, or none (false) when fewer are saved up. */
  takeMany(count: number, now = Date.now()): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }
}
