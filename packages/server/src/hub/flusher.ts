/** Anything that gathers frames during a turn and sends them when flushed. */
export interface Batched {
  flushPending(): void;
}

/**
 * Write coalescing. A session gathers the frames written to it during an
 * event-loop turn; the first one schedules it here, and every scheduled
 * session is flushed once, in the check phase (setImmediate), as a single
 * Buffer written to its socket. A burst of publications that arrives in one
 * read therefore costs one write and one syscall per subscriber instead of
 * one per frame. (Measured against cork/uncork, which leaves the same
 * frames as a writev of many buffers: the single buffer was faster, see
 * docs/benchmarks.md.)
 */
export class Flusher {
  private pending: Batched[] = [];
  private scheduled = false;

  schedule(target: Batched): void {
    this.pending.push(target);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Flushes every session scheduled since the last flush. */
  readonly flush = (): void => {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; i++) pending[i]!.flushPending();
  };
}
