import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../errors.js';
import type { Session } from '../hub/session.js';
import type { Protocol } from '../protocols/protocol.js';
import type { Refusal } from './admission.js';
import { corsHeaders, preflightHeaders } from './cors.js';
import { openLongResponse } from './long-response.js';
import { StreamTransport, streamLine } from './stream.js';
import { parseToken, type FeedResult, type StreamSessions } from './stream-sessions.js';
import type { Transport } from './transport.js';
import { toJson } from '../util/json.js';

/** What the stream endpoint needs from the gateway (the same lifecycle as a WebSocket's, see UpgradeHost). */
export interface StreamHost {
  /** True while the gateway is shutting down: new streams are refused with 503. */
  readonly closing: boolean;
  /** Origin, per-address and rate checks; null admits the request and holds its connection slot. */
  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null>;
  /** Gives back the slot of an admitted request that did not become a stream. */
  release(request: IncomingMessage): void;
  /** A new connection: the gateway makes it a session; `credentials.token` is the `Authorization: Bearer` token, which wins over `?token=`. */
  accept(transport: Transport, request: IncomingMessage, protocol: Protocol, credentials?: { token?: string }): Session;
}

/** What became of a send for a stream of another node: what that node did, or why it could not be asked. */
export type ForwardResult = FeedResult | 'timeout' | 'unavailable';

export interface StreamRouteOptions {
  /** Where streams are opened (`stream.path`); sends go to `<path>/send`. */
  readonly path: string;
  /** The JSON protocol in the NDJSON framing. */
  readonly protocol: Protocol;
  /** Largest command (its JSON text), as a WebSocket frame (`limits.maxFrameBytes`); over it: 413. */
  readonly maxFrameBytes: number;
  /** Relay timeout in ms, for the 504's message. */
  readonly relayTimeout: number;
  /** `allowedOrigins`: which pages of other origins may read the answers, and with their cookies (CORS, transport/cors.ts). */
  readonly allowedOrigins: readonly string[];
  /** Hands commands for the stream `session` (its token) to `node`, another node, through the broker. */
  forward(node: string, session: string, frames: string[]): Promise<ForwardResult>;
}

const NDJSON_HEADERS = {
  'content-type': 'application/x-ndjson; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An error answer in the HTTP API's shape (with its headers, or a status HeraldError does not map to: 504). */
function answer(reply: FastifyReply, status: number, code: string, message: string, headers: Record<string, string> = {}): FastifyReply {
  return reply.status(status).headers(headers).send({ ok: false, error: { code, message } });
}

/**
 * The request's JSON value: undefined when the body is absent or blank.
 * Both content types the stream routes take arrive as text (see
 * `registerStreamRoutes`).
 */
function jsonBody(request: FastifyRequest): unknown {
  const body = request.body;
  if (typeof body !== 'string' || body.trim() === '') return undefined;
  try {
    return JSON.parse(body);
  } catch {
    throw new HeraldError('bad_request', 'the body is not valid JSON');
  }
}

/** Each command's JSON text, a frame for the session; over `maxFrameBytes` throws `too_large`, as a WebSocket frame is refused. */
function frameTexts(commands: readonly unknown[], maxFrameBytes: number): string[] {
  return commands.map((command, index) => {
    const text = JSON.stringify(command);
    const bytes = Buffer.byteLength(text);
    if (bytes > maxFrameBytes) throw new HeraldError('too_large', `command ${index} is ${bytes} bytes, over limits.maxFrameBytes (${maxFrameBytes})`);
    return text;
  });
}

/** The JWT of `Authorization: Bearer <jwt>`; undefined without one. */
function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : undefined;
}

/**
 * HTTP streaming (docs/transports.md), registered by the composition root:
 * `POST <path>` opens a stream, a long response of NDJSON lines, each a
 * JSON-protocol server frame as on a WebSocket, the first one naming the
 * stream's session token; `POST <path>/send` takes commands for a stream
 * on any node (`forward` hands them to the node holding it). Admission,
 * authentication, permissions and limits are the WebSocket's: the stream is
 * a session of the JSON protocol whose frames arrive by POST.
 */
export function registerStreamRoutes(app: FastifyInstance, host: StreamHost, sessions: StreamSessions, options: StreamRouteOptions): void {
  // In a scope of their own: JSON as application/json or text/plain (what a page sends without a CORS
  // preflight, and fetch's default for a string body), read as text, an empty body being no body;
  // any other content type is answered 415 by Fastify.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, (_request, body, done) => done(null, body));
    // Every answer of these routes (errors included) says which other origins may read it; a hijacked stream repeats them itself.
    scope.addHook('onRequest', async (request, reply) => {
      reply.headers(corsHeaders(request.headers.origin, options.allowedOrigins));
    });
    streamRoutes(scope, host, sessions, options);
  });
}

