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
 * How a transport carries one message of text: a WebSocket text frame
 * (`webSocketText`, hub/frame.ts) today; an SSE event or an HTTP-streaming
 * chunk would be others. Adding a transport with its own framing adds a
 * Framing, and a codec per protocol with `framedCodec`: the protocols' text
 * is not written again.
 */
export interface Framing {
  readonly name: string;
  /** The complete bytes of one message carrying `text`; `publication` when it carries one (an SSE framing may use its position as the event id). */
  frame(text: string, publication?: Publication): Buffer;
}

/**
 * A wire protocol's server messages as text, whatever carries them. Pure:
 * the same input gives the same text, whatever the connection. A protocol
 * that has no way to say something returns null.
 */
export interface TextCodec {
  /** The subprotocol name, as negotiated in `Sec-WebSocket-Protocol` (`json`, `lhttp`, `raw`). */
  readonly name: string;
  /** A publication on a topic the connection is subscribed to. */
  publication(publication: Publication): string;
  /** A message pushed to the connection's user; `payload` is its JSON text. */
  push(payload: string): string;
  /**
   * The push-centre seed's `/send` to a connection that logged in the seed's
   * way (`{"uid":...}`): `text` as it is; null: none in this protocol (the
   * connection gets `push` instead).
   */
  plainPush(text: string): string | null;
  /** An error the server raises on its own (not a command's reply), e.g. `token_expired`. */
  error(code: ErrorCode, message: string): string | null;
  /** The application-level ping (`heartbeat.appPing`). */
  ping(): string | null;
  /**
   * Someone joined or left a topic with presence events. `userEdge`: the
   * entry's user has just become present on the topic (its first connection)
   * or has just left it (its last), across the cluster.
   */
  presence(change: 'join' | 'leave', topic: string, entry: PresenceInfo, userEdge?: boolean): string | null;
  /** Subscribers of `topic` may have missed publications. */
  gap(topic: string, reason: GapReason): string | null;
  /**
   * The server subscribed the connection to `topic` on its own (the server
   * API, a user's persistent topics): `fields` are what a subscribe reply
   * would hold (the topic's position). null: the protocol cannot say it, its
   * publications simply start arriving.
   */
  subscribed(topic: string, fields: object | undefined): string | null;
  /** The server ended the connection's subscription to `topic`, saying why. null: the protocol cannot say it. */
  unsubscribed(topic: string, reason: string): string | null;
}

/**
 * A wire protocol's encoder for one framing: what the server has to say, as
 * the complete bytes a connection of that protocol and transport receives.
 * The hub encodes each publication, push or event once per codec and writes
 * the same buffer to every connection of that codec (the per-codec cache of
 * `Hub.deliver`), so a codec must not depend on the connection: one codec
 * per (protocol, framing) keeps "encode once" per kind of receiver. A
 * protocol that has no way to say something returns null, and its
 * connections are not told: no frame of one protocol ever reaches a
 * connection of another. (The shape of Phoenix's `Socket.Serializer` and
 * anycable's `Encoder`.) Built with `framedCodec`.
 */
export interface Codec {
  /** The subprotocol name, as negotiated in `Sec-WebSocket-Protocol` (`json`, `lhttp`, `raw`). */
  readonly name: string;
  /** The framing its bytes are in. */
  readonly framing: Framing;
  publication(publication: Publication): Buffer;
  push(payload: string): Buffer;
  plainPush(text: string): Buffer | null;
  error(code: ErrorCode, message: string): Buffer | null;
  ping(): Buffer | null;
  presence(change: 'join' | 'leave', topic: string, entry: PresenceInfo, userEdge?: boolean): Buffer | null;
  gap(topic: string, reason: GapReason): Buffer | null;
  subscribed(topic: string, fields: object | undefined): Buffer | null;
  unsubscribed(topic: string, reason: string): Buffer | null;
  /** Any other text of this protocol (a command's reply, an error answer), in this framing. */
  frame(text: string): Buffer;
}

/** A protocol's text in a transport's framing: the Codec the hub and the sessions use. */
export function framedCodec(text: TextCodec, framing: Framing): Codec {
  const maybe = (value: string | null): Buffer | null => (value === null ? null : framing.frame(value));
  const ping = maybe(text.ping());
  return {
    name: text.name,
    framing,
    publication: (publication) => framing.frame(text.publication(publication), publication),
    push: (payload) => framing.frame(text.push(payload)),
    plainPush: (value) => maybe(text.plainPush(value)),
    error: (code, message) => maybe(text.error(code, message)),
    // The same text every time: framed once.
    ping: () => ping,
    presence: (change, topic, entry, userEdge) => maybe(text.presence(change, topic, entry, userEdge)),
    gap: (topic, reason) => maybe(text.gap(topic, reason)),
    subscribed: (topic, fields) => maybe(text.subscribed(topic, fields)),
    unsubscribed: (topic, reason) => maybe(text.unsubscribed(topic, reason)),
    frame: (value) => framing.frame(value),
  };
}
