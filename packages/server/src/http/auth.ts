import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../errors.js';
import { isLocalCaller, isLoopback, type ClientAddressResolver } from '../util/client-address.js';

export { isLoopback } from '../util/client-address.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The host name of a `Host` header, lower case, without port or IPv6 brackets (`[::1]x` stays as it is: no name). */
function hostName(host: string): string {
  const text = host.trim().toLowerCase();
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    return end === -1 || !/^(:\d*)?$/.test(text.slice(end + 1)) ? text : text.slice(1, end);
  }
  const colon = text.lastIndexOf(':');
  return colon === -1 ? text : text.slice(0, colon);
}

/**
 * A loopback name: `localhost`, `*.localhost` (RFC 6761), a 127.0.0.0/8 or
 * ::1 address. An address must be an IP literal: a DNS name that merely
 * starts with `127.` (`127.0.0.1.cafe`, `127.0.0.1.abcdef.de`) can be
 * re-pointed at 127.0.0.1 by whoever owns it (DNS rebinding).
 */
function isLoopbackName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost') || (isIP(name) !== 0 && isLoopback(name));
}

/**
 * Why a request to a key-less endpoint is not from a program on this machine
 * but from a browser page of another site (or null when it is not): a `Host`
 * that is not a loopback name or one of `allowedHosts` (DNS rebinding), an
 * `Origin` other than the one the request is addressed to, or a browser's
 * `Sec-Fetch-Site` other than `same-origin` or `none` (typed in the address bar).
 */
export function crossSiteProblem(request: FastifyRequest, allowedHosts: readonly string[]): string | null {
  const host = request.headers.host;
  if (host !== undefined) {
    const name = hostName(host);
    if (!isLoopbackName(name) && !allowedHosts.includes(name)) return `Host ${JSON.stringify(host)} is not a loopback name or one of allowedHosts`;
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${site} request from a browser page`;
  const origin = request.headers.origin;
  if (origin !== undefined) {
    let same = false;
    try {
      const url = new URL(origin);
      same = (url.protocol === 'http:' || url.protocol === 'https:') && host !== undefined && url.host === host.trim().toLowerCase();
    } catch {
      same = false;
    }
    if (!same) return `a request from a page on origin ${origin}`;
  }
  return null;
}

/**
 * Why a request is not from a program on this machine, or null when it is: the
 * client address (through `resolve`, the one reading of proxy headers) must be
 * loopback with no unaccounted-for proxy in front, and the request must not
 * come from a browser page of another site (see crossSiteProblem).
 */
export function localCallerProblem(request: FastifyRequest, resolve: ClientAddressResolver, allowedHosts: readonly string[]): string | null {
  const client = resolve(request.raw);
  if (!isLocalCaller(client)) {
    return client.proxied ? 'the request came through a proxy that trustProxy does not name' : `${client.address} is not a loopback address`;
  }
  return crossSiteProblem(request, allowedHosts);
}

export interface ApiGuardOptions {
  apiKeys: readonly string[];
  /** The client address of a request (see util/client-address.ts). */
  clientAddress: ClientAddressResolver;
  /** Host names the key-less API answers besides loopback ones. */
  allowedHosts: readonly string[];
}

/**
 * The HTTP API's guard. With API keys configured, a request needs
 * `Authorization: Bearer <key>` matching one of them (compared in constant
 * time). Without keys the API answers only programs on this machine: a
 * loopback client address (a proxy on the same host must not make the whole
 * world look local), and no browser page of another site (a page on any site
 * is a loopback caller through the user's browser).
 */
export function createApiGuard(options: ApiGuardOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const keys = options.apiKeys.map(digest);
  return async (request) => {
    if (keys.length === 0) {
      const problem = localCallerProblem(request, options.clientAddress, options.allowedHosts);
      if (problem) throw new HeraldError('forbidden', `the HTTP API answers programs on this machine (loopback, not from a browser page of another site) until apiKeys are configured: ${problem}`);
      return;
    }
    const header = request.headers.authorization;
    if (!header) throw new HeraldError('unauthorized', 'missing "Authorization: Bearer <api key>" header');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new HeraldError('unauthorized', 'the Authorization header must be "Bearer <api key>"');
    const given = digest(match[1]!);
    let ok = false;
    for (const key of keys) ok = timingSafeEqual(given, key) || ok;
    if (!ok) throw new HeraldError('unauthorized', 'invalid API key');
  };
}
