import { splitList, type ErrorCode } from '@herald/protocol';
import type { LhttpPublication } from '../../broker/broker.js';
import { HeraldError } from '../../errors.js';
import type { Session } from '../../hub/session.js';
import type { Policy } from '../../policy/policy.js';
import type { LhttpHandler } from './handler.js';
import { writeLhttpError, type LhttpFilter } from './protocol.js';
import { encodeLhttp } from '@herald/protocol';
import { toJson } from '../../util/json.js';
import { messageText } from '../protocol.js';

export interface UpstreamOptions {
  /** URL prefixes upstream calls may go to; empty: upstream is off. */
  allow: string[];
  timeout: number;
  /** Send the upstream's answer back to the client as `LHTTP/1.0 upstream`. */
  reply: boolean;
}

/** What the built-in filters need from the gateway: subscriptions and publications go through the policy only. */
export interface LhttpHost {
  readonly policy: Policy;
  /** A connection subscribed to `topic`: on a cache-mode topic, its latest value is written to it (the recovery's answer). */
  subscribed?(session: Session, topic: string): void;
}

function sessionOf(handler: LhttpHandler): Session {
  return handler.connection as Session;
}

function fail(handler: LhttpHandler, code: ErrorCode, message: string): void {
  writeLhttpError(sessionOf(handler), code, message);
}

function refuse(handler: LhttpHandler, err: unknown): void {
  fail(handler, err instanceof HeraldError ? err.code : 'internal', err instanceof HeraldError ? err.message : 'internal error');
}

/** A subscribe proxy's payload for an LHTTP connection: `LHTTP/1.0 subscribe`, `subscribe:<topic>`, its text as the body. */
function subscribedText(topic: string, data: unknown): string {
  return encodeLhttp({ command: 'subscribe', headers: [['subscribe', topic]], body: messageText(toJson(data)) });
}

/** The names of a subscribe/publish/unsubscribe header: split on single spaces, empty names skipped. */
function topicsIn(value: string | undefined): string[] {
  return value ? splitList(value).filter((topic) => topic !== '') : [];
}

/**
 * The built-in `subscribe`, `publish` and `unsubscribe` headers (SEEDS-SPEC
 * §3.9.1), run after the processor in that fixed order whatever their order in
 * the message. Subscribers receive the message as the original publishes it:
 * the response command or the request's, the response headers or all the
 * request's (the `publish` header included), the request body.
 */
export function pubSubFilter(host: LhttpHost): LhttpFilter {
  return {
    async afterRequest(message) {
      // The pipeline (protocol.ts) hands its hooks its own LhttpHandler.
      const handler = message as LhttpHandler;
      const session = sessionOf(handler);
      const { policy } = host;
      // Each topic on its own, as the original does: a refused one does not stop the others.
      for (const topic of topicsIn(handler.headers.get('subscribe'))) {
        // A subscribe proxy's payload comes first, as LHTTP/1.0 subscribe (subscribe:<topic>, the payload's text).
        const fresh = !session.topics.has(topic);
        const { refused } = await policy.subscribe(session, [topic], { deliverFirst: (named, data) => session.sendText(subscribedText(named, data)) });
        if (refused) refuse(handler, refused);
        else if (fresh) host.subscribed?.(session, topic);
      }
      const publishTo = topicsIn(handler.headers.get('publish'));
      if (publishTo.length > 0) {
        const text = handler.response(handler.body);
        const message: LhttpPublication = {
          text,
          command: handler.responseCommand || handler.command,
          headers: [...(handler.responseHeaders ?? handler.headers)],
        };
        for (const [index, topic] of publishTo.entries()) {
          // The frame paid for its first publication; each further topic is one more command (as in a
          // JSON batch), else one frame naming a topic thousands of times would publish thousands of times.
          const overRate = index > 0 ? policy.admitCommand(session) : null;
          if (overRate) {
            refuse(handler, overRate);
            break;
          }
          try {
            await policy.publishLhttp(session, topic, message, handler.body);
          } catch (err) {
            refuse(handler, err);
          }
        }
      }
      for (const topic of topicsIn(handler.headers.get('unsubscribe'))) policy.unsubscribe(session, topic);
    },
  };
}

