import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Socket } from 'node:net';
import { CloseCode } from '@herald/protocol';
import type { Session } from '../hub/session.js';
import type { Logger } from '../log.js';
import type { Protocol } from '../protocols/protocol.js';
import type { Refusal } from './admission.js';
import type { Transport } from './transport.js';
import { toJson } from '../util/json.js';

export type { Refusal } from './admission.js';

/** What the upgrade handler needs from the gateway. */
export interface UpgradeHost {
  /** Origin, per-address and rate checks; null admits the upgrade and holds its connection slot. */
  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null>;
  /** Gives back the slot of an admitted upgrade that did not become a connection. */
  release(request: IncomingMessage): void;
  /** True while the gateway is shutting down: upgrades are refused with 503. */
  readonly closing: boolean;
  /** The protocol to speak on `path` for the offered subprotocols; null: none of the offered ones; undefined: no WebSocket on that path. */
  protocolFor(path: string, offered: Set<string>): Protocol | null | undefined;
  readonly supportedProtocols: string[];
  /** A new connection: the gateway makes it a session (the transport then feeds it). */
  accept(transport: WebSocketTransport, request: IncomingMessage, protocol: Protocol): Session;
}

export interface UpgradeOptions {
  /** The JSON protocol's path, named in the 404 for other paths. */
  readonly wsPath: string;
  /** Largest frame (and message) accepted, in bytes; ws closes with 1009 past it. */
  readonly maxFrameBytes: number;
  /** Most frames one message may be split into (ws closes with 1008 past it). */
  readonly maxMessageFragments: number;
  readonly log: Logger;
}

/**
 * Bytes of a socket handed to the kernel so far. It grows only while the
 * peer reads (TCP flow control), so it is the outbound sign of life. Counted
 * at libuv's level: bytes given to libuv minus its write queue, which libuv
 * shrinks with every partial write (Node's own `writableLength` moves only
 * when a whole write request completes, and one request may hold
 * megabytes). Falls back to Node's counters where those are missing.
 */
export function bytesHandedOver(socket: Duplex): number {
  const net = socket as Partial<Socket> & { _bytesDispatched?: number; _handle?: { writeQueueSize?: number } | null };
  const dispatched = net._bytesDispatched;
  const queued = net._handle?.writeQueueSize;
  if (typeof dispatched === 'number' && typeof queued === 'number') return dispatched - queued;
  return net.bytesWritten === undefined ? 0 : net.bytesWritten - socket.writableLength;
}

/**
 * A WebSocket as a session's transport. Frames arrive already framed (the
 * codecs and hub/frame.ts frame them once per publication), so writes go to
 * the socket directly, bypassing ws's sender; ws keeps reading, pings and
 * the close handshake.
 */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly log: Logger,
  ) {}

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  get bytesHandedOver(): number {
    return bytesHandedOver(this.socket);
  }

  ping(): void {
    this.ws.ping();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** Feeds the session from the socket: frames, pongs, protocol errors and the end. */
  bind(session: Session): void {
    const log = this.log;
    this.ws.on('message', function onMessage(data, isBinary) {
      session.receive(data as Buffer, isBinary);
    });
    this.ws.on('pong', function onPong() {
      session.alive();
    });
    this.ws.on('error', function onError(err) {
      // ws closes the connection itself (1009 for an oversize frame, 1002 for a protocol error).
      log.debug({ conn: session.id, err: err.message }, 'websocket error');
      const code = (err as Error & { code?: string }).code;
      session.transportFailed(code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CloseCode.MESSAGE_TOO_BIG : CloseCode.PROTOCOL_ERROR, err.message);
    });
    this.ws.on('close', function onClose(code, reason) {
      session.transportClosed(code, reason.toString());
    });
  }
}

/**
 * Answers an upgrade request that will not become a WebSocket with a plain
 * HTTP response (JSON error body, same shape as the HTTP API's) and closes
 * the socket.
 */
export function abortHandshake(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (socket.writable) {
    const body = toJson({ ok: false, error: { code, message } });
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        `Connection: close\r\nContent-Type: application/json\r\n${extra}` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * A socket error ends the socket. A function of the module, not a closure of
 * the upgrade handler: the listener stays as long as the connection, and a
 * closure would keep the handler's scope (the request and its `head` buffer)
 * alive with it.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function parseOffered(header: string | undefined): Set<string> {
  const offered = new Set<string>();
  if (!header) return offered;
  for (const part of header.split(',')) {
    const name = part.trim();
    if (name) offered.add(name);
  }
  return offered;
}

/**
 * The WebSocket side of the shared HTTP server: `ws` in noServer mode, fed
 * from the HTTP server's `upgrade` event. Picks the protocol from
 * `Sec-WebSocket-Protocol`, enforces the frame size limit (ws closes with
 * 1009) and hands the socket to the gateway.
 */
export function createUpgradeHandler(host: UpgradeHost, options: UpgradeOptions): (request: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const chosen = new WeakMap<IncomingMessage, Protocol>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    // ws keeps every fragment of an unfinished message as its own Buffer (~120 bytes of memory each even
    // for a 1-byte fragment): bounding their number bounds what an unfinished message costs.
    maxFragments: options.maxMessageFragments,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered, request) => {
      const protocol = chosen.get(request);
      return protocol && offered.has(protocol.codec.name) ? protocol.codec.name : false;
    },
  });

  return (request, socket, head) => {
    socket.on('error', destroyOnError);
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const offered = parseOffered(request.headers['sec-websocket-protocol']);
    const protocol = host.protocolFor(path, offered);
    if (protocol === undefined) {
      abortHandshake(socket, 404, 'not_found', `no WebSocket endpoint at ${path}; use ${options.wsPath}`);
      return;
    }
    if (host.closing) {
      abortHandshake(socket, 503, 'unavailable', 'server is shutting down');
      return;
    }
    if (!protocol) {
      abortHandshake(socket, 400, 'bad_request', `unsupported subprotocol ${[...offered].join(', ')}; supported: ${host.supportedProtocols.join(', ')}`);
      return;
    }
    const admitted = (refusal: Refusal | null): void => {
      if (refusal) {
        abortHandshake(socket, refusal.status, refusal.code, refusal.message, refusal.headers);
        return;
      }
      if (socket.destroyed || host.closing) {
        host.release(request);
        if (!socket.destroyed) abortHandshake(socket, 503, 'unavailable', 'server is shutting down');
        return;
      }
      // ws answers a bad handshake itself and closes the socket without calling back: the slot is given back then.
      // The listener goes once the upgrade succeeds: it holds the request, which would stay in memory as long as the connection.
      const unaccepted = (): void => host.release(request);
      socket.once('close', unaccepted);
      chosen.set(request, protocol);
      wss.handleUpgrade(request, socket, head, (ws) => {
        socket.removeListener('close', unaccepted);
        const transport = new WebSocketTransport(ws, socket, options.log);
        transport.bind(host.accept(transport, request, protocol));
      });
    };
    const refusal = host.admit(request);
    if (refusal instanceof Promise) refusal.then(admitted, () => abortHandshake(socket, 503, 'unavailable', 'admission failed: retry shortly'));
    else admitted(refusal);
  };
}
