import { randomInt } from 'node:crypto';
import { CloseCode } from '@herald/protocol';
import { HeraldError } from '../../errors.js';
import type { FrameHandler, Session } from '../../hub/session.js';
import type { Policy, SubscribeOutcome } from '../../policy/policy.js';
import { PUSHER_CHANNEL, PusherApps, secretsOf, type PusherApp } from '../../pusher/apps.js';
import { toJson } from '../../util/json.js';
import { TokenBucket } from '../../util/token-bucket.js';
import type { PresenceInfo } from '../codec.js';
import { channelAuthString, userAuthString, verifyAuth } from './auth.js';
import { pusherError, pusherEvent, USER_ID_TAG } from './codec.js';

/**
 * Pusher's close codes (its protocol's ranges, as pusher-js acts on them,
 * src/core/connection/protocol/protocol.ts `getCloseAction`): 4000–4099 the
 * client does not reconnect, 4100–4199 it reconnects after a back-off,
 * 4200–4299 it reconnects at once.
 */
export const PusherCloseCode = {
  /** App key not in this cluster (no app with that key). */
  APP_NOT_FOUND: 4001,
  /** The app is over its connection quota (`maxConnections`). */
  OVER_QUOTA: 4004,
  /** Unauthorised: a bad `pusher:signin`, a revoked identity, disconnected by the server API (terminate_connections). */
  UNAUTHORIZED: 4009,
  /** Over capacity: reconnect later (a slow consumer, a per-user connection limit, an internal error). */
  OVER_CAPACITY: 4100,
  /** Generic reconnect now: the server is closing (drain, shutdown). */
  RECONNECT: 4200,
  /** No pong (nor anything else) in answer to the server's pings. */
  PONG_NOT_RECEIVED: 4201,
  /** Client event rejected over the rate limit (sent as `pusher:error`, the connection stays). */
  CLIENT_EVENT_RATE: 4301,
} as const;

/**
 * Herald's close codes (docs/protocol.md) as the Pusher code a Pusher client
 * understands; Pusher's own codes that Herald does not use (4004, 4009,
 * 4100–4399) pass as they are.
 */
export function pusherCloseCode(code: number): number {
  if (code === PusherCloseCode.OVER_QUOTA || code === PusherCloseCode.UNAUTHORIZED || (code >= 4100 && code < 4400)) return code;
  switch (code) {
    case CloseCode.GOING_AWAY:
    case CloseCode.SERVICE_RESTART:
    case CloseCode.RECONNECT:
      return PusherCloseCode.RECONNECT;
    case CloseCode.TOKEN_EXPIRED:
    case CloseCode.IDENTITY_REVOKED:
    case CloseCode.UNAUTHORIZED:
    case CloseCode.FORBIDDEN:
    case CloseCode.DISCONNECTED:
    case CloseCode.POLICY_VIOLATION:
      return PusherCloseCode.UNAUTHORIZED;
    default:
      return PusherCloseCode.OVER_CAPACITY;
  }
}

/** What the Pusher protocol needs from the services: subscriptions and publications go through the policy only. */
export interface PusherHost {
  readonly policy: Policy;
  /** Subscribe positions and, for a cache-mode topic, its latest publication (Recovery.subscribe). */
  recover(session: Session, topic: string, since: undefined, respond: (result: object | undefined, frames: Buffer[]) => void): void | Promise<void>;
  /** Resolves once the broker carries these topics here (TopicSubscriptions). */
  whenSubscribed(topics: readonly string[]): Promise<void> | undefined;
  /** Every presence entry of a topic across the cluster (PresenceTracker.entries). */
  presenceEntries(topic: string): Iterable<PresenceInfo>;
  /** Distinct uids present on a topic across the cluster. */
  presenceUsers(topic: string): number;
  /** Whether a topic is in cache mode (a history rule with `cache`). */
  isCached(topic: string): boolean;
  /** Gives the connection its uid (Hub.setUser): the server API on users and terminate_connections find it by it. */
  identify(session: Session, uid: string): void;
  closeSession(session: Session, code: number, reason: string): void;
  reportError(session: Session, err: unknown): void;
  /** Told of what Pusher's webhooks report and Herald's lifecycle events do not (client_event, cache_miss); optional. */
  readonly observer?: PusherObserver;
}

