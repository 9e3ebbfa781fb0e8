import type { Publication } from '../broker/broker.js';
import type { Session } from '../hub/session.js';

/**
 * A wire protocol spoken on a WebSocket (the native JSON protocol, LHTTP).
 * The hub asks it to frame a publication once per publication; the session
 * hands it every frame the peer sends.
 */
export interface Protocol {
  /** The subprotocol name, as negotiated in `Sec-WebSocket-Protocol`. */
  readonly name: string;
  /** Frames a publication for this protocol: called once per publication, the result is shared by all subscribers. */
  encodePublication(publication: Publication): Buffer;
  /** Frames a message pushed to a user. */
  encodePush(payload: string): Buffer;
  /**
   * Handles one frame from the peer. A returned promise holds back the
   * connection's next frames until it settles, so commands are handled and
   * answered in the order they were sent.
   */
  onFrame(session: Session, data: Buffer, isBinary: boolean): void | Promise<void>;
  /** The connection closed. */
  onClose?(session: Session): void;
}
