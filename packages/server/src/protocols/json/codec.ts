import type { ErrorCode } from '@herald/protocol';
import type { Publication } from '../../broker/broker.js';
import { encodeTextFrame } from '../../hub/frame.js';
import { toJson } from '../../util/json.js';
import type { Codec, GapReason, PresenceInfo } from '../codec.js';

const PING = encodeTextFrame('{"action":"ping"}');

/**
 * The JSON protocol's server frames (PROTOCOL.md §2, docs/protocol.md), each
 * one text frame. Text that came from outside (topic names, messages, info)
 * is escaped by util/json.ts (`< > & U+2028 U+2029` too); messages arrive
 * already as JSON text, escaped where they were encoded.
 */
export const jsonCodec: Codec = {
  name: 'json',

  publication(publication: Publication): Buffer {
    // Epochs are Herald's own and need no escaping.
    let text = `{"action":"publish","topic":${toJson(publication.topic)},"message":${publication.payload}`;
    if (publication.offset !== undefined) {
      text += `,"offset":${publication.offset},"epoch":${JSON.stringify(publication.epoch ?? '')}`;
    }
    if (publication.lhttp) {
      const { command, headers } = publication.lhttp;
      text += `,"lhttp":${toJson({ command, headers: Object.fromEntries(headers) })}`;
    }
    return encodeTextFrame(`${text}}`);
  },

  push(payload: string): Buffer {
    return encodeTextFrame(`{"action":"push","message":${payload}}`);
  },

  plainPush(text: string): Buffer {
    return encodeTextFrame(text);
  },

  error(code: ErrorCode, message: string): Buffer {
    return encodeTextFrame(toJson({ action: 'error', error: { code, message } }));
  },

  ping(): Buffer {
    return PING;
  },

  presence(change: 'join' | 'leave', topic: string, entry: PresenceInfo): Buffer {
    return encodeTextFrame(toJson({ action: change, topic, info: entry }));
  },

  gap(topic: string, reason: GapReason): Buffer {
    return encodeTextFrame(toJson({ action: 'gap', topic, reason }));
  },
};