/** What the Pusher protocol reports for its app's webhooks (docs/pusher.md, "Webhooks"). */
export interface PusherObserver {
  /** A client event was published (after the policy took it): Pusher's `client_event` webhook. */
  clientEvent?(app: PusherApp, event: { channel: string; event: string; data: unknown; socketId: string; userId?: string }): void;
  /** A cache channel had no event for a new subscriber: Pusher's `cache_miss` webhook. */
  cacheMiss?(app: PusherApp, channel: string): void;
}

/** What a channel is, by its name's prefix. */
export type ChannelKind = 'public' | 'private' | 'encrypted' | 'presence' | 'user';

/** The channel a signed-in user's server-to-user events go to (`sendToUser`): `#server-to-user-{id}`. */
export const SERVER_TO_USER = '#server-to-user-';

export function channelKind(channel: string): ChannelKind {
  if (channel.startsWith(SERVER_TO_USER)) return 'user';
  if (channel.startsWith('private-encrypted-')) return 'encrypted';
  if (channel.startsWith('private-')) return 'private';
  if (channel.startsWith('presence-')) return 'presence';
  return 'public';
}

/** Whether a channel is a cache channel (`cache-`, `private-cache-`, `private-encrypted-cache-`, `presence-cache-`). */
export function isCacheChannel(channel: string): boolean {
  return /^(private-encrypted-|private-|presence-)?cache-/.test(channel);
}

/** Longest client event name (Pusher's limit). */
const MAX_EVENT_NAME = 200;

/** What one Pusher connection holds beyond its session. */
interface PusherConnection {
  /** The user it signed in as (`pusher:signin`), or undefined. */
  userId: string | undefined;
  /** Its client events' budget (`clientEventRate` a second, as a burst too); created at the first one. */
  clientEvents: TokenBucket | undefined;
}

