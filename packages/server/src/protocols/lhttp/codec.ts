import { encodeLhttp, type ErrorCode } from '@herald/protocol';
import type { Publication } from '../../broker/broker.js';
import { encodeTextFrame } from '../../hub/frame.js';
import type { Codec } from '../codec.js';
import { messageText } from '../protocol.js';

/** An LHTTP error message: `LHTTP/1.0 error`, a `code` header, the message as body. */
export function lhttpErrorFrame(code: ErrorCode, message: string): Buffer {
  return encodeTextFrame(encodeLhttp({ command: 'error', headers: [['code', code]], body: message }));
}

/**
 * LHTTP/1.0 server messages (PROTOCOL.md §3, docs/lhttp.md), one text frame
 * each. A publication made by an LHTTP client is delivered as the text it
 * published; any other as `LHTTP/1.0 publish` with a `publish` header and the
 * message's plain text as body. LHTTP has an error message but no plain push, ping,
 * presence or gap message: its connections are not sent those.
 */
export const lhttpCodec: Codec = {
  name: 'lhttp',

  publication(publication: Publication): Buffer {
    if (publication.lhttp) return encodeTextFrame(publication.lhttp.text);
    return encodeTextFrame(encodeLhttp({ command: 'publish', headers: [['publish', publication.topic]], body: messageText(publication.payload) }));
  },

  push(payload: string): Buffer {
    return encodeTextFrame(encodeLhttp({ command: 'push', headers: [], body: messageText(payload) }));
  },

  plainPush: () => null,
  error: lhttpErrorFrame,

  ping: () => null,
  presence: () => null,
  gap: () => null,
};
