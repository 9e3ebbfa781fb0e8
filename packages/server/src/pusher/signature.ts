import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { secretsOf } from './apps.js';

/**
 * Pusher's request signing for its HTTP API ("Generating authentication
 * signatures" in Pusher's HTTP API reference, and what the `pusher` server
 * library's `createSignedQueryString` does): the query carries `auth_key`,
 * `auth_timestamp` (seconds since the epoch), `auth_version` (`1.0`),
 * `body_md5` (MD5 hex of the body, for a request with one) and
 * `auth_signature`, the HMAC-SHA256 hex, keyed with the app's secret, of
 *
 *     METHOD \n PATH \n QUERY
 *
 * where QUERY is every query parameter but `auth_signature`, keys lower-cased,
 * sorted by key, `key=value` joined with `&`, values not URL-escaped.
 */

/** A parameter of a request's query: its key and value, both as sent (`raw`) and URL-decoded. */
export interface QueryParam {
  readonly key: string;
  readonly value: string;
  readonly rawKey: string;
  readonly rawValue: string;
}

/** Why a request is refused: the HTTP status and the plain-text message Pusher's servers answer with. */
export interface SignatureProblem {
  readonly status: 400 | 401;
  readonly message: string;
}

export interface SignedRequest {
  /** The HTTP method, upper case. */
  readonly method: string;
  /** The path as it arrived (percent-escapes kept). */
  readonly rawPath: string;
  readonly query: readonly QueryParam[];
  /** The body's bytes as text (empty without a body). */
  readonly body: string;
}

export interface SigningApp {
  readonly key: string;
  readonly secret: string;
  /** Secrets still accepted during a rotation (`pusher.apps[].previousSecrets`). */
  readonly previousSecrets?: readonly string[];
}

/** `decodeURIComponent`, or the text as it is when it holds a malformed escape. `+` stays `+` (Pusher signs values unescaped). */
function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The parameters of a query string (without its `?`), in order; empty parts are skipped. */
export function parseQuery(query: string): QueryParam[] {
  const params: QueryParam[] = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    params.push({ key: decode(rawKey), value: decode(rawValue), rawKey, rawValue });
  }
  return params;
}

/** The string an HMAC signs: `METHOD\nPATH\nQUERY`, QUERY sorted by lower-cased key, without `auth_signature`. */
export function stringToSign(method: string, path: string, params: ReadonlyArray<readonly [string, string]>): string {
  const pairs = params
    .map(([key, value]) => [key.toLowerCase(), value] as const)
    .filter(([key]) => key !== 'auth_signature')
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${method.toUpperCase()}\n${path}\n${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`;
}

/** HMAC-SHA256 hex of `text` with `secret`. */
export function sign(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text, 'utf8').digest('hex');
}

/** MD5 hex of `body` (its UTF-8 bytes). */
export function md5(body: string): string {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

/** Whether `given` is the hex digest `expected`, compared in constant time (a length mismatch is answered at once: the length is no secret). */
export function sameDigest(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

const REQUIRED = ['auth_key', 'auth_timestamp', 'auth_version', 'auth_signature'] as const;
const AUTH_PARAMS: ReadonlySet<string> = new Set([...REQUIRED, 'body_md5']);

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Why a request is not signed by `app` (null when it is). Checked in order:
 * each auth parameter present once (401 `Missing parameter`, 400 when one is
 * repeated), `auth_key` is the app's (401), `auth_version` is `1.0` (401),
 * `auth_timestamp` an integer within `windowSeconds` of `nowMs` (401
 * `Timestamp expired`), the signature over the path as sent or as decoded
 * and the query's values as sent or as decoded (401 `Invalid signature`),
 * then `body_md5`, required with a body and equal to its MD5 (401). The
 * messages are Pusher's where Pusher has one. `otherKey` says whether the
 * given key is another app's (for a clearer message).
 */
export function signatureProblem(request: SignedRequest, app: SigningApp, windowSeconds: number, nowMs: number, otherKey: (key: string) => boolean = () => false): SignatureProblem | null {
  const auth = new Map<string, string>();
  for (const param of request.query) {
    const key = param.key.toLowerCase();
    if (!AUTH_PARAMS.has(key)) continue;
    if (auth.has(key)) return { status: 400, message: `${key} is given more than once` };
    auth.set(key, param.value);
  }
  for (const key of REQUIRED) {
    if (!auth.has(key)) return { status: 401, message: `Missing parameter: ${key}${key === 'auth_timestamp' ? ' (Timestamp required)' : ''}` };
  }
  const key = auth.get('auth_key')!;
  if (key !== app.key) return { status: 401, message: otherKey(key) ? 'Invalid auth_key: the key of another app' : 'Unknown auth_key' };
  const version = auth.get('auth_version')!;
  if (version !== '1.0') return { status: 401, message: `Unsupported auth_version ${JSON.stringify(version)}: 1.0 is supported` };
  const stamp = auth.get('auth_timestamp')!;
  if (!/^\d{1,12}$/.test(stamp)) return { status: 401, message: `Invalid auth_timestamp ${JSON.stringify(stamp)}: seconds since the epoch` };
  const now = Math.floor(nowMs / 1000);
  if (Math.abs(now - Number(stamp)) >= windowSeconds) {
    return { status: 401, message: `Timestamp expired: Given timestamp (${iso(Number(stamp))}) not within ${windowSeconds}s of server time (${iso(now)})` };
  }
  const given = auth.get('auth_signature')!;
  const decodedPath = decode(request.rawPath);
  const candidates = new Set([
    stringToSign(request.method, request.rawPath, request.query.map((p) => [p.rawKey, p.rawValue])),
    stringToSign(request.method, decodedPath, request.query.map((p) => [p.key, p.value])),
  ]);
  let signed = false;
  for (const secret of secretsOf(app)) for (const candidate of candidates) signed = sameDigest(sign(secret, candidate), given) || signed;
  if (!signed) {
    const expected = stringToSign(request.method, decodedPath, request.query.map((p) => [p.key, p.value]));
    return { status: 401, message: `Invalid signature: you should have sent HmacSHA256Hex(${JSON.stringify(expected)}, your_secret_key), but you sent ${JSON.stringify(given)}` };
  }
  const bodyMd5 = auth.get('body_md5');
  if (bodyMd5 === undefined) {
    if (request.body.length > 0) return { status: 401, message: 'Missing parameter: body_md5 (required with a body)' };
  } else if (!sameDigest(md5(request.body), bodyMd5.toLowerCase())) {
    return { status: 401, message: 'Invalid body_md5: it is not the MD5 of the body' };
  }
  return null;
}
