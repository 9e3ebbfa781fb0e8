import type { FrameHandler } from '../hub/session.js';
import type { Codec } from './codec.js';

/**
 * A wire protocol spoken on a connection (the native JSON protocol, LHTTP,
 * raw): a pure `Codec` that the hub encodes with, and a `FrameHandler` that
 * the session hands the peer's frames to. The registry (registry.ts) picks
 * one per connection.
 *
 * A frame handler acts on the connection only through the `Policy`
 * (src/policy/policy.ts): subscribe, unsubscribe, publish and reads all go
 * through it, so identity, permissions and limits hold whatever the protocol.
 */
export interface Protocol {
  readonly codec: Codec;
  readonly handler: FrameHandler;
  /**
   * The id of a new connection, where the protocol has its own form (Pusher's
   * socket id, `123.456`); it must be unique across the cluster, as it is the
   * id `exclude`, listings and the server API know the connection by.
   * Absent: Herald's (`{node}-{seq}`).
   */
  connectionId?(): string;
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
