import type { Duplex } from 'node:stream';
import { truncateCloseReason } from '@herald/protocol';
import type { WebSocket } from 'ws';
import { NO_GRANTS, type Grants } from '../auth/permissions.js';
import type { Publication } from '../broker/broker.js';
import type { HeraldError } from '../errors.js';
import type { Protocol } from '../protocols/protocol.js';
import type { TokenBucket } from '../util/token-bucket.js';
import type { Batched, Flusher } from './flusher.js';

export type SessionState = 'connecting' | 'open' | 'closing' | 'closed';

/** What a session needs from the gateway that owns it. */
export interface SessionHost {
  readonly flusher: Flusher;
  readonly maxQueueBytes: number;
  readonly closeTimeout: number;
  /** Called when a write would take the session over its queue limit. */
  onSlowConsumer(session: Session, queuedBytes: number): void;
  /** Called when a frame handler throws or rejects: a bug, not bad input. */
  onHandlerError(session: Session, err: unknown): void;
  /**
   * The policy's gate for every inbound frame (the command rate limit), run
   * before the protocol sees the frame: the refusal, or null to handle it.
   */
  admitFrame(session: Session): HeraldError | null;
}

/**
 * A corked batch larger than this is handed to the kernel at once rather
 * than at the end of the turn, so that a burst (an HTTP batch, a busy topic)
 * counts against the queue limit only for what the peer really cannot take.
 */
const FLUSH_AT = 64 * 1024;

/** Frames held back while an earlier command is still being handled. */
const INBOX_PAUSE_AT = 64;

interface Inbound {
  data: Buffer;
  isBinary: boolean;
}

/**
 * One WebSocket connection. Owns its subscriptions and its bounded outbound
 * path: frames are written straight to the socket (corked for the rest of the
 * event-loop turn, see Flusher), and a write that would leave more than
 * `maxQueueBytes` waiting in the socket closes the connection with 1013
 * instead of letting memory grow without bound.
 */
export class Session implements Batched {
  readonly topics = new Set<string>();
  readonly connectedAt = Date.now();
  state: SessionState = 'connecting';
  /** Frames written in this event-loop turn, sent together by the flusher. */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private socketQueued = 0;
  private readonly maxQueueBytes: number;
  private readonly flusher: Flusher;
  /** Identity, when the connection is authenticated (set only through Hub.setUser). */
  uid: string | undefined;
  /** What the connection's token or the connect hook granted. */
  grants: Grants = NO_GRANTS;
  /** Public information about the user (token `info` claim or connect hook). */
  info: unknown;
  /** Logged in with the push-centre seed's `{"uid":...}` frame: the seed's `/send` reaches it as the raw message, as in the seed. */
  rawPush = false;
  /**
   * Grants from subscribe tokens, by the topic they were used for: the
   * token's grant (a topic or `prefix*`), the uid it was issued to and its
   * expiry. A later `login` keeps a subscription its grant still covers.
   * Null until the connection uses a subscribe token.
   */
  subscribeGrants: Map<string, { grant: string; uid: string | undefined; expiresAt: number | undefined }> | null = null;
  /** When the identity's token expires (ms since the epoch). */
  expiresAt: number | undefined;
  /** Pending identity timers: token expiry, login deadline. */
  authTimer: NodeJS.Timeout | undefined;
  /** Commands the connection may still send (rate limit; see Policy). */
  bucket: TokenBucket | undefined;
  /** New subscriptions the connection may still make (churn limit; see Policy). */
  subscriptionBucket: TokenBucket | undefined;
  /** Last time anything arrived from the peer (frame or pong). */
  lastSeen = this.connectedAt;
  /** When the outstanding ping was sent; 0 when none is outstanding. */
  pingSentAt = 0;
  /** While a ping is outstanding (heartbeat): the socket's bytes handed to the kernel when last seen growing, and when. */
  handedOver = 0;
  progressAt = 0;
  /** Set when the server closes the connection: the code and reason it sent. */
  closeCode: number | undefined;
  closeReason: string | undefined;
  /** Topics whose live publications are held back while a recovery reads the history store (then sent after it). */
  held: Map<string, Publication[]> | null = null;
  framesIn = 0;
  framesOut = 0;

