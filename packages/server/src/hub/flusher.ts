import type { Duplex } from 'node:stream';

/** Anything whose socket the flusher corks and later uncorks. */
export interface Corkable {
  readonly socket: Duplex;
  corked: boolean;
}

/**
 * Write coalescing. The first frame written to a socket in an event-loop turn
 * corks it; every socket corked in the turn is uncorked once, in the check
 * phase (setImmediate), so all the frames of the turn leave in one writev
 * syscall. A burst of publications that arrives in one read therefore costs
 * one syscall per subscriber instead of one per frame.
 */
export class Flusher {
  private pending: Corkable[] = [];
  private scheduled = false;

  cork(target: Corkable): void {
    target.socket.cork();
    target.corked = true;
    this.pending.push(target);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Uncorks every socket corked since the last flush. */
  readonly flush = (): void => {
    this.scheduled = false;
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; i++) {
      const target = pending[i]!;
      if (!target.corked) continue;
      target.corked = false;
      target.socket.uncork();
    }
  };
}
