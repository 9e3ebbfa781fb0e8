import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../errors.js';

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * The HTTP API's guard. With API keys configured, a request needs
 * `Authorization: Bearer <key>` matching one of them (compared in constant
 * time). Without keys the API answers only callers on the loopback interface
 * that did not come through a proxy (a proxy on the same host would
 * otherwise make the whole world look local).
 */
export function createApiGuard(apiKeys: readonly string[]): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const keys = apiKeys.map(digest);
  return async (request) => {
    if (keys.length === 0) {
      const proxied = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined;
      if (!isLoopback(request.socket.remoteAddress) || proxied) {
        throw new HeraldError('forbidden', 'the HTTP API answers loopback callers only until apiKeys are configured');
      }
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
