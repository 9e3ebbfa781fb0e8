import type { ErrorCode } from '@herald/protocol';
import type { Publication } from '../../broker/broker.js';
import { RESERVED_EVENT } from '../../publication.js';
import { webSocketText } from '../../hub/frame.js';
import { PusherApps } from '../../pusher/apps.js';
import { toJson } from '../../util/json.js';
import { framedCodec, type Codec, type PresenceInfo, type TextCodec } from '../codec.js';

/**
 * The event name Pusher clients receive for a publication that has none
 * (`Publication.event` unset: a Herald client's or `POST /publish`'s).
 */
export const DEFAULT_EVENT = 'message';

/**
 * The tag that carries a client event's sender on a presence channel: a
 * publication tagged `user_id` reaches Pusher clients with that `user_id`
 * (pusher-js gives it as the event's metadata).
 */
export const USER_ID_TAG = 'user_id';

/**
 * A publication's payload (JSON text) as Pusher's `data`, which is a string
 * on the wire, already JSON-encoded for the frame: a payload that is a JSON
 * string is that string (its JSON text is embedded as it is); any other JSON
 * value is its JSON text, as a string. The reverse of what a trigger does
 * (a Pusher event's `data` string is published as a JSON string payload).
 */
export function pusherData(payload: string): string {
  return payload.startsWith('"') ? payload : JSON.stringify(payload);
}

/** A protocol event of the server (`pusher:*`, `pusher_internal:*`), its data a JSON-encoded string as Pusher sends it. */
export function pusherEvent(event: string, data: unknown, channel?: string): string {
  const channelPart = channel === undefined ? '' : `,"channel":${toJson(channel)}`;
  return `{"event":${toJson(event)}${channelPart},"data":${JSON.stringify(toJson(data))}}`;
}

/** `pusher:error`: data `{code, message}` as an object, as Pusher sends it; `code` null for an error that is not about the connection. */
export function pusherError(code: number | null, message: string): string {
  return toJson({ event: 'pusher:error', data: { code, message } });
}

/**
 * The Pusher Channels protocol's server messages (protocol 7), for every app
 * of the node: a publication's channel is its topic without its app's prefix
 * (`PusherApps.appOfTopic`: a pure function of the topic). Each publication
 * is encoded once for every Pusher subscriber of every app:
 * `{"event":<name>,"channel":<channel>,"data":<string>}`.
 */
export function pusherText(apps: PusherApps): TextCodec {
  const channelOf = (topic: string): string => apps.appOfTopic(topic)?.channel ?? topic;
  const memberId = (topic: string, uid: string): string => {
    const owner = apps.appOfTopic(topic);
    return (owner && PusherApps.userIdOf(owner.app, uid)) ?? uid;
  };
  return {
    name: 'pusher',
    publication(publication: Publication): string {
      const channel = channelOf(publication.topic);
      // Only presence channels' client events name their sender (as Pusher does); publishing to a presence channel
      // takes a grant (pusher/rules.ts), so a public channel's publisher cannot make an event look like a member's.
      const userId = channel.startsWith('presence-') ? publication.tags?.[USER_ID_TAG] : undefined;
      const user = userId === undefined ? '' : `,"user_id":${toJson(userId)}`;
      // A reserved name never reaches a Pusher client as its protocol's own event (publishers are refused it: publication.ts).
      const event = publication.event === undefined || RESERVED_EVENT.test(publication.event) ? DEFAULT_EVENT : publication.event;
      return `{"event":${toJson(event)},"channel":${toJson(channel)},"data":${pusherData(publication.payload)}${user}}`;
    },
    // A push to the connection's user (herald.send): an event on no channel, which pusher-js's global bindings get.
    push: (payload: string) => `{"event":${toJson(DEFAULT_EVENT)},"data":${pusherData(payload)}}`,
    plainPush: () => null,
    error: (_code: ErrorCode, message: string) => pusherError(null, message),
    ping: () => pusherEvent('pusher:ping', {}),
    // Pusher's presence is per user: its first connection joining, its last leaving.
    presence(change: 'join' | 'leave', topic: string, entry: PresenceInfo, userEdge?: boolean): string | null {
      if (!userEdge || entry.uid === undefined) return null;
      const user_id = memberId(topic, entry.uid);
      const channel = channelOf(topic);
      return change === 'join'
        ? pusherEvent('pusher_internal:member_added', { user_id, user_info: entry.info ?? null }, channel)
        : pusherEvent('pusher_internal:member_removed', { user_id }, channel);
    },
    gap: () => null,
    subscribed: () => null,
    unsubscribed: () => null,
  };
}

/** The Pusher protocol over WebSocket: one text frame per message. */
export function pusherCodec(apps: PusherApps): Codec {
  return framedCodec(pusherText(apps), webSocketText);
}
