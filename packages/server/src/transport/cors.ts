import type { OutgoingHttpHeaders } from 'node:http';

/**
 * CORS for the HTTP transports (SSE, HTTP streaming), read by a page of
 * another origin. Without `allowedOrigins`, any origin may read a stream it
 * opened without credentials (`*`: the browser sends no cookie, so the
 * stream is what its token or an anonymous visitor may see, as a WebSocket
 * from that page would be). With `allowedOrigins`, only a listed origin may
 * read, and with its cookies (`withCredentials` / `credentials: 'include'`),
 * which reach the connect hook; the gate refuses other origins before this.
 * No header for a same-origin request (no `Origin`).
 */
export function corsHeaders(origin: string | undefined, allowedOrigins: readonly string[]): OutgoingHttpHeaders {
  if (origin === undefined) return {};
  if (allowedOrigins.length === 0) return { 'Access-Control-Allow-Origin': '*' };
  if (!allowedOrigins.includes(origin)) return {};
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', Vary: 'Origin' };
}

/**
 * The answer to a CORS preflight (`OPTIONS`) for a POST of the HTTP
 * transports: the origin as `corsHeaders` allows it, the `Authorization`
 * and `Content-Type` request headers (a Bearer token, `application/json`),
 * cached for 10 minutes. An origin that may not read gets no CORS header,
 * so the browser does not send the request.
 */
export function preflightHeaders(origin: string | undefined, allowedOrigins: readonly string[]): OutgoingHttpHeaders {
  const allowed = corsHeaders(origin, allowedOrigins);
  if (!('Access-Control-Allow-Origin' in allowed)) return {};
  return { ...allowed, 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'Authorization, Content-Type', 'Access-Control-Max-Age': '600' };
}
