import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError, HTTP_STATUS } from '../errors.js';
import type { BatchItem, DisconnectOptions, PublicationSource, PublishOptions, UserResult } from '../herald.js';
import { RESERVED_EVENT, type PublishResult } from '../publication.js';
import type { Logger } from '../log.js';
import { PUSHER_CHANNEL, PusherApps, type PusherApp } from './apps.js';
import type { CensusQuery, CensusResult } from './census.js';
import { parseQuery, signatureProblem, type QueryParam } from './signature.js';

/** What the Pusher HTTP API needs from the rest of Herald (wired by server.ts). */
export interface PusherHttpHost {
  readonly apps: PusherApps;
  /** How far `auth_timestamp` may be from this node's clock, in seconds (`pusher.timestampWindow`). */
  readonly timestampWindow: number;
  readonly log: Logger;
  /** Herald's `broadcast`: one message to several topics (publisher.ts). */
  broadcast(topics: readonly string[], message: unknown, source: PublicationSource, options: PublishOptions): Promise<PublishResult[]>;
  /** Herald's `publishMany`: every item checked before any is published. */
  publishMany(items: ReadonlyArray<BatchItem>, source: PublicationSource): Promise<PublishResult[]>;
  /** Subscribers per topic, cluster-wide (census.ts). */
  census(query: CensusQuery): Promise<CensusResult>;
  /** The distinct uids present on a topic, cluster-wide (Herald's presence); null for a topic without presence. */
  presenceUids(topic: string): string[] | null;
  /** Herald's `disconnectUser`: every connection of the uid, on every node. */
  disconnectUser(uid: string, options: DisconnectOptions): Promise<UserResult>;
  /** Milliseconds since the epoch (tests of the timestamp window may pass another clock). */
  now?(): number;
}

/** A refusal answered as Pusher's servers answer: the status and a plain-text message. */
export class PusherApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PusherApiError';
  }
}

/** Channels of the server library's `sendToUser` (`#server-to-user-{user id}`), accepted by triggers beside Pusher channel names. */
const SERVER_TO_USER = /^#server-to-user-[^\s]{1,200}$/;
/** Event names Pusher reserves for its protocol (a client would take them for protocol messages). */
const INFO_ATTRIBUTES: ReadonlySet<string> = new Set(['user_count', 'subscription_count']);
const SOURCE: PublicationSource = 'http';

interface Signed {
  app: PusherApp;
  query: QueryParam[];
}

/** The app and query of each request that passed the signature check. */
const signedRequests = new WeakMap<FastifyRequest, Signed>();

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function param(query: readonly QueryParam[], key: string): string | undefined {
  for (const entry of query) if (entry.key === key) return entry.value;
  return undefined;
}

/** The `info` attributes asked (`user_count,subscription_count`), checked against those Herald answers. */
function infoAttributes(info: unknown): Set<string> {
  if (info === undefined || info === null || info === '') return new Set();
  if (typeof info !== 'string') throw new PusherApiError(400, 'info must be a comma-separated string of attributes');
  const attributes = new Set(info.split(',').map((part) => part.trim()).filter((part) => part !== ''));
  for (const attribute of attributes) {
    if (!INFO_ATTRIBUTES.has(attribute)) throw new PusherApiError(400, `Unknown info attribute ${JSON.stringify(attribute)}: user_count and subscription_count are supported`);
  }
  return attributes;
}

function checkChannel(channel: unknown, allowServerToUser: boolean): string {
  if (typeof channel === 'string' && (PUSHER_CHANNEL.test(channel) || (allowServerToUser && SERVER_TO_USER.test(channel)))) return channel;
  throw new PusherApiError(400, `Invalid channel name ${JSON.stringify(channel)}: 1 to 164 letters, digits and _ - = @ , . ;`);
}

const isPresence = (channel: string): boolean => channel.startsWith('presence-');

/** One event of a trigger or a batch, checked. */
interface CheckedEvent {
  name: string;
  data: string;
  channels: string[];
  socketId: string | undefined;
  info: Set<string>;
}