/**
 * A URL's path as the server it names will see it: percent-decoded (until it
 * no longer changes, so that double encoding does not help either) and with
 * its dot segments resolved, so that `/hooks/..%2Fadmin` is `/admin`. Null
 * when it cannot be decoded or keeps changing.
 */
function normalisedPath(url: URL): string | null {
  let path = url.pathname;
  for (let round = 0; round < 4; round++) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return null;
    }
    // Resolve dot segments (and backslashes, which http(s) URLs read as slashes) on the decoded text.
    const resolved = new URL(decoded.replace(/[?#]/g, encodeURIComponent), 'http://x').pathname;
    if (resolved === path) return path;
    path = resolved;
  }
  return null;
}

/**
 * True when `url` is under one of the allowed prefixes: same origin (scheme,
 * host, port), and the normalised path (see normalisedPath) starting with the
 * prefix's path at a segment boundary. A raw prefix check would let
 * `https://api.example.com/hooks/..%2Fadmin` through `https://api.example.com/hooks/`.
 */
export function upstreamAllowed(url: URL, allow: readonly string[]): boolean {
  const path = normalisedPath(url);
  if (path === null || url.username !== '' || url.password !== '') return false;
  return allow.some((text) => {
    let prefix: URL;
    try {
      prefix = new URL(text);
    } catch {
      return false;
    }
    if (prefix.origin !== url.origin) return false;
    const base = normalisedPath(prefix);
    if (base === null) return false;
    if (base.endsWith('/')) return path.startsWith(base);
    return path === base || path.startsWith(`${base}/`);
  });
}

/**
 * The built-in `upstream` header (SEEDS-SPEC §3.9.2): `upstream:POST <url>`
 * sends the body, with the LHTTP headers as HTTP headers, to the URL;
 * `upstream:GET <url>` sends no body. Unlike the original: only URLs under a
 * prefix of `lhttp.upstream.allow` (none by default, so that no client can
 * make Herald call internal addresses), no redirects, a timeout, and a failed
 * call is an LHTTP error frame rather than a crashed connection.
 */
export function upstreamFilter(options: UpstreamOptions): LhttpFilter {
  return {
    async afterRequest(message) {
      // The pipeline (protocol.ts) hands its hooks its own LhttpHandler.
      const handler = message as LhttpHandler;
      const value = handler.headers.get('upstream');
      if (!value) return;
      const [method, target] = splitList(value);
      if (!method || !target) return fail(handler, 'bad_request', 'upstream needs "<METHOD> <URL>"');
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        return fail(handler, 'bad_request', `upstream URL ${JSON.stringify(target)} does not parse`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail(handler, 'bad_request', 'upstream URLs are http or https');
      if (!upstreamAllowed(url, options.allow)) {
        return fail(handler, 'forbidden', `upstream to ${url.origin} is not allowed (lhttp.upstream.allow)`);
      }
      const headers = new Headers();
      for (const [key, headerValue] of handler.headers) {
        try {
          headers.set(key, headerValue);
        } catch {
          // Not a valid HTTP header name or value (e.g. the bogus "" key): not forwarded.
        }
      }
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers,
          body: method === 'GET' || method === 'HEAD' ? undefined : handler.body,
          redirect: 'error',
          signal: AbortSignal.timeout(options.timeout),
        });
      } catch (err) {
        const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${options.timeout} ms` : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
        return fail(handler, 'unavailable', `upstream ${method} ${url.href} failed: ${reason}`);
      }
      const text = await response.text().catch(() => '');
      if (options.reply) {
        sessionOf(handler).sendText(encodeLhttp({ command: 'upstream', headers: [['status', String(response.status)]], body: text }));
      }
    },
  };
}
