import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode } from '@herald/protocol';
import type { Session } from '../hub/session.js';
import type { Protocol } from '../protocols/protocol.js';
import { closeEvent } from '../protocols/sse/codec.js';
import type { Refusal, Transport } from './transport.js';
import { bytesHandedOver } from './websocket.js';
import { toJson } from '../util/json.js';

/** What the SSE handler needs from the gateway and the protocols. */
export interface SseHost {
  /** Origin, per-address and rate checks; null admits the request and holds its connection slot. */
  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null>;
  /** Gives back the slot of an admitted request that did not become a connection. */
  release(request: IncomingMessage): void;
  /** True while the gateway is shutting down: new streams are refused with 503. */
  readonly closing: boolean;
  /**
   * The stream a request asks for (from its query and its `Last-Event-ID`):
   * the protocol its connection speaks and the start frame to feed it; or a
   * refusal (400) for a request that cannot be read.
   */
  stream(query: URLSearchParams, lastEventId: string | undefined): { protocol: Protocol; start: Buffer } | Refusal;
  /** A new connection: the gateway makes it a session (the transport then feeds it). */
  accept(transport: Transport, request: IncomingMessage, protocol: Protocol): Session;
}

export interface SseOptions {
  /** `allowedOrigins`: which pages of other origins may read a stream with the user's cookies (CORS). */
  readonly allowedOrigins: readonly string[];
}

/** The heartbeat: a comment line, which an `EventSource` ignores and which keeps proxies from closing an idle stream. */
const HEARTBEAT = Buffer.from(':\n\n');

const SHUTTING_DOWN: Refusal = { status: 503, code: 'unavailable', message: 'server is shutting down', headers: { 'Retry-After': '1' } };

/**
 * The answer to a stream the server closed before it started (the
 * connection's identity was refused, or shutdown came first), from the close
 * code the gateway used (see `closeCodeFor`, auth/authenticator.ts).
 */
function refusalFor(code: number, reason: string): Refusal {
  switch (code) {
    case CloseCode.UNAUTHORIZED:
      return { status: 401, code: 'unauthorized', message: reason };
    case CloseCode.TOKEN_EXPIRED:
      return { status: 401, code: 'token_expired', message: reason };
    case CloseCode.FORBIDDEN:
    case CloseCode.DISCONNECTED:
    case CloseCode.POLICY_VIOLATION:
      return { status: 403, code: 'forbidden', message: reason };
    case CloseCode.TOO_MANY_CONNECTIONS:
      return { status: 429, code: 'rate_limited', message: reason, headers: { 'Retry-After': '10' } };
    default:
      return { status: 503, code: 'unavailable', message: reason, headers: { 'Retry-After': '1' } };
  }
}

/**
 * CORS for a page of another origin: any origin may read a stream it opened
 * without credentials (`*`: its token is in the URL, the browser sends no
 * cookie); with `allowedOrigins`, a listed origin may also open it with its
 * cookies (`EventSource(url, { withCredentials: true })`), which reach the
 * connect hook. Other origins are refused by the gate before this.
 */
function corsHeaders(origin: string | undefined, allowedOrigins: readonly string[]): OutgoingHttpHeaders {
  if (origin === undefined) return {};
  if (allowedOrigins.length === 0) return { 'Access-Control-Allow-Origin': '*' };
  if (!allowedOrigins.includes(origin)) return {};
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' };
}

/** Answers a request that does not become a stream: its status and the HTTP API's JSON error body. */
function answer(response: ServerResponse, refusal: Refusal, cors: OutgoingHttpHeaders): void {
  if (response.headersSent || response.destroyed) {
    response.destroy();
    return;
  }
  const body = toJson({ ok: false, error: { code: refusal.code, message: refusal.message } });
  response.writeHead(refusal.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...cors,
    ...refusal.headers,
  });
  response.end(body);
}

/**
 * An SSE stream as a session's transport: the bytes are complete events,
 * framed by the session's codec, written to the HTTP response. The 200 and
 * its headers go out with the first bytes; until then the server can still
 * refuse the request with an HTTP error (`refuse`, and the close that
 * follows). Nothing is read from the client: its sign of life is outbound
 * progress, and the heartbeat comment handed to the kernel. The server ends
 * a stream with `event: close` (`{"code","reason"}`).
 */
export class SseTransport implements Transport {
  private state: 'waiting' | 'streaming' | 'ended' = 'waiting';
  private refusal: Refusal | null = null;
  private session: Session | null = null;
  private readonly socket: Socket;
  /** HTTP/1.x: the response owns its socket (under HTTP/2 the socket is the session's, shared by every stream). */
  private readonly http1: boolean;

