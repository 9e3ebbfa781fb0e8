import type { Framing } from '../protocols/codec.js';

/**
 * Builds a complete server-to-client WebSocket text frame (RFC 6455 §5.2:
 * FIN set, opcode 1, unmasked) around `text`, in one buffer. A publication is
 * framed once and the same bytes are written to every subscriber, which is
 * what makes fan-out cheap: no per-subscriber stringify, copy or header.
 */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81;
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, headerLength, 'utf8');
  return frame;
}

/** The WebSocket framing: each message one text frame (what every codec of a WebSocket connection uses). */
export const webSocketText: Framing = {
  name: 'websocket',
  frame: (text) => encodeTextFrame(text),
};
