import type { Publication } from '../broker/broker.js';
import type { HeraldError } from '../errors.js';
import type { Session } from '../hub/session.js';

/**
 * A wire protocol spoken on a WebSocket (the native JSON protocol, LHTTP, raw).
 * The hub asks it to frame a publication once per publication; the session
 * hands it every frame the peer sends that the policy admitted.
 *
 * A protocol acts on the connection only through the gateway's `Policy`
 * (src/policy/policy.ts): subscribe, unsubscribe, publish and reads all go
 * through it, so identity, permissions and limits hold whatever the protocol.
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
  /** The policy refused a frame before it was handled (over the command rate): answer in this protocol's terms. */
  refuse(session: Session, refusal: HeraldError, data: Buffer, isBinary: boolean): void;
  /**
   * Whether a connection can identify itself over this protocol after it
   * opened (JSON's `login`). With `auth.anonymous: false`, a connection of a
   * protocol that cannot is closed with 4501 at once unless its URL token or
   * the connect hook identified it.
   */
  readonly canLogIn: boolean;
  /**
   * The connection is open and its identity settled (`?token=`, connect
   * hook), before any of its frames is handled. The protocol may subscribe
   * it to topics, or close it.
   */
  onOpen?(session: Session): void;
  /** The connection closed. */
  onClose?(session: Session): void;
}

/**
 * A message's plain text, from its JSON text: a JSON string as the string
 * itself, anything else (object, array, number, ...) as its JSON text. For
 * protocols whose frames carry text rather than JSON (LHTTP bodies, raw).
 */
export function messageText(payload: string): string {
  if (payload.startsWith('"')) {
    try {
      return JSON.parse(payload) as string;
    } catch {
      return payload;
    }
  }
  return payload;
}