  constructor(
    request: IncomingMessage,
    private readonly response: ServerResponse,
    private readonly cors: OutgoingHttpHeaders,
  ) {
    this.socket = request.socket;
    this.http1 = request.httpVersionMajor < 2;
  }

  write(bytes: Buffer): void {
    if (this.state === 'ended') return;
    if (this.state === 'waiting') this.start();
    this.send(bytes);
  }

  /**
   * Hands bytes to the socket now. Node's response corks its socket on a
   * write until the next tick (a chunk is its size line, the bytes and a
   * CRLF): uncorked at once, the chunk leaves in one writev, as a WebSocket
   * frame leaves in one write, and the socket's queue (the slow-consumer
   * measure) holds only what the kernel did not take.
   */
  private send(bytes: Buffer, written?: (err?: Error | null) => void): void {
    this.response.write(bytes, written);
    if (this.http1) this.socket.uncork();
  }

  private start(): void {
    this.state = 'streaming';
    // The heartbeat watches a stream: the HTTP server's idle timeout (http.idleTimeout) does not apply to it.
    if (this.http1) this.socket.setTimeout(0);
    const headers: OutgoingHttpHeaders = {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // nginx passes each event on at once instead of buffering the response.
      'X-Accel-Buffering': 'no',
      ...this.cors,
    };
    // No Connection header is set: HTTP/1.1 keeps the connection (node says keep-alive), and HTTP/2 forbids the header.
    this.response.writeHead(200, headers);
  }

  get queuedBytes(): number {
    return this.response.writableLength;
  }

  get bytesHandedOver(): number {
    return bytesHandedOver(this.socket);
  }

  /** A heartbeat comment; once the kernel took it, the client is alive (a stalled client's buffers are full: it never is). */
  ping(): void {
    if (this.state === 'streaming') this.send(HEARTBEAT, this.pinged);
    else if (this.state === 'waiting') this.session?.alive();
  }

  private readonly pinged = (err?: Error | null): void => {
    if (!err) this.session?.alive();
  };

  /** Nothing is read from an SSE client. */
  pause(): void {}

  resume(): void {}

  /** Ends the stream with `event: close` after what is queued; before it started, answers the refusal (or one for `code`). */
  close(code: number, reason: string): void {
    if (this.state === 'ended') return;
    const started = this.state === 'streaming';
    this.state = 'ended';
    if (!started) answer(this.response, this.refusal ?? refusalFor(code, reason), this.cors);
    else this.response.end(closeEvent(code, reason));
  }

  terminate(): void {
    this.state = 'ended';
    this.response.destroy();
  }

  refuse(refusal: Refusal): boolean {
    if (this.state !== 'waiting') return false;
    this.refusal = refusal;
    return true;
  }

  /** Reports the end of the response (the client went away, or the server ended it) to the session. */
  bind(session: Session): void {
    this.session = session;
    this.response.once('close', () => session.transportClosed(1005, 'the client closed the stream'));
  }
}

/**
 * The accepting side of SSE, for a route of the HTTP server (`GET sse.path`,
 * registered by the composition root): reads the request into a stream
 * (400 when it cannot be read), asks the gate (origin, per-address, rate),
 * and hands a `SseTransport` to the gateway with the start frame. Refusals
 * answer with the HTTP status and the HTTP API's JSON error body, so that a
 * bare `EventSource` stops retrying.
 */
export function createSseHandler(host: SseHost, options: SseOptions): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    const cors = corsHeaders(request.headers.origin, options.allowedOrigins);
    let query: URLSearchParams;
    try {
      query = new URL(request.url ?? '/', 'http://herald').searchParams;
    } catch {
      answer(response, { status: 400, code: 'bad_request', message: 'the URL cannot be read' }, cors);
      return;
    }
    const header = request.headers['last-event-id'];
    const asked = host.stream(query, typeof header === 'string' && header !== '' ? header : undefined);
    if ('status' in asked) return answer(response, asked, cors);
    if (host.closing) return answer(response, SHUTTING_DOWN, cors);
    const admitted = (refusal: Refusal | null): void => {
      if (refusal) return answer(response, refusal, cors);
      if (response.destroyed || request.socket.destroyed || host.closing) {
        host.release(request);
        if (!response.destroyed) answer(response, SHUTTING_DOWN, cors);
        return;
      }
      const transport = new SseTransport(request, response, cors);
      const session = host.accept(transport, request, asked.protocol);
      transport.bind(session);
      session.receive(asked.start, false);
    };
    const refusal = host.admit(request);
    if (refusal instanceof Promise) refusal.then(admitted, () => answer(response, { status: 503, code: 'unavailable', message: 'admission failed: retry shortly' }, cors));
    else admitted(refusal);
  };
}
