import type { Socket } from 'node:net';
import { SUBPROTOCOL_JSON } from '@herald/protocol';
import type { Session } from '../hub/session.js';

export interface HeartbeatOptions {
  /** Ping a connection that has been silent this long. */
  interval: number;
  /** Terminate a pinged connection that shows no sign of life (a frame, a pong, outbound progress) for this long. */
  timeout: number;
  /** Also send this text frame with each ping (app-level heartbeat) to JSON-protocol connections, or null. */
  appPingFrame: Buffer | null;
}

/**
 * Bytes of a connection's socket handed to the kernel so far. It grows only
 * while the peer reads (TCP flow control), so it is the outbound sign of
 * life. Counted at libuv's level: bytes given to libuv minus its write queue,
 * which libuv shrinks with every partial write (Node's own `writableLength`
 * moves only when a whole write request completes, and one request may hold
 * megabytes). Falls back to Node's counters where those are missing.
 */
function bytesHandedOver(socket: Session['socket']): number {
  const net = socket as Partial<Socket> & { _bytesDispatched?: number; _handle?: { writeQueueSize?: number } | null };
  const dispatched = net._bytesDispatched;
  const queued = net._handle?.writeQueueSize;
  if (typeof dispatched === 'number' && typeof queued === 'number') return dispatched - queued;
  return net.bytesWritten === undefined ? 0 : net.bytesWritten - socket.writableLength;
}

/**
 * One timer for every connection (no timer per socket): each tick pings the
 * connections that have been silent for `interval` and terminates those that
 * show no sign of life for `timeout` after the ping. Signs of life: any
 * frame from the peer (not only a pong), and outbound progress, bytes
 * leaving for the kernel since the previous tick, which the peer's reading
 * makes room for. A peer reading a long burst on a slow link is alive even
 * while its ping still waits behind the burst: the timeout runs only from
 * the last progress, so it starts at the earliest once the ping itself was
 * handed to the kernel (while bytes ahead of the ping are still leaving,
 * there is progress). A stalled peer reads nothing: no progress, no pong,
 * cut after `timeout`, with a full queue or an empty one. The socket's
 * counters are read here, on the timer, never on the delivery path.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sessions: Map<string, Session>,
    private readonly options: HeartbeatOptions,
    private readonly onTimeout: (session: Session) => void,
  ) {}

  start(): void {
    const period = Math.max(10, Math.floor(Math.min(this.options.interval, this.options.timeout) / 2));
    this.timer = setInterval(this.tick, period);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private readonly tick = (): void => {
    const now = Date.now();
    const { interval, timeout, appPingFrame } = this.options;
    for (const session of this.sessions.values()) {
      if (session.state !== 'open') continue;
      if (session.pingSentAt !== 0) {
        if (session.lastSeen < session.pingSentAt) {
          const handedOver = bytesHandedOver(session.socket);
          if (handedOver > session.handedOver) {
            session.handedOver = handedOver;
            session.progressAt = now;
          }
          if (now - session.progressAt >= timeout) this.onTimeout(session);
          continue;
        }
        session.pingSentAt = 0;
      }
      if (now - session.lastSeen >= interval) {
        session.pingSentAt = now;
        session.progressAt = now;
        session.handedOver = bytesHandedOver(session.socket);
        session.ws.ping();
        // A JSON frame: LHTTP and raw clients would take it for data.
        if (appPingFrame && session.protocol.name === SUBPROTOCOL_JSON) session.write(appPingFrame);
      }
    }
  };
}
