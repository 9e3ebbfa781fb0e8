/** What the heartbeat is to do with a connection on a tick. */
export type LivenessVerdict = 'wait' | 'ping' | 'dead';

/**
 * A connection's signs of life, as the heartbeat (transport/heartbeat.ts)
 * reads them: when something last arrived from the peer (a frame, a pong),
 * the ping outstanding, and outbound progress since it (bytes the kernel
 * took, which only a reading peer makes room for). Times are ms since the
 * epoch; byte counts are the transport's `bytesHandedOver`.
 */
export class Liveness {
  /** Last time anything arrived from the peer. */
  private lastSeenAt: number;
  /** When the outstanding ping was sent; 0: none. */
  private pingSentAt = 0;
  /** The transport's bytes handed over at the last progress seen. */
  private handedOver = 0;
  /** When outbound progress was last seen (or the ping sent). */
  private progressAt = 0;

  constructor(now: number) {
    this.lastSeenAt = now;
  }

  /** Last time anything arrived from the peer (ms since the epoch). */
  get lastSeen(): number {
    return this.lastSeenAt;
  }

  /** Something arrived from the peer: a frame, a pong, a command posted for it. */
  seen(now: number): void {
    this.lastSeenAt = now;
  }

  /**
   * One heartbeat tick: `ping` when the peer has been silent for `interval`
   * (the caller sends the ping; the ping is recorded as sent now), `dead`
   * when a pinged peer showed no sign of life and no outbound progress for
   * `timeout` (ms), `wait` otherwise. `handedOver` reads the transport's
   * counter, only when a ping is outstanding.
   */
  tick(now: number, interval: number, timeout: number, handedOver: () => number): LivenessVerdict {
    if (this.pingSentAt !== 0) {
      if (this.lastSeenAt < this.pingSentAt) {
        const bytes = handedOver();
        if (bytes > this.handedOver) {
          this.handedOver = bytes;
          this.progressAt = now;
        }
        return now - this.progressAt >= timeout ? 'dead' : 'wait';
      }
      this.pingSentAt = 0;
    }
    if (now - this.lastSeenAt < interval) return 'wait';
    this.pingSentAt = now;
    this.progressAt = now;
    this.handedOver = handedOver();
    return 'ping';
  }
}
