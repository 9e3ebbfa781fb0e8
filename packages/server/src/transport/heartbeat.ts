import type { Session } from '../hub/session.js';

export interface HeartbeatOptions {
  /** Ping a connection that has been silent this long. */
  interval: number;
  /** Terminate a pinged connection that shows no sign of life (a frame, a pong, outbound progress) for this long. */
  timeout: number;
  /** Also send the protocol's application-level ping (its codec's `ping()`, where it has one) with each ping. */
  appPing: boolean;
  /** Bytes per second: a pinged peer whose bytes all reached the kernel gets the time to read them at this rate (`Liveness.tick`); 0: none. */
  minReadRate: number;
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
    const { interval, timeout, appPing, minReadRate } = this.options;
    for (const session of this.sessions.values()) {
      if (session.state !== 'open') continue;
      const verdict = session.liveness.tick(now, { interval, timeout, minReadRate }, session.transport);
      if (verdict === 'dead') {
        this.onTimeout(session);
      } else if (verdict === 'ping') {
        session.transport.ping();
        // Only where the protocol has one: LHTTP and raw clients would take a JSON frame for data.
        const frame = appPing ? session.codec.ping() : null;
        if (frame) session.write(frame);
      }
    }
  };
}
