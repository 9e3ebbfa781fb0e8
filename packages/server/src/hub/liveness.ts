/** What the heartbeat is to do with a connection on a tick. */
export type LivenessVerdict = 'wait' | 'ping' | 'dead';

/** The heartbeat's settings, as `Liveness.tick` reads them (ms, and bytes per second). */
export interface LivenessRules {
  /** Ping a connection silent this long. */
  readonly interval: number;
  /** Dead when a pinged connection shows no sign of life and no outbound progress this long. */
  readonly timeout: number;
  /** The slowest reading given time to read what the kernel holds (see `tick`); 0: none. */
  readonly minReadRate: number;
}

/** A connection's output as the transport counts it (the `Transport` itself). */
export interface Output {
  /** Bytes handed to the kernel so far (they leave only while the peer reads). */
  readonly bytesHandedOver: number;
  /** Bytes written but not yet taken by the kernel. */
  readonly queuedBytes: number;
}

/**
 * Most bytes counted as possibly still in the kernel's buffers for a peer
 * (its send buffer and the peer's receive buffer): what the read time of
 * `tick` is computed from, at most.
 */
export const MAX_KERNEL_BYTES = 2 * 1024 * 1024;

/**
 * A connection's signs of life, as the heartbeat (transport/heartbeat.ts)
 * reads them: when something last arrived from the peer (a frame, a pong),
 * the ping outstanding, and outbound progress since it (bytes the kernel
 * took, which only a reading peer makes room for). Times are ms since the
 * epoch; byte counts are positions in the connection's output.
 */
export class Liveness {
  /** Last time anything arrived from the peer. */
  private lastSeenAt: number;
  /** When the outstanding ping was sent; 0: none. */
  private pingSentAt = 0;
  /** Where the outstanding ping is in the output: every byte before it, queued or handed over, when it was sent. */
  private pingPosition = 0;
  /** How far the peer is known to have read: the position of the last ping it answered. */
  private readTo = 0;
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
   * One heartbeat tick: `ping` when the peer has been silent for
   * `interval` (the caller sends the ping; it is recorded as sent now),
   * `dead` when a pinged peer showed no sign of life and no outbound
   * progress for `timeout`, `wait` otherwise.
   *
   * Outbound progress does not show a peer reading the kernel's buffers: once
   * bytes went to the kernel, a peer reading them (a burst on a slow link,
   * the ping behind it) shows nothing until it reaches the ping, and even
   * with Herald's own queue full the kernel takes more only once much of its
   * buffer has drained (a socket wakes its writer at a fraction of its
   * buffer), which can take seconds at a slow reader's pace. So the timeout
   * starts only after the time a peer reading at `minReadRate` needs for the
   * bytes the kernel may hold: those handed over since the last ping it
   * answered, at most `MAX_KERNEL_BYTES`. A stalled peer is cut that much
   * later, or sooner by the queue bound when more bytes come for it.
   */
  tick(now: number, rules: LivenessRules, output: Output): LivenessVerdict {
    if (this.pingSentAt !== 0) {
      if (this.lastSeenAt < this.pingSentAt) {
        const bytes = output.bytesHandedOver;
        if (bytes > this.handedOver) {
          this.handedOver = bytes;
          this.progressAt = now;
        }
        // The time a peer reading at minReadRate needs for what the kernel may hold, before the timeout runs.
        const unread = Math.min(MAX_KERNEL_BYTES, Math.max(0, this.handedOver - this.readTo));
        const readTime = rules.minReadRate > 0 ? (unread * 1000) / rules.minReadRate : 0;
        return now - this.progressAt - readTime >= rules.timeout ? 'dead' : 'wait';
      }
      // Answered: the peer read up to the ping.
      this.readTo = this.pingPosition;
      this.pingSentAt = 0;
    }
    if (now - this.lastSeenAt < rules.interval) return 'wait';
    this.pingSentAt = now;
    this.progressAt = now;
    this.handedOver = output.bytesHandedOver;
    this.pingPosition = this.handedOver + output.queuedBytes;
    return 'ping';
  }
}
