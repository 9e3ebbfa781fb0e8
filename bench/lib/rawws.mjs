// A minimal WebSocket client for the load generator: a raw TCP socket, the
// upgrade handshake, masked text frames out, and a frame scanner in. It never
// decodes a payload it is not asked to, so one generator process can take
// millions of frames a second, where a full client library would measure
// itself rather than the server.
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export function connect({ host = '127.0.0.1', port, path = '/', protocol, localAddress, onFrame, onClose }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    socket.setNoDelay(true);
    let upgraded = false;
    let pending = Buffer.alloc(0);
    const key = randomBytes(16).toString('base64');
    const client = {
      socket,
      send(text) {
        socket.write(encodeMasked(Buffer.from(text)));
      },
      close() {
        socket.destroy();
      },
    };
    socket.once('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
      );
    });
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      if (!upgraded) {
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = pending.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        }
        upgraded = true;
        pending = pending.subarray(end + 4);
        resolve(client);
      }
      let offset = 0;
      while (pending.length - offset >= 2) {
        const opcode = pending[offset] & 0x0f;
        let length = pending[offset + 1] & 0x7f;
        let header = 2;
        if (length === 126) {
          if (pending.length - offset < 4) break;
          length = pending.readUInt16BE(offset + 2);
          header = 4;
        } else if (length === 127) {
          if (pending.length - offset < 10) break;
          length = Number(pending.readBigUInt64BE(offset + 2));
          header = 10;
        }
        if (pending.length - offset < header + length) break;
        const start = offset + header;
        if (opcode === 0x9) socket.write(encodeMasked(pending.subarray(start, start + length), 0xa));
        else if (opcode === 0x8) socket.end();
        else if (opcode === 0x1 || opcode === 0x2) onFrame?.(pending, start, start + length, client);
        offset = start + length;
      }
      pending = offset === pending.length ? Buffer.alloc(0) : pending.subarray(offset);
    });
    socket.on('error', (err) => (upgraded ? undefined : reject(err)));
    socket.on('close', () => onClose?.(client));
  });
}

function encodeMasked(payload, opcode = 0x1) {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + 4 + length);
  frame[0] = 0x80 | opcode;
  if (header === 2) frame[1] = 0x80 | length;
  else if (header === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, header);
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** The float after `"t":` in a frame's payload (the publisher's send time), without decoding the rest. */
export function sendTime(buffer, start, end) {
  const at = buffer.indexOf('"t":', start, 'latin1');
  if (at === -1 || at >= end) return NaN;
  let stop = at + 4;
  while (stop < end && buffer[stop] !== 0x2c && buffer[stop] !== 0x7d) stop++;
  return Number(buffer.toString('latin1', at + 4, stop));
}

export const now = () => performance.timeOrigin + performance.now();
