import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { HeraldError } from '../../errors.js';
import { describeIssue as describe } from '../../util/zod.js';
import type { RouteContext } from './context.js';

const publishItem = z.strictObject({
  topic: z.string().optional(),
  topics: z.array(z.string()).min(1).optional(),
  message: z.unknown().optional(),
  /** A retry with the same key within the idempotency window publishes nothing and answers the first result. */
  idempotencyKey: z.string().min(1).max(200).optional(),
  /** A connection id that must not receive the publication (its sender), on any node. */
  exclude: z.string().min(1).max(128).optional(),
  /**
   * Tags that subscription filters test, taken as sent and checked by the
   * publisher (`tagsProblem`: 16 tags, names 1 to 64, values to 256
   * characters): a record schema would copy them and lose a `__proto__` name.
   */
  tags: z.custom<Record<string, string>>(() => true).optional(),
  /** An event name (1 to 200 characters). */
  event: z.string().optional(),
});
type PublishItem = z.infer<typeof publishItem>;

const sendBody = z.strictObject({
  uid: z.string().min(1).optional(),
  uids: z.array(z.string().min(1)).min(1).max(1000).optional(),
  message: z.unknown().optional(),
});

const disconnectBody = z.strictObject({ uid: z.string().min(1), reason: z.string().max(100).optional(), code: z.number().int().min(4000).max(4999).optional() });


/** Checks one publish item; returns its topics or throws a HeraldError naming the problem. */
function topicsOf(
  item: unknown,
  topicRule: (topic: string) => string | null,
  where: string,
): { topics: string[]; message: unknown } & ItemOptions {
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
  return { topics, message: data.message, idempotencyKey: data.idempotencyKey, exclude: data.exclude, tags: data.tags, event: data.event };
}

interface ItemOptions {
  idempotencyKey?: string | undefined;
  exclude?: string | undefined;
  tags?: Record<string, string> | undefined;
  event?: string | undefined;
}

/** Publish options of an item: its idempotency key (kept per topic: one item to several topics is several publications), exclusion, tags and event. */
function optionsOf(item: ItemOptions): { idempotencyKey?: string; exclude?: string; tags?: Record<string, string>; event?: string } {
  return {
    ...(item.idempotencyKey === undefined ? {} : { idempotencyKey: item.idempotencyKey }),
    ...(item.exclude === undefined ? {} : { exclude: item.exclude }),
    ...(item.tags === undefined ? {} : { tags: item.tags }),
    ...(item.event === undefined ? {} : { event: item.event }),
  };
}

/** The write side of the API, all guarded: publish (one, several topics, a batch), push to users, disconnect users. */
export function publishRoutes(app: FastifyInstance, { herald, guard }: RouteContext): void {
  const { limits } = herald.config;
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
    const { uid, ...options } = parsed.data;
    // `closed`: the user's connections closed on every node (the answer's shape predates the cluster-wide count).
    const { connections } = await herald.disconnectUser(uid, options);
    return { ok: true, closed: connections };
  });

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
        item.topics.map((topic) => ({ topic, message: item.message, ...optionsOf(item), label: item.topics.length > 1 ? `item ${index} (${topic})` : `item ${index}` })),
      );
      await herald.publishMany(publications, 'http');
      return { ok: true, count: publications.length };
    }
    if (typeof body !== 'object' || body === null) throw new HeraldError('bad_request', 'body must be a JSON object or an array of them');
    const item = topicsOf(body, topicRule, '');
    if (item.topics.length === 1) {
      const result = await herald.publish(item.topics[0]!, item.message, 'http', optionsOf(item));
      return { ok: true, ...result };
    }
    // Several topics: one broadcast, the message serialised once.
    const offsets: Record<string, number> = {};
    const results = await herald.broadcast(item.topics, item.message, 'http', optionsOf(item));
    results.forEach((result, index) => {
      if (result.offset !== undefined) offsets[item.topics[index]!] = result.offset;
    });
    return Object.keys(offsets).length > 0 ? { ok: true, count: item.topics.length, offsets } : { ok: true, count: item.topics.length };
  });

}