/** Checks an event's fields (Pusher's rules and the app's limits); `where` prefixes messages (`batch[2]: `). */
function checkEvent(app: PusherApp, event: Record<string, unknown>, channels: string[], where: string): CheckedEvent {
  const { name, data } = event;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new PusherApiError(400, `${where}name must be a string of 1 to 200 characters`);
  if (RESERVED_EVENT.test(name)) throw new PusherApiError(400, `${where}event names starting with pusher: or pusher_internal: are reserved`);
  if (typeof data !== 'string') throw new PusherApiError(400, `${where}data must be a string (the event's data, typically JSON text)`);
  const bytes = Buffer.byteLength(data);
  if (bytes > app.maxEventBytes) throw new PusherApiError(413, `${where}Payload too large: the event's data is ${bytes} bytes, over the limit of ${app.maxEventBytes}`);
  const socketId = event.socket_id;
  if (socketId !== undefined && socketId !== null && (typeof socketId !== 'string' || socketId.length === 0)) throw new PusherApiError(400, `${where}socket_id must be a connection id`);
  return { name, data, channels, socketId: (socketId as string | null | undefined) ?? undefined, info: infoAttributes(event.info) };
}

/** The JSON object of a POST's body; 400 for anything else. */
function jsonObject(request: FastifyRequest): Record<string, unknown> {
  const body = typeof request.body === 'string' ? request.body : '';
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new PusherApiError(400, 'The body must be a JSON object');
  }
  if (!isObject(value)) throw new PusherApiError(400, 'The body must be a JSON object');
  return value;
}

/** A Herald error of the publication path as the status and text the server libraries expect. */
function fromHerald(err: HeraldError): PusherApiError {
  return new PusherApiError(HTTP_STATUS[err.code], err.message);
}

/**
 * Pusher Channels' HTTP API (docs/pusher.md, "HTTP API"), under `/apps`,
 * registered by the composition root when `pusher.enabled`: trigger an
 * event (`POST /apps/{id}/events`) on one or many channels, batches
 * (`POST /apps/{id}/batch_events`), the channel list (`GET
 * /apps/{id}/channels`), a channel's info (`GET
 * /apps/{id}/channels/{channel}`), a presence channel's users (`GET
 * /apps/{id}/channels/{channel}/users`) and a user's connections ended
 * (`POST /apps/{id}/users/{user id}/terminate_connections`).
 *
 * Every request is signed the Pusher way (signature.ts) with the secret of
 * the app its path names; Herald's API keys do not apply to these routes.
 * Answers are Pusher's: JSON on success, a plain-text message with the
 * status on refusal (404 unknown app or path, 401 signing problems, 400 bad
 * requests, 413 an event's data over the app's `maxEventBytes` or a body over
 * `limits.maxHttpBodyBytes`, 503 when the broker cannot take the
 * publication), never Herald's JSON error shape. Channel `c` of an app is the
 * Herald topic `topicPrefix + c` (apps.ts): an app sees and reaches only its
 * own channels.
 */
export function registerPusherHttpApi(app: FastifyInstance, host: PusherHttpHost): void {
  app.register(
    async (scope) => {
      // The signature covers the body's exact bytes: every body is read as text, whatever its type.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
      scope.setErrorHandler((err: FastifyError | HeraldError | PusherApiError, request, reply) => answerError(err, request, reply, host.log));
      scope.setNotFoundHandler((request, reply) => {
        reply.status(404).type('text/plain; charset=utf-8').send(`Not found: ${request.method} ${request.url.split('?')[0]}`);
      });
      scope.addHook('preHandler', async (request) => {
        // Fastify runs the scope's hooks for its not-found handler too: a path no route has is a 404 that names it, not an unknown app.
        if (request.is404) return;
        signedRequests.set(request, authenticate(request, host));
      });
      routes(scope, host);
    },
    { prefix: '/apps' },
  );
}

