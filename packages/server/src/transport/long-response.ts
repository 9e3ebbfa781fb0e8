import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { bytesHandedOver } from './websocket.js';

/**
 * The response of an HTTP transport (SSE, HTTP streaming): a head, then a
 * body that lasts as long as the connection, or an error answer instead.
 *
 * Under HTTP/1.x the stream's socket is taken from node's HTTP server, as
 * `ws` takes it for a WebSocket upgrade (`takeSocket`): node's request,
 * response and parser, and Fastify's request and reply, are garbage once
 * the stream is open, and what an idle stream costs is its socket and its
 * session. The head is written on the socket, with `Connection: close`: the
 * body runs until the connection closes (close-delimited, RFC 9112 §6.3).
 * Close-delimited rather than chunked: without its parser the connection
 * cannot serve another request, so it ends with the stream either way; each
 * flush leaves as the buffer it is (shared by every subscriber), in one
 * write, with no size line and CRLF around it; HTTP/1.0 peers (nginx speaks
 * it to upstreams by default) take it as HTTP/1.1 ones do; a proxy frames the
 * body again for its client; and the stream's own last event (`event:
 * close`, the close line) tells a deliberate end from a cut. Under HTTP/2
 * (or where the socket cannot be taken) the response stays node's.
 */
export interface LongResponse {
  /** True once the connection (or the HTTP/2 stream) is gone. */
  readonly gone: boolean;
  /** Sends `200` with `headers`, then `first`. Once only, before anything else. */
  start(headers: OutgoingHttpHeaders, first: Buffer): void;
  /** Sends body bytes; `written` is called once the kernel took them (or with the error that lost them). */
  write(bytes: Buffer, written?: (err?: Error | null) => void): void;
  /** Ends the body with `last`, after what is queued (a taken socket is closed once it is written). */
  end(last: Buffer): void;
  /**
   * Answers `status` with the JSON `body` instead of the stream (before
   * `start` only), adding its `Content-Length` (a taken socket is closed
   * once it is written).
   */
  answer(status: number, headers: OutgoingHttpHeaders, body: string): void;
  /** Cuts the connection (or the HTTP/2 stream) at once, dropping what is queued. */
  destroy(): void;
  /** Bytes written that the kernel has not taken yet. */
  readonly queuedBytes: number;
  /** Bytes of the connection handed to the kernel so far (the outbound sign of life, see `bytesHandedOver`). */
  readonly bytesHandedOver: number;
  /** Calls `closed` once, when the connection (or the HTTP/2 stream) is gone, whoever ended it. */
  onClose(closed: () => void): void;
}

/**
 * The response of `request` as a `LongResponse`, on a later turn of the
 * event loop: by then node's HTTP parser that read the request has
 * returned, and the socket can be taken from it (see `takeSocket`). The
 * caller checks `gone` (the client may have left meanwhile).
 */
export function openLongResponse(request: IncomingMessage, response: ServerResponse): Promise<LongResponse> {
  return new Promise((resolve) => {
    setImmediate(() => {
      const socket = takeSocket(request, response);
      resolve(socket ? new SocketResponse(socket) : new NodeResponse(request, response));
    });
  });
}

/** What node's HTTP server hangs on a socket it reads (lib/_http_server.js). */
interface HttpParser {
  incoming: unknown;
  finish(): unknown;
}
type ServerSocket = Socket & { parser?: HttpParser | null; _httpMessage?: unknown; readableFlowing: boolean | null };

/** Node's own release of a parser (lib/_http_common.js), the one its upgrade path uses: off the socket, out of the server's timeout checks, back to the pool. */
const freeParser = (createRequire(import.meta.url)('_http_common') as { freeParser?: (parser: HttpParser, request: IncomingMessage, socket: Socket) => void }).freeParser;

/**
 * The listeners node's HTTP server puts on each socket it reads
 * (`connectionListenerInternal`), by event and function name: taken off
 * when the socket is taken over, as node does before it emits `upgrade`.
 * They hold the connection's parser state, and with it the request.
 */
const NODE_LISTENERS: ReadonlyArray<readonly [event: string, name: string]> = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'],
  ['error', 'socketOnError'],
  ['timeout', 'socketOnTimeout'],
];

/**
 * Takes the socket of an HTTP/1.x request from node's HTTP server, as node
 * hands it over on `upgrade`: node's listeners off, the parser freed (out of
 * the server's connection tracking: `http.idleTimeout`, headers and request
 * timeouts and `closeIdleConnections` no longer see the connection), the
 * response detached. Reading goes on, into nothing (a stream reads nothing
 * from its client); the client's end of the connection, or an error, ends
 * it. Null, and nothing changed, when the socket cannot be taken: HTTP/2,
 * a request whose body was not read to its end, a connection that carries
 * another request already (pipelining), or a node whose HTTP server does
 * not look as expected.
 */
