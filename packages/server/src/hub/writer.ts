import type { Transport } from '../transport/transport.js';
import type { Batched, Flusher } from './flusher.js';

/**
 * A batch larger than this is handed to the transport at once rather than at
 * the end of the turn, so that a burst (an HTTP batch, a busy topic) counts
 * against the queue limit only for what the peer really cannot take.
 */
const FLUSH_AT = 64 * 1024;

/**
 * A connection's bounded, coalescing outbound queue. Frames written during an
 * event-loop turn are gathered and handed to the transport as one buffer when
 * the flusher runs (one write, one syscall per connection per turn, see
 * Flusher). A write that would leave more than `maxBytes` waiting (the
 * transport's queue plus this turn's frames) is refused and `onOverflow` is
 * told, once per refused write: the owner closes the connection (1013)
 * instead of letting memory grow without bound.
 */
export class Writer implements Batched {
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The transport's queue as read at the first write of this turn (it cannot grow while frames are only gathered). */
  private transportQueued = 0;
  /** Frames accepted. */
  frames = 0;
  /** When false, flushed bytes are dropped (the connection is gone). */
  open = true;

  constructor(
    private readonly transport: Transport,
    private readonly flusher: Flusher,
    private readonly maxBytes: number,
    private readonly onOverflow: (queuedBytes: number) => void,
  ) {}

  /** Queues a complete frame. Returns false when it would overflow the queue (`onOverflow` was called). */
  write(frame: Buffer): boolean {
    if (this.pendingBytes === 0) this.transportQueued = this.transport.queuedBytes;
    const queued = this.transportQueued + this.pendingBytes + frame.length;
    if (queued > this.maxBytes) {
      this.onOverflow(queued);
      return false;
    }
    if (this.pendingBytes === 0) this.flusher.schedule(this);
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    this.frames++;
    if (this.pendingBytes >= FLUSH_AT) this.flushPending();
    return true;
  }

  /** Hands the frames of this turn to the transport as one buffer. */
  flushPending(): void {
    const bytes = this.pendingBytes;
    if (bytes === 0) return;
    const pending = this.pending;
    this.pendingBytes = 0;
    // The array is reused turn after turn: Buffer.concat copies, and a single frame is handed over as is.
    const chunk = !this.open ? null : pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes);
    pending.length = 0;
    if (chunk) this.transport.write(chunk);
  }

  /** Bytes waiting to be sent: written but not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.transport.queuedBytes + this.pendingBytes;
  }
}