/** The app the path names, with the request's signature checked against its key and secret. */
function authenticate(request: FastifyRequest, host: PusherHttpHost): Signed {
  const appId = (request.params as { appId?: string }).appId ?? '';
  const app = host.apps.withId(appId);
  if (!app) throw new PusherApiError(404, `Unknown app ${JSON.stringify(appId)}`);
  const url = request.url;
  const mark = url.indexOf('?');
  const rawPath = mark === -1 ? url : url.slice(0, mark);
  const query = parseQuery(mark === -1 ? '' : url.slice(mark + 1));
  const body = typeof request.body === 'string' ? request.body : '';
  const problem = signatureProblem({ method: request.method, rawPath, query, body }, app, host.timestampWindow, host.now?.() ?? Date.now(), (key) => host.apps.withKey(key) !== undefined);
  if (problem) {
    request.log.debug({ app: app.id, status: problem.status, problem: problem.message }, 'pusher API request refused');
    throw new PusherApiError(problem.status, problem.message);
  }
  return { app, query };
}

function signed(request: FastifyRequest): Signed {
  const found = signedRequests.get(request);
  if (!found) throw new PusherApiError(401, 'The request is not signed');
  return found;
}

function answerError(err: FastifyError | HeraldError | PusherApiError, request: FastifyRequest, reply: FastifyReply, log: Logger): FastifyReply {
  let status: number;
  let message: string;
  if (err instanceof PusherApiError) {
    ({ status, message } = err);
  } else if (err instanceof HeraldError) {
    ({ status, message } = fromHerald(err));
  } else if (err.statusCode === 413) {
    status = 413;
    message = 'Request body too large';
  } else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    status = err.statusCode;
    message = err.message;
  } else {
    log.error({ err, url: request.url.split('?')[0] }, 'pusher API request failed');
    status = 500;
    message = 'Internal error';
  }
  return reply.status(status).type('text/plain; charset=utf-8').send(message);
}