  private inbox: Inbound[] | null = [];
  private paused = false;
  private terminateTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly ws: WebSocket,
    readonly socket: Duplex,
    readonly protocol: Protocol,
    readonly ip: string,
    private readonly host: SessionHost,
  ) {
    this.maxQueueBytes = host.maxQueueBytes;
    this.flusher = host.flusher;
  }

  /**
   * Queues a complete WebSocket frame for the peer. Returns false when the
   * session is not open or the frame would overflow its queue (the session
   * is then being closed with 1013).
   */
  write(frame: Buffer): boolean {
    if (this.state !== 'open') return false;
    // The socket's own queue is read once per turn (it cannot grow while we only gather frames).
    if (this.pendingBytes === 0) this.socketQueued = this.socket.writableLength;
    const queued = this.socketQueued + this.pendingBytes + frame.length;
    if (queued > this.maxQueueBytes) {
      this.host.onSlowConsumer(this, queued);
      return false;
    }
    if (this.pendingBytes === 0) this.flusher.schedule(this);
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    this.framesOut++;
    if (this.pendingBytes >= FLUSH_AT) this.flushPending();
    return true;
  }

  /** Hands the frames of this turn to the socket as one buffer: one write, one syscall. */
  flushPending(): void {
    const bytes = this.pendingBytes;
    if (bytes === 0) return;
    const pending = this.pending;
    this.pendingBytes = 0;
    // The array is reused turn after turn: Buffer.concat copies, and a single frame is handed over as is.
    const chunk = this.state === 'closed' ? null : pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes);
    pending.length = 0;
    if (chunk) this.socket.write(chunk);
  }

  /** Bytes waiting to be sent: written but not yet accepted by the kernel. */
  get queuedBytes(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  /** Marks the session open and handles the frames that arrived while it was connecting. */
  open(): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    this.drain();
  }

  /** Entry point for every frame from the peer. */
  receive(data: Buffer, isBinary: boolean): void {
    this.lastSeen = Date.now();
    this.framesIn++;
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.inbox) {
      this.inbox.push({ data, isBinary });
      if (this.inbox.length >= INBOX_PAUSE_AT && !this.paused) {
        this.paused = true;
        this.ws.pause();
      }
      return;
    }
    this.handle(data, isBinary);
  }

  /** Closes the connection from the server side with `code` and `reason`. */
  close(code: number, reason: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.closeCode = code;
    this.closeReason = reason;
    this.inbox = null;
    // A close frame travels behind everything already queued; a peer that
    // never completes the handshake is cut after closeTimeout.
    this.flushPending();
    this.ws.close(code, truncateCloseReason(reason));
    this.terminateTimer = setTimeout(() => this.ws.terminate(), this.host.closeTimeout);
    this.terminateTimer.unref();
  }

  /** Cuts the connection without a close handshake. */
  terminate(code: number, reason: string): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') {
      this.closeCode = code;
      this.closeReason = reason;
    }
    this.state = 'closing';
    this.inbox = null;
    this.ws.terminate();
  }

  /** Called once the socket is gone. */
  closed(): void {
    this.state = 'closed';
    this.inbox = null;
    if (this.terminateTimer) clearTimeout(this.terminateTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
  }

  /** One frame through the policy's gate, then to the protocol (or the protocol's answer to the refusal). */
  private dispatch(data: Buffer, isBinary: boolean): void | Promise<void> {
    const refused = this.host.admitFrame(this);
    if (refused) return this.protocol.refuse(this, refused, data, isBinary);
    return this.protocol.onFrame(this, data, isBinary);
  }

  private handle(data: Buffer, isBinary: boolean): void {
    let pending: void | Promise<void>;
    try {
      pending = this.dispatch(data, isBinary);
    } catch (err) {
      this.host.onHandlerError(this, err);
      return;
    }
    if (pending) {
      this.inbox = [];
      pending.then(this.drain, this.rejected);
    }
  }

  private readonly rejected = (err: unknown): void => {
    this.host.onHandlerError(this, err);
    this.drain();
  };

  private readonly drain = (): void => {
    const inbox = this.inbox;
    if (!inbox) return;
    while (inbox.length > 0 && this.state === 'open') {
      const next = inbox.shift()!;
      let pending: void | Promise<void>;
      try {
        pending = this.dispatch(next.data, next.isBinary);
      } catch (err) {
        this.host.onHandlerError(this, err);
        continue;
      }
      if (pending) {
        pending.then(this.drain, this.rejected);
        return;
      }
    }
    if (this.state !== 'open') return;
    this.inbox = null;
    if (this.paused) {
      this.paused = false;
      this.ws.resume();
    }
  };
}
