import { SUBPROTOCOL_JSON } from '@herald/protocol';
import type { Session } from '../hub/session.js';

export interface HeartbeatOptions {
  /** Ping a connection that has been silent this long. */
  interval: number;
  /** Terminate a pinged connection that shows no sign of life within this long. */
  timeout: number;
  /** Also send this text frame with each ping (app-level heartbeat) to JSON-protocol connections, or null. */
  appPingFrame: Buffer | null;
}

/**
 * One timer for every connection (no timer per socket): each tick pings the
 * connections that have been silent for `interval` and terminates those that
 * left a ping unanswered for `timeout`. Any frame from the peer counts as an
 * answer, not only a pong.
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
          if (now - session.pingSentAt >= timeout) this.onTimeout(session);
          continue;
        }
        session.pingSentAt = 0;
      }
      if (now - session.lastSeen >= interval) {
        session.pingSentAt = now;
        session.ws.ping();
        // A JSON frame: LHTTP and raw clients would take it for data.
        if (appPingFrame && session.protocol.name === SUBPROTOCOL_JSON) session.write(appPingFrame);
      }
    }
  };
}