function routes(scope: FastifyInstance, host: PusherHttpHost): void {
  /** Subscription and user counts of `channels` of `app`, as a trigger's or a channel query's `info` asks. */
  async function channelInfo(app: PusherApp, channels: readonly string[], info: ReadonlySet<string>, reply: FastifyReply): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>(channels.map((channel) => [channel, {}]));
    if (info.has('subscription_count')) {
      const { counts, missing } = await host.census({ topics: channels.map((channel) => PusherApps.topicOf(app, channel)) });
      for (const channel of channels) out.get(channel)!.subscription_count = counts.get(PusherApps.topicOf(app, channel)) ?? 0;
      partial(reply, missing);
    }
    if (info.has('user_count')) {
      for (const channel of channels) if (isPresence(channel)) out.get(channel)!.user_count = host.presenceUids(PusherApps.topicOf(app, channel))?.length ?? 0;
    }
    return out;
  }

  /** Publishes through Herald's path; its refusals become Pusher answers. */
  async function publishing<T>(publish: () => Promise<T>): Promise<T> {
    try {
      return await publish();
    } catch (err) {
      throw err instanceof HeraldError ? fromHerald(err) : err;
    }
  }

  scope.post('/:appId/events', async (request, reply) => {
    const { app } = signed(request);
    const body = jsonObject(request);
    if (body.channels !== undefined && body.channel !== undefined) throw new PusherApiError(400, 'Give channel or channels, not both');
    const list = body.channels !== undefined ? body.channels : body.channel !== undefined ? [body.channel] : undefined;
    if (!Array.isArray(list) || list.length === 0) throw new PusherApiError(400, 'channels must be a non-empty array of channel names (or channel one name)');
    if (list.length > app.maxEventChannels) throw new PusherApiError(400, `Too many channels: ${list.length}, the limit is ${app.maxEventChannels}`);
    const channels = [...new Set(list.map((channel) => checkChannel(channel, true)))];
    const event = checkEvent(app, body, channels, '');
    const options: PublishOptions = { event: event.name, ...(event.socketId !== undefined ? { exclude: event.socketId } : {}) };
    await publishing(() => host.broadcast(channels.map((channel) => PusherApps.topicOf(app, channel)), event.data, SOURCE, options));
    if (event.info.size === 0) return {};
    return { channels: Object.fromEntries(await channelInfo(app, channels, event.info, reply)) };
  });

  scope.post('/:appId/batch_events', async (request, reply) => {
    const { app } = signed(request);
    const body = jsonObject(request);
    const batch = body.batch;
    if (!Array.isArray(batch) || batch.length === 0) throw new PusherApiError(400, 'batch must be a non-empty array of events');
    if (batch.length > app.maxBatchEvents) throw new PusherApiError(400, `Batch too large: ${batch.length} events, the limit is ${app.maxBatchEvents}`);
    const events = batch.map((item, index) => {
      const where = `batch[${index}]: `;
      if (!isObject(item)) throw new PusherApiError(400, `${where}an event is a JSON object`);
      let channel: string;
      try {
        channel = checkChannel(item.channel, true);
      } catch (err) {
        throw new PusherApiError(400, `${where}${(err as Error).message}`);
      }
      return checkEvent(app, item, [channel], where);
    });
    const items: BatchItem[] = events.map((event, index) => ({
      topic: PusherApps.topicOf(app, event.channels[0]!),
      message: event.data,
      event: event.name,
      label: `batch[${index}]`,
      ...(event.socketId !== undefined ? { exclude: event.socketId } : {}),
    }));
    await publishing(() => host.publishMany(items, SOURCE));
    if (events.every((event) => event.info.size === 0)) return {};
    const answers = await Promise.all(events.map(async (event) => (event.info.size === 0 ? {} : (await channelInfo(app, event.channels, event.info, reply)).get(event.channels[0]!)!)));
    return { batch: answers };
  });

  scope.get('/:appId/channels', async (request, reply) => {
    const { app, query } = signed(request);
    const filter = param(query, 'filter_by_prefix') ?? '';
    const info = infoAttributes(param(query, 'info'));
    if (info.has('user_count') && !filter.startsWith('presence-')) throw new PusherApiError(400, 'info=user_count is only available with filter_by_prefix=presence-');
    const { counts, missing } = await host.census({ prefix: PusherApps.topicOf(app, filter) });
    const channels: Record<string, Record<string, number>> = {};
    for (const [topic, count] of counts) {
      const channel = PusherApps.channelOf(app, topic);
      if (channel === null || !PUSHER_CHANNEL.test(channel)) continue;
      const attributes: Record<string, number> = {};
      if (info.has('user_count')) attributes.user_count = host.presenceUids(topic)?.length ?? 0;
      if (info.has('subscription_count')) attributes.subscription_count = count;
      channels[channel] = attributes;
    }
    partial(reply, missing);
    return { channels };
  });

  scope.get('/:appId/channels/:channel', async (request, reply) => {
    const { app, query } = signed(request);
    const channel = checkChannel((request.params as { channel: string }).channel, false);
    const info = infoAttributes(param(query, 'info'));
    if (info.has('user_count') && !isPresence(channel)) throw new PusherApiError(400, 'info=user_count is only available for presence channels');
    const topic = PusherApps.topicOf(app, channel);
    const { counts, missing } = await host.census({ topics: [topic] });
    const count = counts.get(topic) ?? 0;
    const answer: Record<string, unknown> = { occupied: count > 0 };
    if (info.has('user_count')) answer.user_count = host.presenceUids(topic)?.length ?? 0;
    if (info.has('subscription_count')) answer.subscription_count = count;
    partial(reply, missing);
    return answer;
  });

  scope.get('/:appId/channels/:channel/users', async (request) => {
    const { app } = signed(request);
    const channel = checkChannel((request.params as { channel: string }).channel, false);
    if (!isPresence(channel)) throw new PusherApiError(400, 'Users are only available for presence channels');
    const uids = host.presenceUids(PusherApps.topicOf(app, channel)) ?? [];
    return { users: uids.map((uid) => ({ id: PusherApps.userIdOf(app, uid) ?? uid })) };
  });

  scope.post('/:appId/users/:userId/terminate_connections', async (request) => {
    const { app } = signed(request);
    const userId = (request.params as { userId: string }).userId;
    if (userId.length === 0 || userId.length > 200) throw new PusherApiError(400, 'A user id is 1 to 200 characters');
    try {
      await host.disconnectUser(PusherApps.uidOf(app, userId), { reason: 'terminated by the server' });
    } catch (err) {
      throw err instanceof HeraldError ? fromHerald(err) : err;
    }
    return {};
  });
}

/** Names the nodes a census left out (they did not answer in time), in `X-Herald-Partial`. */
function partial(reply: FastifyReply, missing: readonly string[]): void {
  if (missing.length > 0) reply.header('x-herald-partial', missing.join(','));
}