/** Herald's refusal codes as the `type` pusher-js reports in a `pusher:subscription_error`. */
function subscriptionErrorOf(err: HeraldError): { type: string; status: number } {
  switch (err.code) {
    case 'forbidden':
    case 'unauthorized':
      return { type: 'AuthError', status: 403 };
    case 'rate_limited':
    case 'too_many_topics':
      return { type: 'LimitReached', status: 429 };
    case 'invalid_topic':
    case 'bad_request':
      return { type: 'InvalidChannel', status: 400 };
    default:
      return { type: 'ServerError', status: 503 };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Pusher socket ids (`{node}.{seq}`, which pusher-js and the server
 * libraries require to match /^\d+\.\d+$/): a random number drawn once per
 * process and a sequence, so that ids are unique across the cluster (two
 * processes draw the same number with odds of about one in a billion per pair).
 */
export class SocketIds {
  private readonly node = randomInt(1, 2 ** 31 - 1);
  private seq = 0;

  next(): string {
    return `${this.node}.${++this.seq}`;
  }
}

/**
 * One Pusher app's connections (`/app/{key}`, protocol 7): the commands of
 * the Pusher Channels protocol, through the policy. Public, private,
 * presence, encrypted, cache and server-to-user channels; channel
 * authorisations and sign-ins verified (HMAC-SHA256 with the app's secret,
 * constant-time); client events; pings. Every error is answered the way
 * pusher-js handles it (`pusher:error`, `pusher:subscription_error`) and
 * never disturbs another connection. The server's frames are encoded by the
 * shared Pusher codec (codec.ts).
 */
export class PusherHandler implements FrameHandler {
  readonly canLogIn = true;
  readonly deadPeerCode = PusherCloseCode.PONG_NOT_RECEIVED;
  private readonly connections = new WeakMap<Session, PusherConnection>();
  /** Connections closed by this protocol with a Pusher code (not to be mapped from Herald's). */
  private readonly ownCodes = new WeakSet<Session>();
  /** This app's open connections on this node. */
  private count = 0;

  constructor(
    readonly app: PusherApp,
    private readonly host: PusherHost,
  ) {}

  /** This app's connections on this node. */
  get connectionCount(): number {
    return this.count;
  }

  onOpened(session: Session): void {
    this.connections.set(session, { userId: undefined, clientEvents: undefined });
    this.count++;
    if (this.app.maxConnections > 0 && this.count > this.app.maxConnections) {
      return this.close(session, PusherCloseCode.OVER_QUOTA, `Application is over its connection quota (${this.app.maxConnections})`);
    }
    session.sendText(pusherEvent('pusher:connection_established', { socket_id: session.id, activity_timeout: this.app.activityTimeout }));
  }

  onClose(session: Session): void {
    if (this.connections.delete(session)) this.count--;
  }

  onServerClose(session: Session, code: number, reason: string): number {
    const pusherCode = this.ownCodes.has(session) ? code : pusherCloseCode(code);
    session.sendText(pusherError(pusherCode, reason));
    return pusherCode;
  }

  refuse(session: Session, refusal: HeraldError): void {
    session.sendText(pusherError(null, refusal.message));
  }

  onFrame(session: Session, data: Buffer, isBinary: boolean): void | Promise<void> {
    if (isBinary) return this.error(session, 'binary frames are not accepted: send JSON text frames');
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return this.error(session, 'frame is not valid JSON');
    }
    if (!isObject(message) || typeof message.event !== 'string') return this.error(session, 'a frame must be a JSON object with an "event" string');
    const event = message.event;
    if (event.startsWith('client-')) return this.clientEvent(session, event, message);
    let payload = message.data;
    if (typeof payload === 'string') {
      try {
        payload = JSON.parse(payload);
      } catch {
        // Left as the string: the command says what it needs.
      }
    }
    switch (event) {
      case 'pusher:ping':
        session.sendText(pusherEvent('pusher:pong', {}));
        return;
      case 'pusher:pong':
        return;
      case 'pusher:subscribe':
        return this.subscribe(session, payload);
      case 'pusher:unsubscribe':
        return this.unsubscribe(session, payload);
      case 'pusher:signin':
        return this.signin(session, payload);
      default:
        return this.error(session, `unknown event ${JSON.stringify(event.slice(0, MAX_EVENT_NAME))}`);
    }
  }

  // ---- commands ------------------------------------------------------------

  private subscribe(session: Session, data: unknown): void | Promise<void> {
    if (!isObject(data) || typeof data.channel !== 'string') return this.error(session, 'pusher:subscribe needs data.channel');
    const channel = data.channel;
    if (!validChannel(channel)) return this.subscriptionError(session, channel, 'InvalidChannel', `invalid channel name ${JSON.stringify(channel.slice(0, 200))}`, 400);
    const topic = PusherApps.topicOf(this.app, channel);
    const kind = channelKind(channel);
    const { key } = this.app;
    const secrets = secretsOf(this.app);
    if (kind === 'private' || kind === 'encrypted') {
      if (!verifyAuth(data.auth, key, secrets, channelAuthString(session.id, channel))) return this.subscriptionError(session, channel, 'AuthError', 'Invalid signature: the channel authorisation does not match', 401);
    } else if (kind === 'presence') {
      const channelData = data.channel_data;
      if (typeof channelData !== 'string') return this.subscriptionError(session, channel, 'AuthError', 'a presence channel needs channel_data', 401);
      if (!verifyAuth(data.auth, key, secrets, channelAuthString(session.id, channel, channelData))) return this.subscriptionError(session, channel, 'AuthError', 'Invalid signature: the channel authorisation does not match', 401);
      const member = parseMember(channelData);
      if (!member) return this.subscriptionError(session, channel, 'AuthError', 'channel_data must be JSON with a user_id', 400);
      const infoBytes = Buffer.byteLength(JSON.stringify(member.userInfo) ?? '');
      if (infoBytes > this.app.maxPresenceInfoBytes) return this.subscriptionError(session, channel, 'LimitReached', `user_info is ${infoBytes} bytes, over the limit of ${this.app.maxPresenceInfoBytes}`, 413);
      if (!session.topics.has(topic)) {
        const uid = PusherApps.uidOf(this.app, member.userId);
        if (!this.isMember(topic, uid) && this.host.presenceUsers(topic) >= this.app.maxPresenceMembers) {
          return this.subscriptionError(session, channel, 'LimitReached', `presence channel is full: at most ${this.app.maxPresenceMembers} members`, 403);
        }
        session.setTopicUid(topic, uid);
        session.setTopicInfo(topic, member.userInfo);
      }
    } else if (kind === 'user') {
      const signedIn = this.connections.get(session)?.userId;
      if (signedIn === undefined || channel !== SERVER_TO_USER + signedIn) return this.subscriptionError(session, channel, 'AuthError', `${channel} is the channel of another user: sign in as that user first`, 403);
    }
    const outcome = this.host.policy.subscribe(session, [topic], kind === 'public' ? {} : { grants: [topic] });
    if (outcome instanceof Promise) return outcome.then((settled) => this.subscribed(session, channel, topic, kind, settled));
    return this.subscribed(session, channel, topic, kind, outcome);
  }

  private subscribed(session: Session, channel: string, topic: string, kind: ChannelKind, outcome: SubscribeOutcome): void | Promise<void> {
    if (outcome.refused) {
      if (!session.topics.has(topic)) session.dropTopicInfo(topic);
      const { type, status } = subscriptionErrorOf(outcome.refused);
      return this.subscriptionError(session, channel, type, outcome.refused.message, status);
    }
    const succeeded = (): void => {
      if (session.state !== 'open' || !session.topics.has(topic)) return;
      session.sendText(pusherEvent('pusher_internal:subscription_succeeded', kind === 'presence' ? { presence: this.members(topic) } : {}, channel));
    };
    if (this.host.isCached(topic)) {
      // The latest event follows the reply, or pusher:cache_miss says there is none.
      return this.host.recover(session, topic, undefined, (_result, frames) => {
        succeeded();
        if (frames.length === 0) {
          session.sendText(`{"event":"pusher:cache_miss","channel":${toJson(channel)}}`);
          this.host.observer?.cacheMiss?.(this.app, channel);
        }
        for (const frame of frames) session.write(frame);
      });
    }
    const ready = this.host.whenSubscribed([topic]);
    if (ready) return ready.then(succeeded);
    succeeded();
  }

  private unsubscribe(session: Session, data: unknown): void {
    if (!isObject(data) || typeof data.channel !== 'string') return this.error(session, 'pusher:unsubscribe needs data.channel');
    // Not subscribed: nothing to do (Pusher does not answer an unsubscribe).
    this.host.policy.unsubscribe(session, PusherApps.topicOf(this.app, data.channel));
  }

  private signin(session: Session, data: unknown): void {
    const connection = this.connections.get(session);
    if (!connection) return;
    if (!isObject(data) || typeof data.user_data !== 'string') return this.close(session, PusherCloseCode.UNAUTHORIZED, 'pusher:signin needs data.auth and data.user_data');
    const userData = data.user_data;
    if (!verifyAuth(data.auth, this.app.key, secretsOf(this.app), userAuthString(session.id, userData))) return this.close(session, PusherCloseCode.UNAUTHORIZED, 'Invalid signature: the user authentication does not match');
    let id: unknown;
    try {
      id = (JSON.parse(userData) as { id?: unknown }).id;
    } catch {
      id = undefined;
    }
    if (typeof id !== 'string' || id === '') return this.close(session, PusherCloseCode.UNAUTHORIZED, 'user_data must be JSON with an "id" string');
    if (connection.userId !== undefined && connection.userId !== id) return this.close(session, PusherCloseCode.UNAUTHORIZED, 'already signed in as another user');
    connection.userId = id;
    this.host.identify(session, PusherApps.uidOf(this.app, id));
    session.sendText(pusherEvent('pusher:signin_success', { user_data: userData }));
  }

  private clientEvent(session: Session, event: string, message: Record<string, unknown>): void | Promise<void> {
    const { app } = this;
    if (!app.clientEvents) return this.error(session, 'To send client events, the app must allow them (pusher.apps[].clientEvents)');
    const channel = message.channel;
    if (typeof channel !== 'string') return this.error(session, 'a client event needs a "channel"');
    const kind = channelKind(channel);
    if (kind !== 'private' && kind !== 'presence') return this.error(session, `Client events are only accepted on private and presence channels, not on ${channel}`);
    const topic = PusherApps.topicOf(app, channel);
    if (!session.topics.has(topic)) return this.error(session, `Client event rejected: not subscribed to ${channel}`);
    if (event.length > MAX_EVENT_NAME) return this.error(session, `Client event rejected: event names are at most ${MAX_EVENT_NAME} characters`);
    const data = message.data ?? null;
    let size: number;
    try {
      // A string counts as its own bytes (as the HTTP API counts a trigger's data), anything else as its JSON text.
      size = Buffer.byteLength(typeof data === 'string' ? data : (toJson(data) ?? ''));
    } catch {
      return this.error(session, 'Client event rejected: data is not JSON');
    }
    if (size > app.maxEventBytes) return this.error(session, `Client event rejected: data is ${size} bytes, over the limit of ${app.maxEventBytes}`);
    const connection = this.connections.get(session);
    if (!connection) return;
    connection.clientEvents ??= new TokenBucket(app.clientEventRate, app.clientEventRate);
    if (!connection.clientEvents.take()) {
      session.sendText(pusherError(PusherCloseCode.CLIENT_EVENT_RATE, `Client event rejected: over ${app.clientEventRate} per second`));
      return;
    }
    // On a presence channel, the sender's member id goes with the event (Pusher's user_id).
    const uid = kind === 'presence' ? session.uidFor(topic) : undefined;
    const userId = uid === undefined ? undefined : PusherApps.userIdOf(app, uid);
    const tags = userId ? { [USER_ID_TAG]: userId } : undefined;
    return this.host.policy.publish(session, topic, data, { grants: [topic], exclude: session.id, event, ...(tags ? { tags } : {}) }).then(
      () => this.host.observer?.clientEvent?.(app, { channel, event, data, socketId: session.id, ...(userId ? { userId } : {}) }),
      (err: unknown) => this.error(session, `Client event rejected: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  // ---- helpers -------------------------------------------------------------

  /** A presence channel's members across the cluster, as `pusher_internal:subscription_succeeded` carries them: one per user. */
  private members(topic: string): { ids: string[]; hash: Record<string, unknown>; count: number } {
    const hash: Record<string, unknown> = {};
    const ids: string[] = [];
    for (const entry of this.host.presenceEntries(topic)) {
      if (entry.uid === undefined) continue;
      const id = PusherApps.userIdOf(this.app, entry.uid) ?? entry.uid;
      if (Object.hasOwn(hash, id)) continue;
      hash[id] = entry.info ?? null;
      ids.push(id);
    }
    return { ids, hash, count: ids.length };
  }

  private isMember(topic: string, uid: string): boolean {
    for (const entry of this.host.presenceEntries(topic)) if (entry.uid === uid) return true;
    return false;
  }

  private error(session: Session, message: string): void {
    session.sendText(pusherError(null, message));
  }

  private subscriptionError(session: Session, channel: string, type: string, error: string, status: number): void {
    session.sendText(pusherEvent('pusher:subscription_error', { type, error, status }, channel));
  }

  /** Closes with a Pusher code: `pusher:error` with it, then the close frame with it. */
  private close(session: Session, code: number, reason: string): void {
    this.ownCodes.add(session);
    this.host.closeSession(session, code, reason);
  }
}

/** A channel name Pusher accepts: its rule (`PUSHER_CHANNEL`), or a server-to-user channel. */
export function validChannel(channel: string): boolean {
  if (channel.startsWith(SERVER_TO_USER)) return channel.length > SERVER_TO_USER.length && channel.length <= 200 && !/[\s*>|]/.test(channel);
  return PUSHER_CHANNEL.test(channel);
}

/** A presence channel's `channel_data`: `{"user_id": string|number, "user_info"?: any}`. */
function parseMember(channelData: string): { userId: string; userInfo: unknown } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(channelData);
  } catch {
    return null;
  }
  if (!isObject(parsed)) return null;
  const id = parsed.user_id;
  const userId = typeof id === 'number' && Number.isFinite(id) ? String(id) : id;
  if (typeof userId !== 'string' || userId === '' || userId.length > 128) return null;
  return { userId, userInfo: parsed.user_info ?? null };
}

/**
 * A connection to `/app/{key}` for a key no app has: told `pusher:error`
 * 4001 ("App key ... not in this cluster", as Pusher says it) as soon as it
 * opens, then closed with 4001, which pusher-js does not retry.
 */
export class UnknownAppHandler implements FrameHandler {
  readonly canLogIn = true;

  constructor(
    private readonly key: string,
    private readonly closeSession: (session: Session, code: number, reason: string) => void,
  ) {}

  onOpened(session: Session): void {
    this.closeSession(session, PusherCloseCode.APP_NOT_FOUND, `App key ${this.key.slice(0, 64)} not in this cluster. Did you forget to specify the cluster?`);
  }

  onServerClose(session: Session, code: number, reason: string): number {
    session.sendText(pusherError(PusherCloseCode.APP_NOT_FOUND, reason));
    return PusherCloseCode.APP_NOT_FOUND;
  }

  onFrame(): void {}

  refuse(): void {}
}
