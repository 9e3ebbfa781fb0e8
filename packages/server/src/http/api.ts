import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fastifyFormbody from '@fastify/formbody';
import fastifyStatic from '@fastify/static';
import { decodeLhttp, splitList } from '@herald/protocol';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HeraldError, HTTP_STATUS } from '../errors.js';
import { describeIssue as describe } from '../util/zod.js';
import type { Herald } from '../gateway.js';
import { registerDemoBackend } from '../demo/backend.js';
import { toJson } from '../util/json.js';
import { createApiGuard } from './auth.js';

/** Whether a request carries a body (a length over zero, or a chunked one). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

/** The minified @herald/client bundle, or null when it was not built. */
function readClientBundle(): Buffer | null {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('@herald/client/bundle'));
  } catch {
    return null;
  }
}

const publishItem = z.strictObject({
  topic: z.string().optional(),
  topics: z.array(z.string()).min(1).optional(),
  message: z.unknown().optional(),
  /** A retry with the same key within the idempotency window publishes nothing and answers the first result. */
  idempotencyKey: z.string().min(1).max(200).optional(),
});
type PublishItem = z.infer<typeof publishItem>;

const sendBody = z.strictObject({
  uid: z.string().min(1).optional(),
  uids: z.array(z.string().min(1)).min(1).max(1000).optional(),
  message: z.unknown().optional(),
});

/**
 * The seed endpoints answer errors as the originals do (a status and an empty
 * body); this response header says why, for a person reading `curl -i`.
 */
const SEED_ERROR_HEADER = 'x-herald-error';

const disconnectBody = z.strictObject({ uid: z.string().min(1), reason: z.string().max(100).optional() });


/** Checks one publish item; returns its topics or throws a HeraldError naming the problem. */
function topicsOf(item: unknown, topicRule: (topic: string) => string | null, where: string): { topics: string[]; message: unknown; idempotencyKey?: string | undefined } {
  const parsed = publishItem.safeParse(item);
  if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error, where));
  const data: PublishItem = parsed.data;
  if (!('message' in (item as object))) throw new HeraldError('bad_request', `${where}a publication needs a "message"`);
  if ((data.topic === undefined) === (data.topics === undefined)) {
    throw new HeraldError('bad_request', `${where}give either "topic" or "topics"`);
  }
  const topics = data.topics ?? [data.topic!];
  for (const topic of topics) {
    const problem = topicRule(topic);
    if (problem) throw new HeraldError('invalid_topic', `${where}${problem}`);
  }
  return { topics, message: data.message, idempotencyKey: data.idempotencyKey };
}

/** Publish options carrying an item's idempotency key (kept per topic: one item to several topics is several publications). */
function keyOf(item: { idempotencyKey?: string | undefined }): { idempotencyKey?: string } {
  return item.idempotencyKey === undefined ? {} : { idempotencyKey: item.idempotencyKey };
}

const historyQuery = z.object({
  topic: z.string(),
  since: z.coerce.number().int().min(0).optional(),
  epoch: z.string().optional(),
  limit: z.coerce.number().int().min(1).optional(),
  reverse: z.enum(['true', 'false', '1', '0']).optional(),
});

/** The files of the dashboard page, served at /dashboard/<file>. */
const DASHBOARD_ASSETS = new Set(['dashboard.js', 'dashboard.css', 'rate.js', 'style.css']);

/**
 * The HTTP API (PROTOCOL.md §4) on Fastify. JSON in, JSON out; every error is
 * `{"ok":false,"error":{"code","message"}}` with the status HTTP_STATUS maps
 * its code to. `demoDir`: the demo pages to serve at `/` (null: none);
 * `dashboardDir`: the folder holding the dashboard page (null: not installed).
 */
