import { randomUUID } from 'node:crypto';
import fastifyFormbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { HeraldError, HTTP_STATUS } from '../errors.js';
import type { Herald } from '../herald.js';
import { toJson } from '../util/json.js';
import { createApiGuard } from './auth.js';
import type { ClientAddressResolver } from '../util/client-address.js';
import { assetRoutes } from './routes/assets.js';
import type { HttpMetrics, RouteContext } from './routes/context.js';
import { opsRoutes } from './routes/ops.js';
import { publishRoutes } from './routes/publish.js';
import { readRoutes } from './routes/read.js';
import { seedRoutes } from './routes/seeds.js';
import { userRoutes } from './routes/users.js';

export type { HttpMetrics } from './routes/context.js';

export interface HttpAppOptions {
  readonly metrics: HttpMetrics;
  /** The one reading of a request's client address (trustProxy, proxyHeader). */
  readonly clientAddress: ClientAddressResolver;
  /** The demo pages to serve at `/`; null: none. */
  readonly demoDir: string | null;
  /** The folder holding the dashboard page; null: not installed. */
  readonly dashboardDir: string | null;
  /** More routes, registered before the static pages (the demo backend). */
  readonly plugins?: ReadonlyArray<(app: FastifyInstance) => void>;
}

/** Whether a request carries a body (a length over zero, or a chunked one). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

/**
 * The HTTP API (PROTOCOL.md §4) on Fastify, over the public `Herald`
 * interface only: the server-wide settings, hooks and the one error → status
 * handler here, the routes in routes/ (one plugin each). JSON in, JSON out;
 * every error is `{"ok":false,"error":{"code","message"}}` with the status
 * HTTP_STATUS maps its code to.
 */
export function buildHttpApp(herald: Herald, options: HttpAppOptions): FastifyInstance {
  const { limits } = herald.config;
  const { metrics } = options;
  const app = Fastify({
    loggerInstance: herald.log.child({ component: 'http' }) as FastifyBaseLogger,
    // One line per request is too many for a push API: requests are logged at debug level below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.maxHttpBodyBytes,
    forceCloseConnections: 'idle',
    // Request ids: the caller's X-Request-Id when it sends one (so a backend can follow a call), else Herald's.
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Slow or idle clients do not hold sockets for ever (http.* settings; node answers 408 and closes).
    connectionTimeout: herald.config.http.idleTimeout,
    keepAliveTimeout: herald.config.http.keepAliveTimeout,
    requestTimeout: herald.config.http.requestTimeout,
    http: {
      // node refuses a headers timeout longer than the request timeout.
      headersTimeout: herald.config.http.requestTimeout > 0 ? Math.min(herald.config.http.headersTimeout, herald.config.http.requestTimeout) : herald.config.http.headersTimeout,
      requestTimeout: herald.config.http.requestTimeout,
      // How often node checks for requests over headersTimeout / requestTimeout.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, herald.config.http.headersTimeout, herald.config.http.requestTimeout || Infinity)),
    },
  });
  // JSON answers escape < > & U+2028 U+2029 (util/json.ts): the same value, safe in a page.
  app.setReplySerializer((payload) => toJson(payload));
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  const guard = createApiGuard({ apiKeys: herald.config.apiKeys, clientAddress: options.clientAddress, allowedHosts: herald.config.allowedHosts });
  app.register(fastifyFormbody, { bodyLimit: limits.maxHttpBodyBytes });

  // /api/* takes JSON bodies only: a browser cannot send application/json to another site without a
  // CORS preflight (which Herald never grants), so a form or a no-cors fetch cannot reach the API.
  // Decided by the route the request reached, not by its raw URL: `/%61pi/publish` reaches /api/publish too.
  app.addHook('preValidation', async (request, reply) => {
    const route = request.routeOptions.url ?? request.url;
    if (!route.startsWith('/api/') || !hasBody(request)) return;
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      return reply.status(415).send({ ok: false, error: { code: 'bad_request', message: `the body must be application/json, not ${type || 'untyped'}` } });
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) });
    request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setErrorHandler((err: FastifyError | HeraldError, request, reply) => {
    if (err instanceof HeraldError) {
      return reply.status(HTTP_STATUS[err.code]).send({ ok: false, error: err.toBody() });
    }
    const status = err.statusCode ?? 500;
    if (status === 413) {
      return reply.status(413).send({ ok: false, error: { code: 'too_large', message: `request body is over the limit of ${limits.maxHttpBodyBytes} bytes` } });
    }
    // Fastify's JSON parser (secure-json-parse) refuses a "__proto__" key (and "constructor" with "prototype") as it refuses broken JSON, and says only the latter.
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.status(400).send({ ok: false, error: { code: 'bad_request', message: 'the body is not valid JSON, or holds a "__proto__" key or a "constructor" key with "prototype" (refused in every JSON body: such a tag name is reserved too)' } });
    }
    if (status >= 400 && status < 500) {
      return reply.status(status).send({ ok: false, error: { code: 'bad_request', message: err.message } });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({ ok: false, error: { code: 'internal', message: 'internal error' } });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ ok: false, error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });

  const context: RouteContext = { herald, guard };
  opsRoutes(app, context, metrics);
  readRoutes(app, context);
  publishRoutes(app, context);
  userRoutes(app, context);
  seedRoutes(app, context);
  for (const plugin of options.plugins ?? []) plugin(app);
  assetRoutes(app, context, options);
  return app;
}
