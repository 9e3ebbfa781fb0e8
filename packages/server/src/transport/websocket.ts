import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Protocol } from '../protocols/protocol.js';
import type { Refusal } from './admission.js';
import { toJson } from '../util/json.js';

export type { Refusal } from './admission.js';

export interface UpgradeHost {
  /** Origin, per-address and rate checks; null admits the upgrade and holds its connection slot. */
  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null>;
  /** Gives back the slot of an admitted upgrade that did not become a connection. */
  release(request: IncomingMessage): void;
  readonly wsPath: string;
  /** True while the gateway is shutting down: upgrades are refused with 503. */
  readonly closing: boolean;
  readonly maxFrameBytes: number;
  /** Most frames one message may be split into (ws closes with 1008 past it). */
  readonly maxMessageFragments: number;
  /** The protocol to speak on `path` for the offered subprotocols; undefined: no WebSocket on that path. */
  protocolFor(path: string, offered: Set<string>): Protocol | null | undefined;
  readonly supportedProtocols: string[];
  accept(ws: WebSocket, socket: Duplex, request: IncomingMessage, protocol: Protocol): void;
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
export function createUpgradeHandler(host: UpgradeHost): (request: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const chosen = new WeakMap<IncomingMessage, Protocol>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: host.maxFrameBytes,
    // ws keeps every fragment of an unfinished message as its own Buffer (~120 bytes of memory each even
    // for a 1-byte fragment): bounding their number bounds what an unfinished message costs.
    maxFragments: host.maxMessageFragments,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered, request) => {
      const protocol = chosen.get(request);
      return protocol && offered.has(protocol.name) ? protocol.name : false;
    },
  });

  return (request, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const offered = parseOffered(request.headers['sec-websocket-protocol']);
    const protocol = host.protocolFor(path, offered);
    if (protocol === undefined) {
      abortHandshake(socket, 404, 'not_found', `no WebSocket endpoint at ${path}; use ${host.wsPath}`);
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
      let accepted = false;
      socket.once('close', () => {
        if (!accepted) host.release(request);
      });
      chosen.set(request, protocol);
      wss.handleUpgrade(request, socket, head, (ws) => {
        accepted = true;
        host.accept(ws, socket, request, protocol);
      });
    };
    const refusal = host.admit(request);
    if (refusal instanceof Promise) refusal.then(admitted, () => abortHandshake(socket, 503, 'unavailable', 'admission failed: retry shortly'));
    else admitted(refusal);
  };
}
