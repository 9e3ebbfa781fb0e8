import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HeraldError } from '../../errors.js';
import { describeIssue as describe } from '../../util/zod.js';
import type { RouteContext } from './context.js';

const historyQuery = z.object({
  topic: z.string(),
  since: z.coerce.number().int().min(0).optional(),
  epoch: z.string().optional(),
  limit: z.coerce.number().int().min(1).optional(),
  reverse: z.enum(['true', 'false', '1', '0']).optional(),
});

/** The read side of the API, all guarded: status, busiest topics, presence, history, cluster (PROTOCOL.md §4, docs/http-api.md). */
export function readRoutes(app: FastifyInstance, { herald, guard }: RouteContext): void {
  app.get('/api/status', { onRequest: guard }, async () => herald.status());

  app.get('/api/topics', { onRequest: guard }, async (request) => {
    const limit = Math.min(Math.max(Number((request.query as Record<string, unknown>).limit) || 10, 1), 100);
    return { ok: true, topics: herald.busiestTopics(limit) };
  });

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

  app.get('/api/cluster', { onRequest: guard }, async () => ({ node: herald.nodeId, broker: herald.broker.name, nodes: herald.clusterView() }));

}
