import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Herald } from '../../herald.js';

/** What every route plugin is given: the Herald API, the API guard (API key or loopback) and the app's options. */
export interface RouteContext {
  readonly herald: Herald;
  readonly guard: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

/** The metrics the HTTP layer counts requests in and serves at /metrics (src/metrics/metrics.ts). */
export interface HttpMetrics {
  readonly httpRequests: { inc(labels: { route: string; method: string; status: string }): void };
  readonly registry: { metrics(): Promise<string>; readonly contentType: string };
}

