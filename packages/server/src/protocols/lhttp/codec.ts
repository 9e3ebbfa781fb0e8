import { encodeLhttp, type ErrorCode } from '@herald/protocol';
import type { Publication } from '../../broker/broker.js';
import { webSocketText } from '../../hub/frame.js';
import { framedCodec, type TextCodec } from '../codec.js';
import { messageText } from '../protocol.js';

/** An LHTTP error message: `LHTTP/1.0 error`, a `code` header, the message as body. */
export function lhttpErrorText(code: ErrorCode, message: string): string {
  return encodeLhttp({ command: 'error', headers: [['code', code]], body: message });
}

/**
 * LHTTP/1.0 server messages (PROTOCOL.md §3, docs/lhttp.md). A publication
 * made by an LHTTP client is delivered as the text it published; any other
 * as `LHTTP/1.0 publish` with a `publish` header and the message's plain text
 * as body. LHTTP has an error message but no plain push, ping, presence,
 * gap or subscription notice: its connections are not sent those.
 */
export const lhttpText: TextCodec = {
  name: 'lhttp',

  publication(publication: Publication): string {
    if (publication.lhttp) return publication.lhttp.text;
    return encodeLhttp({ command: 'publish', headers: [['publish', publication.topic]], body: messageText(publication.payload) });
  },

  push: (payload: string) => encodeLhttp({ command: 'push', headers: [], body: messageText(payload) }),
  plainPush: () => null,
  error: lhttpErrorText,
  ping: () => null,
  presence: () => null,
  gap: () => null,
  subscribed: () => null,
  unsubscribed: () => null,
};

/** LHTTP over WebSocket: one text frame per message. */
export const lhttpCodec = framedCodec(lhttpText, webSocketText);
