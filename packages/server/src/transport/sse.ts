import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { CloseCode } from '@herald/protocol';
import type { Session } from '../hub/session.js';
import type { Protocol } from '../protocols/protocol.js';
import { closeEvent } from '../protocols/sse/codec.js';
import { corsHeaders } from './cors.js';
import { openLongResponse, type LongResponse } from './long-response.js';
import type { Refusal, Transport } from './transport.js';
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

/** The error answer of a refusal: the HTTP API's JSON body and the headers that go with it. */
function refusalAnswer(refusal: Refusal, cors: OutgoingHttpHeaders): { headers: OutgoingHttpHeaders; body: string } {
  return {
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...cors, ...refusal.headers },
    body: toJson({ ok: false, error: { code: refusal.code, message: refusal.message } }),
  };
}

/** Answers a request that does not become a stream, on node's response: its status and the HTTP API's JSON error body. */
function answer(response: ServerResponse, refusal: Refusal, cors: OutgoingHttpHeaders): void {
  if (response.headersSent || response.destroyed) {
    response.destroy();
    return;
  }
  const { headers, body } = refusalAnswer(refusal, cors);
  response.writeHead(refusal.status, { ...headers, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

/** The stream's headers, after which come the CORS headers of the request. */
const STREAM_HEADERS: OutgoingHttpHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-store',
  // nginx passes each event on at once instead of buffering the response.
  'X-Accel-Buffering': 'no',
};

/**
 * An SSE stream as a session's transport: the bytes are complete events,
 * framed by the session's codec, written to the stream's response (its
 * socket, taken from the HTTP server, under HTTP/1.x: see `LongResponse`).
 * The 200 and its headers go out with the first bytes; until then the
 * server can still refuse the request with an HTTP error (`refuse`, and the
 * close that follows). Nothing is read from the client: its sign of life is
 * outbound progress, and the heartbeat comment handed to the kernel. The
 * server ends a stream with `event: close` (`{"code","reason"}`).
 */
export class SseTransport implements Transport {
  readonly name = 'sse';
  private state: 'waiting' | 'streaming' | 'ended' = 'waiting';
  private refusal: Refusal | null = null;
  private session: Session | null = null;
  /** The request's CORS headers, until the head or the refusal went out. */
  private cors: OutgoingHttpHeaders | null;

  constructor(
    private readonly response: LongResponse,
    cors: OutgoingHttpHeaders,
  ) {
    this.cors = cors;
  }

  write(bytes: Buffer): void {
    if (this.state === 'streaming') this.response.write(bytes);
    else if (this.state === 'waiting') {
      this.state = 'streaming';
      this.response.start({ ...STREAM_HEADERS, ...this.cors }, bytes);
      this.cors = null;
    }
  }

  get queuedBytes(): number {
    return this.response.queuedBytes;
  }

  get bytesHandedOver(): number {
    return this.response.bytesHandedOver;
  }

  /** A heartbeat comment; once the kernel took it, the client is alive (a stalled client's buffers are full: it never is). */
  ping(): void {
    if (this.state === 'streaming') this.response.write(HEARTBEAT, this.pinged);
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
    if (started) return this.response.end(closeEvent(code, reason));
    const refusal = this.refusal ?? refusalFor(code, reason);
    const { headers, body } = refusalAnswer(refusal, this.cors ?? {});
    this.cors = null;
    this.response.answer(refusal.status, headers, body);
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

  /** Reports the end of the stream (the client went away, or the server ended it) to the session. */
  bind(session: Session): void {
    this.session = session;
    this.response.onClose(() => session.transportClosed(1005, 'the client closed the stream'));
  }
}

/**
 * The accepting side of SSE, for a route of the HTTP server (`GET sse.path`,
 * registered by the composition root): reads the request into a stream
 * (400 when it cannot be read), asks the gate (origin, per-address, rate),
 * and hands a `SseTransport` to the gateway with the start frame. Refusals
 * answer with the HTTP status and the HTTP API's JSON error body, so that a
 * bare `EventSource` stops retrying. The returned promise settles once the
 * request is answered or became a stream.
 */
export function createSseHandler(host: SseHost, options: SseOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  return async (request, response) => {
    const cors = corsHeaders(request.headers.origin, options.allowedOrigins);
    let query: URLSearchParams;
    try {
      query = new URL(request.url ?? '/', 'http://herald').searchParams;
    } catch {
      return answer(response, { status: 400, code: 'bad_request', message: 'the URL cannot be read' }, cors);
    }
    const header = request.headers['last-event-id'];
    const asked = host.stream(query, typeof header === 'string' && header !== '' ? header : undefined);
    if ('status' in asked) return answer(response, asked, cors);
    if (host.closing) return answer(response, SHUTTING_DOWN, cors);
    let refusal: Refusal | null;
    try {
      refusal = await host.admit(request);
    } catch {
      refusal = { status: 503, code: 'unavailable', message: 'admission failed: retry shortly' };
    }
    if (refusal) return answer(response, refusal, cors);
    const stream = await openLongResponse(request, response);
    if (stream.gone || host.closing) {
      host.release(request);
      if (!stream.gone) {
        const { headers, body } = refusalAnswer(SHUTTING_DOWN, cors);
        stream.answer(SHUTTING_DOWN.status, headers, body);
      }
      return;
    }
    const transport = new SseTransport(stream, cors);
    const session = host.accept(transport, request, asked.protocol);
    transport.bind(session);
    session.receive(asked.start, false);
  };
}
