// A minimal SSE reader for the load generator: a raw TCP socket, one
// HTTP/1.1 GET, the chunked body undone and the event stream parsed
// (`event:`, `data:`, `id:`, comments, blank line = dispatch) over the bytes,
// without decoding a payload it is not asked to. As rawws.mjs for WebSocket:
// one generator process must take millions of events a second, where a full
// client (node:http, an EventSource polyfill) would measure itself.
import net from 'node:net';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Opens `GET path` and resolves with `{ socket, close() }` once the `200`
 * arrived (rejects with the status line otherwise). Then, for each event:
 * `onEvent(type, buffer, dataStart, dataEnd, client)`, with `type` the
 * `event:` field ('message' when there is none) and the bytes of its `data:`
 * (several `data:` lines joined by LF, per the standard). `onComment()` for
 * each comment line (the heartbeat), `onClose()` at the end.
 */
export function connect({ host = '127.0.0.1', port, path, localAddress, headers = {}, onEvent, onComment, onClose }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    socket.setNoDelay(true);
    const client = {
      socket,
      close() {
        socket.destroy();
      },
    };
    let head = true;
    let chunked = false;
    // The transfer coding: 'size' (reading a chunk-size line), 'data' (`left` bytes of the chunk to come), 'crlf' (after a chunk).
    let state = 'size';
    let left = 0;
    let pending = Buffer.alloc(0);
    const events = new EventStream((type, buffer, start, end) => onEvent?.(type, buffer, start, end, client), () => onComment?.(client));

    socket.once('connect', () => {
      const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
    });
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      if (head) {
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        const text = pending.toString('latin1', 0, end);
        if (!text.startsWith('HTTP/1.1 200')) {
          socket.destroy();
          return reject(new Error(`stream refused: ${text.split('\r\n')[0]} ${pending.toString('utf8', end + 4, Math.min(pending.length, end + 300))}`));
        }
        head = false;
        chunked = /\r\ntransfer-encoding:\s*chunked/i.test(text);
        offset = end + 4;
        resolve(client);
      }
      if (!chunked) {
        if (offset < pending.length) events.feed(offset === 0 ? pending : pending.subarray(offset));
        pending = Buffer.alloc(0);
        return;
      }
      while (offset < pending.length) {
        if (state === 'size') {
          const eol = pending.indexOf(LF, offset);
          if (eol === -1) break;
          left = parseInt(pending.toString('latin1', offset, eol), 16);
          offset = eol + 1;
          if (left === 0) {
            socket.end(); // the last chunk: the response is over
            offset = pending.length;
            break;
          }
          state = 'data';
        } else if (state === 'data') {
          const take = Math.min(left, pending.length - offset);
          events.feed(pending.subarray(offset, offset + take));
          offset += take;
          left -= take;
          if (left === 0) state = 'crlf';
        } else {
          if (pending.length - offset < 2) break;
          offset += 2;
          state = 'size';
        }
      }
      pending = offset === pending.length ? Buffer.alloc(0) : pending.subarray(offset);
    });
    socket.on('error', (err) => (head ? reject(err) : undefined));
    socket.on('close', () => onClose?.(client));
  });
}

/**
 * The event-stream parser. Bytes of an event that has not ended yet are kept
 * (`rest`) and scanned again with what follows, so the data of an event is
 * always one range of one buffer; usually an event arrives whole and nothing
 * is copied.
 */
class EventStream {
  constructor(onEvent, onComment) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.rest = null;
  }

  feed(bytes) {
    // Lines that ended within `seen` were scanned already (a comment there was counted).
    const seen = this.rest ? this.rest.length : 0;
    const buffer = this.rest ? Buffer.concat([this.rest, bytes]) : bytes;
    this.rest = null;
    let eventStart = 0;
    let type = 'message';
    let dataStart = -1;
    let dataEnd = -1;
    let joined = null; // several data: lines (never from Herald: a JSON frame has no raw newline)
    let pos = 0;
    for (;;) {
      const eol = buffer.indexOf(LF, pos);
      if (eol === -1) break;
      const lineEnd = eol > pos && buffer[eol - 1] === CR ? eol - 1 : eol;
      const first = buffer[pos];
      if (lineEnd === pos) {
        // A blank line: dispatch the event (if it had data), start the next one.
        if (joined) this.onEvent(type, joined, 0, joined.length);
        else if (dataStart !== -1) this.onEvent(type, buffer, dataStart, dataEnd);
        type = 'message';
        dataStart = dataEnd = -1;
        joined = null;
        eventStart = eol + 1;
      } else if (first === 0x3a) {
        if (eol >= seen) this.onComment(); // ':' a comment: the heartbeat
      } else if (first === 0x64 && lineEnd - pos >= 5 && buffer[pos + 4] === 0x3a) {
        // 'data:'
        const start = buffer[pos + 5] === 0x20 ? pos + 6 : pos + 5;
        if (dataStart === -1) {
          dataStart = start;
          dataEnd = lineEnd;
        } else {
          joined = Buffer.concat([joined ?? buffer.subarray(dataStart, dataEnd), Buffer.from([LF]), buffer.subarray(start, lineEnd)]);
        }
      } else if (first === 0x65 && lineEnd - pos >= 6 && buffer[pos + 5] === 0x3a) {
        // 'event:'
        type = buffer.toString('latin1', buffer[pos + 6] === 0x20 ? pos + 7 : pos + 6, lineEnd);
      }
      // 'id:' and 'retry:' lines are read past: the generator resumes nothing.
      pos = eol + 1;
    }
    if (eventStart < buffer.length) this.rest = buffer.subarray(eventStart);
  }
}
