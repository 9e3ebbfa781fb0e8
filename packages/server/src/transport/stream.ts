import type { Session } from '../hub/session.js';
import { toJson } from '../util/json.js';
import type { LongResponse } from './long-response.js';
import { encodeLine } from './ndjson.js';
import type { Transport } from './transport.js';

/** The code a stream ends with when the peer dropped it: nothing said why (WebSocket's 1006, abnormal closure). */
const DROPPED = 1006;

/** The heartbeat line: empty (clients skip empty lines). */
const HEARTBEAT = Buffer.from('\n');

/** The first line of a stream: `{"action":"stream","session":"<token>"}` (the token commands are sent with). */
export function streamLine(token: string): Buffer {
  return encodeLine(toJson({ action: 'stream', session: token }));
}

/**
 * The last line of a stream the server ends on purpose:
 * `{"action":"close","code":N,"reason":"..."}`, what a WebSocket close frame
 * says (the code tells the client whether to reconnect, `shouldReconnect`).
 */
export function closeLine(code: number, reason: string): Buffer {
  return encodeLine(toJson({ action: 'close', code, reason }));
}

/**
 * An HTTP streaming response (`POST /stream`, docs/transports.md) as a
 * session's transport: frames are NDJSON lines already framed by the
 * session's codec (`jsonStreamCodec`), written to the stream's response
 * as they come (its socket, taken from the HTTP server, under HTTP/1.x:
 * see `LongResponse`); the peer's commands do not arrive here but as `POST /stream/send`
 * requests, fed to the session by the stream endpoint (stream-sessions.ts).
 *
 * Liveness: there are no pongs. `ping()` writes an empty line, and once the
 * kernel has taken it (everything queued before it went out too: the peer
 * is reading), the session is told it is alive, as a pong would. A peer
 * that stops reading leaves the line queued: no sign of life and no
 * outbound progress, so the heartbeat cuts it after `heartbeat.timeout`.
 * The slow-consumer bound is the Writer's, over `queuedBytes`, as on a
 * WebSocket.
 */
export class StreamTransport implements Transport {
  readonly name = 'http-stream';
  private session: Session | null = null;
  private ended = false;
  private paused = false;
  private resumed: Array<() => void> = [];
  /** Set when the server ended the stream (close or terminate) rather than the peer. */
  private endedByServer = false;

  /** `response` has started (its head and first line went out). */
  constructor(private readonly response: LongResponse) {}

  write(bytes: Buffer): void {
    if (!this.ended) this.response.write(bytes);
  }

  get queuedBytes(): number {
    return this.response.queuedBytes;
  }

  get bytesHandedOver(): number {
    return this.response.bytesHandedOver;
  }

  ping(): void {
    if (this.ended) return;
    this.response.write(HEARTBEAT, (err) => {
      if (!err && !this.ended) this.session?.alive();
    });
  }

  /** The session's inbox is full: commands wait (`whenReady`) until it is read again. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake();
  }

  /** Whether commands may be fed now; otherwise `whenReady` resolves once they may (or the stream ended). */
  get ready(): boolean {
    return !this.paused || this.ended;
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.resumed.push(resolve));
  }

  /** Ends the stream after what is queued, with a last line saying why. */
  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.endedByServer = true;
    this.response.end(closeLine(code, reason));
    this.wake();
  }

  /** Cuts the stream at once (the TCP connection with it), dropping what is queued. */
  terminate(): void {
    this.endedByServer = true;
    this.ended = true;
    this.response.destroy();
    this.wake();
  }

  /**
   * Ties the stream to its session: the end of the response (finished, or
   * the peer gone) is `transportClosed`, once; `onEnd` runs after it.
   */
  bind(session: Session, onEnd: () => void): void {
    this.session = session;
    this.response.onClose(() => {
      this.ended = true;
      this.wake();
      // The session reports the code it closed with; a stream the peer dropped has no close code of its own.
      session.transportClosed(DROPPED, this.endedByServer ? '' : 'stream closed by the client');
      onEnd();
    });
  }

  private wake(): void {
    const waiting = this.resumed;
    this.resumed = [];
    for (const resolve of waiting) resolve();
  }
}
