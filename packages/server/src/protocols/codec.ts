import type { ErrorCode } from '@herald/protocol';
import type { Publication } from '../broker/broker.js';

/** Why subscribers may have missed publications (the `gap` frame's `reason`, docs/protocol.md). */
export type GapReason = 'interrupted' | 'epoch_changed' | 'too_far_behind' | 'unavailable';

/** A presence entry as frames carry it: the connection, and its user and public info when it has them. */
export interface PresenceInfo {
  conn: string;
  uid?: string;
  info?: unknown;
}

/**
 * A wire protocol's encoder: pure functions from what the server has to say
 * to the complete frame a connection of that protocol receives (today a
 * WebSocket text frame). The hub encodes each publication, push or event
 * once per codec and writes the same buffer to every connection of that
 * codec (the per-codec cache of `Hub.deliver`), so a codec must not depend on
 * the connection. A protocol that has no way to say something returns null,
 * and its connections are not told: no frame of one protocol ever reaches a
 * connection of another. (The shape of Phoenix's `Socket.Serializer` and
 * anycable's `Encoder`.)
 */
export interface Codec {
  /** The subprotocol name, as negotiated in `Sec-WebSocket-Protocol` (`json`, `lhttp`, `raw`). */
  readonly name: string;
  /** A publication on a topic the connection is subscribed to. */
  publication(publication: Publication): Buffer;
  /** A message pushed to the connection's user; `payload` is its JSON text. */
  push(payload: string): Buffer;
  /**
   * The push-centre seed's `/send` to a connection that logged in the seed's
   * way (`{"uid":...}`): `text` as it is, in one frame; null: none in this
   * protocol (the connection gets `push` instead).
   */
  plainPush(text: string): Buffer | null;
  /** An error the server raises on its own (not a command's reply), e.g. `token_expired`; null: none in this protocol. */
  error(code: ErrorCode, message: string): Buffer | null;
  /** The application-level ping (`heartbeat.appPing`); null: none in this protocol. */
  ping(): Buffer | null;
  /** Someone joined or left a topic with presence events; null: none in this protocol. */
  presence(change: 'join' | 'leave', topic: string, entry: PresenceInfo): Buffer | null;
  /** Subscribers of `topic` may have missed publications; null: none in this protocol. */
  gap(topic: string, reason: GapReason): Buffer | null;
}
