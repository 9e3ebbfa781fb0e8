import type { Framing } from '../protocols/codec.js';

const LINE_BREAK = /[\r\n]/g;

/**
 * One message's text as one line of NDJSON: the text and `\n`. The JSON
 * protocol's text holds no raw line break (JSON escapes them inside strings),
 * except where a raw publisher's JSON (a Redis `PUBLISH` of a pretty-printed
 * object, kept as it was written) has them as whitespace between tokens:
 * those become spaces, the same JSON value, so a line is always one message.
 */
export function encodeLine(text: string): Buffer {
  const line = text.indexOf('\n') === -1 && text.indexOf('\r') === -1 ? text : text.replace(LINE_BREAK, ' ');
  const length = Buffer.byteLength(line);
  const bytes = Buffer.allocUnsafe(length + 1);
  bytes.write(line, 0, 'utf8');
  bytes[length] = 0x0a;
  return bytes;
}

/** The HTTP-streaming framing (`application/x-ndjson`): each message one line. */
export const ndjsonFraming: Framing = {
  name: 'ndjson',
  frame: (text) => encodeLine(text),
};