export function buildHttpApi(herald: Herald, options: { demoDir: string | null; dashboardDir: string | null }): FastifyInstance {
  const { limits } = herald.config;
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
  const guard = createApiGuard({ apiKeys: herald.config.apiKeys, clientAddress: herald.clientAddress, allowedHosts: herald.config.allowedHosts });
  app.register(fastifyFormbody, { bodyLimit: limits.maxHttpBodyBytes });

  // /api/* takes JSON bodies only: a browser cannot send application/json to another site without a
  // CORS preflight (which Herald never grants), so a form or a no-cors fetch cannot reach the API.
  app.addHook('preValidation', async (request, reply) => {
    if (!request.url.startsWith('/api/') || !hasBody(request)) return;
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      return reply.status(415).send({ ok: false, error: { code: 'bad_request', message: `the body must be application/json, not ${type || 'untyped'}` } });
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    herald.metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) });
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
    if (status >= 400 && status < 500) {
      return reply.status(status).send({ ok: false, error: { code: 'bad_request', message: err.message } });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({ ok: false, error: { code: 'internal', message: 'internal error' } });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ ok: false, error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });

  app.get('/healthz', async () => ({ ok: true }));

  app.get('/readyz', async (_request, reply) => {
    if (herald.ready) return { ok: true, broker: herald.broker.state };
    const why = herald.closing ? 'shutting down' : `broker is ${herald.broker.state}`;
    return reply.status(503).send({ ok: false, error: { code: 'unavailable', message: why } });
  });

  app.get('/api/status', { onRequest: guard }, async () => herald.status());

  app.get('/api/topics', { onRequest: guard }, async (request) => {
    const limit = Math.min(Math.max(Number((request.query as Record<string, unknown>).limit) || 10, 1), 100);
    return { ok: true, topics: herald.hub.busiestTopics(limit) };
  });

  // The operations dashboard: a page of the product, served whatever `demo`
  // says. Its figures come from the guarded API above, so it shows nothing to
  // a caller the API would refuse.
  const { dashboardDir } = options;
  if (dashboardDir) {
    app.get('/dashboard', async (_request, reply) => reply.sendFile('dashboard.html', dashboardDir));
    app.get('/dashboard/:file', async (request, reply) => {
      const { file } = request.params as { file: string };
      if (!DASHBOARD_ASSETS.has(file)) throw new HeraldError('not_found', `no route GET /dashboard/${file}`);
      return reply.sendFile(file, dashboardDir);
    });
  } else {
    app.get('/dashboard', async () => {
      throw new HeraldError('not_found', 'the dashboard page is not installed (the demo/ folder of the Herald checkout is missing)');
    });
  }

  app.get('/api/presence', { onRequest: guard }, async (request) => {
    const topic = (request.query as Record<string, unknown>).topic;
    if (typeof topic !== 'string') throw new HeraldError('bad_request', 'query parameter "topic" is required');
    return { ok: true, ...herald.presence(topic) };
  });

  app.get('/api/history', { onRequest: guard }, async (request) => {
    const parsed = historyQuery.safeParse(request.query);
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    const { topic, since, epoch, limit, reverse } = parsed.data;
    if ((since === undefined) !== (epoch === undefined)) throw new HeraldError('bad_request', 'give "since" and "epoch" together');
    const page = await herald.historyOf(topic, {
      since: since === undefined ? undefined : { offset: since, epoch: epoch! },
      limit,
      reverse: reverse === 'true' || reverse === '1',
    });
    return { ok: true, ...page };
  });

  app.get('/metrics', { onRequest: guard }, async (_request, reply) => {
    const text = await herald.metrics.registry.metrics();
    return reply.type(herald.metrics.registry.contentType).send(text);
  });

  app.get('/api/cluster', { onRequest: guard }, async () => ({ node: herald.nodeId, broker: herald.broker.name, nodes: herald.clusterView() }));

  app.post('/api/send', { onRequest: guard }, async (request) => {
    const parsed = sendBody.safeParse(request.body);
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    const { uid, uids } = parsed.data;
    if ((uid === undefined) === (uids === undefined)) throw new HeraldError('bad_request', 'give either "uid" or "uids"');
    if (!('message' in (request.body as object))) throw new HeraldError('bad_request', 'a push needs a "message"');
    const { delivered, nodes } = await herald.send(uids ?? [uid!], parsed.data.message);
    return { ok: true, delivered, nodes };
  });

  app.post('/api/disconnect', { onRequest: guard }, async (request) => {
    const parsed = disconnectBody.safeParse(request.body);
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    return { ok: true, closed: herald.disconnect(parsed.data.uid, parsed.data.reason) };
  });

  // The push-centre seed's endpoint, kept as it is: uid and message from the
  // query or a form body (the body wins); 400 with an empty body, as the seed
  // answers, when the uid is missing or has no connection (the reason is in
  // the X-Herald-Error header); 200 with an empty body otherwise.
  const seedSend = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const query = request.query as Record<string, unknown>;
    const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
    const field = (name: string): string => {
      const value = body[name] ?? query[name];
      return typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : '';
    };
    const uid = field('uid');
    if (!uid) return void reply.status(400).header(SEED_ERROR_HEADER, 'uid is required').send();
    if (!herald.isUserConnected(uid)) return void reply.status(400).header(SEED_ERROR_HEADER, `client not found: ${encodeURIComponent(uid)}`).send();
    await herald.sendSeed(uid, field('message'));
    return void reply.status(200).type('text/plain').send('');
  };
  app.get('/send', { onRequest: guard }, seedSend);

  // The Lhttp seed's endpoint: a whole LHTTP message, whatever the content type
  // says (curl -d and PHP's curl send form-urlencoded by default, the Go helper
  // text/plain): its own scope reads every body as raw text, and its raw bytes
  // are published to every topic of its `publish` header. 200 with an empty
  // body as the original (also without a publish header); 400 for a body that
  // is not LHTTP, where the original dropped the connection.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    scope.post('/publish', { onRequest: guard }, async (request, reply) => {
      const text = typeof request.body === 'string' ? request.body : '';
      let message;
      try {
        message = decodeLhttp(text);
      } catch (err) {
        throw new HeraldError('bad_request', `not an LHTTP message: ${(err as Error).message}`);
      }
      const topics = splitList(message.headers.get('publish') ?? '').filter((topic) => topic !== '');
      if (topics.length === 0) request.log.debug('POST /publish without a publish header: nothing published');
      const lhttp = { text, command: message.command, headers: [...message.headers] };
      for (const topic of topics) await herald.publishLhttp(topic, lhttp, message.body, 'http');
      return reply.status(200).type('text/plain').send('');
    });
  });
  app.post('/send', { onRequest: guard }, seedSend);

  app.post('/api/publish', { onRequest: guard }, async (request) => {
    const body = request.body;
    const topicRule = (topic: string): string | null => herald.topicProblem(topic);
    if (Array.isArray(body)) {
      if (body.length === 0) throw new HeraldError('bad_request', 'a batch must hold at least one publication');
      if (body.length > limits.maxBatchSize) {
        throw new HeraldError('too_large', `a batch of ${body.length} publications is over the limit of ${limits.maxBatchSize}`);
      }
      // Validate everything first (shape here; topic, size and JSON in publishMany): a bad item rejects the whole batch, nothing half-published.
      const items = body.map((item, index) => topicsOf(item, topicRule, `item ${index}: `));
      const publications = items.flatMap((item, index) =>
        item.topics.map((topic) => ({ topic, message: item.message, ...keyOf(item), label: item.topics.length > 1 ? `item ${index} (${topic})` : `item ${index}` })),
      );
      await herald.publishMany(publications, 'http');
      return { ok: true, count: publications.length };
    }
    if (typeof body !== 'object' || body === null) throw new HeraldError('bad_request', 'body must be a JSON object or an array of them');
    const item = topicsOf(body, topicRule, '');
    if (item.topics.length === 1) {
      const result = await herald.publish(item.topics[0]!, item.message, 'http', keyOf(item));
      return { ok: true, ...result };
    }
    const offsets: Record<string, number> = {};
    const results = await herald.publishMany(item.topics.map((topic) => ({ topic, message: item.message, ...keyOf(item), label: `topic ${topic}` })), 'http');
    results.forEach((result, index) => {
      if (result.offset !== undefined) offsets[item.topics[index]!] = result.offset;
    });
    return Object.keys(offsets).length > 0 ? { ok: true, count: item.topics.length, offsets } : { ok: true, count: item.topics.length };
  });

  // The browser SDK as one ES module: `import { HeraldClient } from 'https://herald.example/client.js'`.
  // A module script from another origin (or a file:// page, origin "null")
  // loads only with CORS: the bundle is public code, readable by any origin.
  const clientBundle = readClientBundle();
  app.get('/client.js', async (_request, reply) => {
    reply.header('access-control-allow-origin', '*').header('cross-origin-resource-policy', 'cross-origin');
    if (!clientBundle) return reply.status(404).send({ ok: false, error: { code: 'not_found', message: 'the client bundle is not built: run npm run build' } });
    return reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(clientBundle);
  });

  if (options.demoDir && herald.config.demo.backend) registerDemoBackend(app, herald);

  // reply.sendFile for the dashboard; the demo pages' folder is served at `/` only with demo.enabled.
  const staticRoot = options.demoDir ?? dashboardDir;
  if (staticRoot) app.register(fastifyStatic, { root: staticRoot, serve: false });
  if (options.demoDir) {
    app.register(fastifyStatic, { root: options.demoDir, prefix: '/', index: 'index.html', decorateReply: false });
  } else {
    app.get('/', async () => ({ name: 'herald', ok: true, websocket: herald.config.wsPath }));
  }

  return app;
}
