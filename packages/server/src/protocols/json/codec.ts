import type { ErrorCode } from '@herald/protocol';
import type { Publication } from '../../broker/broker.js';
import { webSocketText } from '../../hub/frame.js';
import { ndjsonFraming } from '../../transport/ndjson.js';
import { toJson } from '../../util/json.js';
import { framedCodec, type GapReason, type PresenceInfo, type TextCodec } from '../codec.js';

/**
 * The JSON protocol's server messages (PROTOCOL.md §2, docs/protocol.md).
 * Text that came from outside (topic names, messages, info) is escaped by
 * util/json.ts (`< > & U+2028 U+2029` too); messages arrive already as JSON
 * text, escaped where they were encoded.
 */
export const jsonText: TextCodec = {
  name: 'json',

  publication(publication: Publication): string {
    // Epochs are Herald's own and need no escaping.
    let text = `{"action":"publish","topic":${toJson(publication.topic)},"message":${publication.payload}`;
    if (publication.offset !== undefined) {
      text += `,"offset":${publication.offset},"epoch":${JSON.stringify(publication.epoch ?? '')}`;
    }
    if (publication.event !== undefined) text += `,"event":${toJson(publication.event)}`;
    if (publication.tags !== undefined) text += `,"tags":${toJson(publication.tags)}`;
    if (publication.lhttp) {
      const { command, headers } = publication.lhttp;
      text += `,"lhttp":${toJson({ command, headers: Object.fromEntries(headers) })}`;
    }
    return `${text}}`;
  },

  push: (payload: string) => `{"action":"push","message":${payload}}`,
  // The push-centre seed's /send: the text as it is, as the seed sends it.
  plainPush: (text: string) => text,
  error: (code: ErrorCode, message: string) => toJson({ action: 'error', error: { code, message } }),
  ping: () => '{"action":"ping"}',
  presence: (change: 'join' | 'leave', topic: string, entry: PresenceInfo) => toJson({ action: change, topic, info: entry }),
  gap: (topic: string, reason: GapReason) => toJson({ action: 'gap', topic, reason }),
  subscribed: (topic: string, fields: object | undefined) => toJson({ action: 'subscribed', topic, ...fields }),
  unsubscribed: (topic: string, reason: string) => toJson({ action: 'unsubscribed', topic, reason }),
};

/** The JSON protocol over WebSocket: one text frame per message. */
export const jsonCodec = framedCodec(jsonText, webSocketText);

/** The JSON protocol over HTTP streaming: one NDJSON line per message (transport/stream.ts). */
export const jsonStreamCodec = framedCodec(jsonText, ndjsonFraming);