export function takeSocket(request: IncomingMessage, response: ServerResponse): Socket | null {
  const socket = request.socket as ServerSocket;
  if (request.httpVersionMajor !== 1 || !request.complete || socket.destroyed || freeParser === undefined) return null;
  const parser = socket.parser;
  if (!parser || parser.incoming !== request || socket._httpMessage !== response) return null;
  const listeners = NODE_LISTENERS.map(([event, name]) => socket.listeners(event).find((listener) => listener.name === name));
  if (listeners.includes(undefined)) return null;
  NODE_LISTENERS.forEach(([event], i) => socket.removeListener(event, listeners[i] as (...args: unknown[]) => void));
  socket.on('error', destroySocket);
  socket.on('end', destroySocket);
  // Node's wrapper of a parsed socket's `on` gives the reading back to the socket (the parser read it
  // from libuv directly) when a 'data' listener comes, as when a program reads an HTTP socket itself.
  socket.readableFlowing = null;
  socket.on('data', discard);
  parser.finish();
  freeParser(parser, request, socket);
  response.detachSocket(socket);
  // The heartbeat watches a stream: the HTTP server's idle timeout (http.idleTimeout) does not apply to it.
  socket.setTimeout(0);
  return socket;
}

/** Bytes a client sends on its stream's connection (nothing is read from it): dropped. */
function discard(): void {}

/** The client's end of the connection, or an error: the stream is over. A function of the module: the listener lives as long as the socket. */
function destroySocket(this: Socket): void {
  this.destroy();
}

/** An HTTP/1.1 head that ends the connection after the body (its end is the body's), its header values checked as node checks them. */
function head(status: number, headers: OutgoingHttpHeaders): string {
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nDate: ${new Date().toUTCString()}\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [String(value)]) {
      validateHeaderName(name);
      validateHeaderValue(name, one);
      text += `${name}: ${one}\r\n`;
    }
  }
  return `${text}\r\n`;
}

/** A stream on a socket taken from the HTTP server (HTTP/1.x): close-delimited, each write as it is. */
class SocketResponse implements LongResponse {
  constructor(private readonly socket: Socket) {}

  get gone(): boolean {
    return this.socket.destroyed;
  }

  start(headers: OutgoingHttpHeaders, first: Buffer): void {
    // Corked: the head and the first bytes leave in one writev.
    this.socket.cork();
    this.socket.write(head(200, headers), 'latin1');
    this.socket.write(first);
    this.socket.uncork();
  }

  write(bytes: Buffer, written?: (err?: Error | null) => void): void {
    this.socket.write(bytes, written);
  }

  end(last: Buffer): void {
    this.finish(last);
  }

  answer(status: number, headers: OutgoingHttpHeaders, body: string): void {
    this.finish(Buffer.concat([Buffer.from(head(status, { ...headers, 'Content-Length': Buffer.byteLength(body) }), 'latin1'), Buffer.from(body)]));
  }

  /** Ends the body and the connection: once everything written reached the kernel, the socket is closed (as node does for `Connection: close`). */
  private finish(last: Buffer): void {
    if (!this.socket.writable) return;
    this.socket.once('finish', destroySocket);
    this.socket.end(last);
  }

  destroy(): void {
    this.socket.destroy();
  }

  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  get bytesHandedOver(): number {
    return bytesHandedOver(this.socket);
  }

  onClose(closed: () => void): void {
    this.socket.once('close', closed);
  }
}

/** A stream on node's response: HTTP/2 (the socket is the session's, shared by every stream), or a socket that could not be taken. */
class NodeResponse implements LongResponse {
  private readonly socket: Socket;
  private readonly http1: boolean;

  constructor(
    request: IncomingMessage,
    private readonly response: ServerResponse,
  ) {
    this.socket = request.socket;
    this.http1 = request.httpVersionMajor < 2;
    // A write racing the client's disconnection fails here; the end is reported by 'close'.
    response.on('error', ignore);
    // The heartbeat watches a stream: the HTTP server's idle timeout (http.idleTimeout) does not apply to it.
    if (this.http1) this.socket.setTimeout(0);
  }

  get gone(): boolean {
    return this.response.destroyed || this.socket.destroyed;
  }

  start(headers: OutgoingHttpHeaders, first: Buffer): void {
    // No Connection header is set: HTTP/1.1 keeps the connection (node says keep-alive), and HTTP/2 forbids the header.
    this.response.writeHead(200, headers);
    this.write(first);
  }

  /**
   * Corked around the write under HTTP/1.x, so that the chunk's size line,
   * the bytes and its end leave in one writev now: left to itself, node
   * corks the socket until the next tick, and a burst written in microtasks
   * would sit in the socket's buffer, counted against the queue bound.
   */
  write(bytes: Buffer, written?: (err?: Error | null) => void): void {
    if (this.http1) this.socket.cork();
    this.response.write(bytes, written);
    if (this.http1) this.socket.uncork();
  }

  end(last: Buffer): void {
    if (this.http1) this.socket.cork();
    this.response.end(last);
    if (this.http1) this.socket.uncork();
  }

  answer(status: number, headers: OutgoingHttpHeaders, body: string): void {
    if (this.response.headersSent || this.response.destroyed) return void this.response.destroy();
    this.response.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body) });
    this.response.end(body);
  }

  destroy(): void {
    this.response.destroy();
  }

  get queuedBytes(): number {
    return this.response.writableLength;
  }

  get bytesHandedOver(): number {
    return bytesHandedOver(this.socket);
  }

  onClose(closed: () => void): void {
    this.response.once('close', closed);
  }
}

function ignore(): void {}