function streamRoutes(app: FastifyInstance, host: StreamHost, sessions: StreamSessions, options: StreamRouteOptions): void {
  const { path, maxFrameBytes } = options;

  // A page of another origin sending a Bearer token or application/json asks first.
  for (const route of [path, `${path}/send`]) {
    app.options(route, async (request, reply) => reply.status(204).headers(preflightHeaders(request.headers.origin, options.allowedOrigins)).send());
  }

  // A stream lives as long as its connection, and Fastify's request with it: no child logger per stream
  // (about 2 KB each: its bindings and bound methods); a session logs with its connection id.
  app.post(path, { childLoggerFactory: (logger) => logger }, async (request, reply) => {
    if (host.closing) return answer(reply, 503, 'unavailable', 'server is shutting down');
    const body = jsonBody(request);
    const frames = frameTexts(body === undefined ? [] : Array.isArray(body) ? body : [body], maxFrameBytes);
    let refusal: Refusal | null;
    try {
      refusal = await host.admit(request.raw);
    } catch {
      refusal = { status: 503, code: 'unavailable', message: 'admission failed: retry shortly' };
    }
    if (refusal) return answer(reply, refusal.status, refusal.code, refusal.message, refusal.headers);
    reply.hijack();
    // The body was read (Fastify parsed it before this handler): under HTTP/1.x the socket can be taken from the HTTP server.
    const response = await openLongResponse(request.raw, reply.raw);
    const headers = { 'x-request-id': String(request.id), ...corsHeaders(request.headers.origin, options.allowedOrigins) };
    if (response.gone || host.closing) {
      host.release(request.raw);
      const body = toJson({ ok: false, error: { code: 'unavailable', message: 'server is shutting down' } });
      if (!response.gone) response.answer(503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }, body);
      return;
    }
    const { token } = sessions.mint();
    // First, before anything of the session: the head and the line naming the stream go out at once.
    response.start({ ...NDJSON_HEADERS, ...headers }, streamLine(token));
    const transport = new StreamTransport(response);
    const bearer = bearerToken(request.headers.authorization);
    const session = host.accept(transport, request.raw, options.protocol, bearer === undefined ? undefined : { token: bearer });
    sessions.add(token, session, transport);
    transport.bind(session, () => sessions.remove(token));
    // The body's commands are the stream's first frames (they wait in the inbox while its identity is settled).
    if (frames.length > 0) void sessions.feed(token, frames);
  });

  app.post(`${path}/send`, async (request, reply) => {
    const value = jsonBody(request);
    if (!isObject(value)) throw new HeraldError('bad_request', 'the body must be a JSON object: {"session":"<token>","commands":[...]} or {"session":"<token>","command":{...}}');
    if (typeof value.session !== 'string' || value.session === '') throw new HeraldError('bad_request', 'field "session" must be the session token of the stream (its first line)');
    if (('commands' in value) === ('command' in value)) throw new HeraldError('bad_request', 'give either "commands" (an array) or "command"');
    const commands = 'command' in value ? [value.command] : value.commands;
    if (!Array.isArray(commands) || commands.length === 0) throw new HeraldError('bad_request', 'field "commands" must be an array of at least one command');
    const frames = frameTexts(commands, maxFrameBytes);
    const token = parseToken(value.session);
    const result: ForwardResult = token === null ? 'not_found' : sessions.isLocal(token) ? await sessions.feed(token, frames) : await options.forward(token.node, value.session, frames);
    switch (result) {
      case 'fed':
        return reply.status(202).send({ ok: true });
      case 'not_found':
        return answer(reply, 404, 'session_not_found', 'no stream with this session token: it ended, or the token is wrong; open a new stream');
      case 'busy':
        return answer(reply, 429, 'rate_limited', 'too many sends waiting for this stream: send one at a time, after the answer to the previous one', { 'retry-after': '1' });
      case 'timeout':
        return answer(reply, 504, 'unavailable', `the node holding the stream did not take the commands within ${options.relayTimeout} ms (they may still be handled)`);
      case 'unavailable':
        return answer(reply, 503, 'unavailable', 'the node holding the stream cannot be reached now (broker unavailable): retry shortly', { 'retry-after': '1' });
    }
  });
}
