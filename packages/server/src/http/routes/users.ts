import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HeraldError } from '../../errors.js';
import { describeIssue as describe } from '../../util/zod.js';
import type { RouteContext } from './context.js';

const topicFields = { uid: z.string().min(1), topic: z.string().optional(), topics: z.array(z.string()).min(1).optional() };
const subscribeBody = z.strictObject({ ...topicFields, persistent: z.boolean().optional() });
const unsubscribeBody = z.strictObject({ ...topicFields, reason: z.string().max(100).optional() });

/** The topics of a body that gives exactly one of `topic` or `topics`. */
function topicsOf(data: { topic?: string | undefined; topics?: string[] | undefined }): string[] {
  if ((data.topic === undefined) === (data.topics === undefined)) throw new HeraldError('bad_request', 'give either "topic" or "topics"');
  return data.topics ?? [data.topic!];
}

/**
 * The server API on users' live connections, all guarded (docs/backend.md,
 * docs/http-api.md): subscribe a user's connections to topics or
 * unsubscribe them, on every node; list them. (`POST /api/disconnect` is
 * with the write routes.)
 */
export function userRoutes(app: FastifyInstance, { herald, guard }: RouteContext): void {
  app.post('/api/users/subscribe', { onRequest: guard }, async (request) => {
    const parsed = subscribeBody.safeParse(request.body);
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    const { uid, persistent } = parsed.data;
    const result = await herald.subscribeUser(uid, topicsOf(parsed.data), persistent === undefined ? {} : { persistent });
    return { ok: true, ...result };
  });

  app.post('/api/users/unsubscribe', { onRequest: guard }, async (request) => {
    const parsed = unsubscribeBody.safeParse(request.body);
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    const { uid, reason } = parsed.data;
    const result = await herald.unsubscribeUser(uid, topicsOf(parsed.data), reason === undefined ? {} : { reason });
    return { ok: true, ...result };
  });

  app.get('/api/users/connections', { onRequest: guard }, async (request) => {
    const uid = (request.query as Record<string, unknown>).uid;
    if (typeof uid !== 'string' || uid.length === 0) throw new HeraldError('bad_request', 'query parameter "uid" is required');
    return { ok: true, uid, connections: await herald.listConnections(uid) };
  });
}
