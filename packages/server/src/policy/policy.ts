import { encodeLhttp } from '@herald/protocol';
import type { Permissions } from '../auth/permissions.js';
import type { LhttpPublication, PublishResult } from '../broker/broker.js';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Session } from '../hub/session.js';
import type { Proxies, SubscribeVerdict } from '../proxy/proxies.js';
import { toJson } from '../util/json.js';
import { TokenBucket } from '../util/token-bucket.js';
import type { TagFilter } from '../util/filter.js';

/** What the policy needs from the gateway. */
export interface PolicyHost {
  readonly config: HeraldConfig;
  readonly hub: Hub;
  readonly permissions: Permissions;
  /** The backend proxies (docs/backend.md): subscribe and publish on the topics they cover are asked there first. */
  readonly proxies: Proxies;
  /** Herald's topic rule plus the broker's (its namespace and reserved names). */
  topicProblem(topic: string): string | null;
  publish(topic: string, message: unknown, source: 'client', options?: { tags?: Readonly<Record<string, string>>; event?: string; exclude?: string }): Promise<PublishResult>;
  publishLhttp(topic: string, message: LhttpPublication, body: string, source: 'client'): Promise<PublishResult>;
}


/** Commands a connection without identity may send when `auth.anonymous` is off. */
const BEFORE_LOGIN = new Set(['login', 'ping', 'pong']);

/** What a subscribe came to: the refusal (nothing subscribed), or every topic subscribed. */
export interface SubscribeOutcome {
  /** Why nothing was subscribed; null when every topic is. */
  readonly refused: HeraldError | null;
  /** Payloads a subscribe proxy asked to deliver before anything else, by topic (only the topics that got one); null: none. */
  readonly data: ReadonlyMap<string, unknown> | null;
}

/** Options of one subscribe beyond its topics. */
export interface SubscribeOptions {
  /** Topics (or `prefix*`) granted for this command alone (a verified subscribe token). */
  readonly grants?: readonly string[];
  /** The subscribe token behind `grants`, kept for the topics only it allows (see `rememberGrant`). */
  readonly granted?: { grant: string; uid: string | undefined; expiresAt: number | undefined };
  /** What the client sent with the subscribe (JSON `data`), forwarded to the subscribe proxy. */
  readonly data?: unknown;
  /**
   * Called with a subscribe proxy's payload for a topic just before the
   * connection is subscribed to it, so that it comes before any publication
   * (protocols with no reply to carry it: LHTTP, raw). Without it, the
   * payloads are in the outcome's `data`.
   */
  readonly deliverFirst?: (topic: string, data: unknown) => void;
  /**
   * The subscription's filter on publication tags, compiled (util/filter.ts),
   * for every topic of the subscribe. When the key is present (even
   * undefined), a topic the connection is already subscribed to gets it too:
   * a subscribe sets the subscription's filter to the one it carries.
   */
  readonly filter?: TagFilter | undefined;
  /** Filters by topic (SSE's `filter.<topic>`), winning over `filter` for their topics. */
  readonly filters?: ReadonlyMap<string, TagFilter>;
}

/** The filter a subscribe gives `topic`. */
function filterFor(options: SubscribeOptions, topic: string): TagFilter | undefined {
  return options.filters?.get(topic) ?? options.filter;
}

/** What a client's publish may carry beyond its message (the JSON protocol's `tags` and `event`; a Pusher client event's grant and exclusion). */
export interface ClientPublishOptions {
  /** Its tags (`Publication.tags`). */
  readonly tags?: Readonly<Record<string, string>>;
  /** Topics (or `prefix*`) the protocol grants for this publication alone (a Pusher client event on a channel it authorised). */
  readonly grants?: readonly string[];
  /** A connection id that must not receive it (`Publication.exclude`: its sender). */
  readonly exclude?: string;
  /** Its event name (`Publication.event`). */
  readonly event?: string;
}

const SUBSCRIBED: SubscribeOutcome = Object.freeze({ refused: null, data: null });

function refusedWith(refused: HeraldError): SubscribeOutcome {
  return { refused, data: null };
}

/**
 * The one admission layer between every client protocol and the hub. Every
 * protocol (JSON, LHTTP, raw endpoints; the SSE, HTTP-streaming and
 * Pusher-compatible endpoints to come) turns its frames into these calls, and
 * nothing else: a protocol is given the policy, never the hub, so it cannot
 * subscribe or publish around it.
 *
 * - `admitFrame` runs for every inbound frame, whatever the protocol, before
 *   the protocol sees it (the Session calls it): the command rate limit
 *   (`limits.commandsPerSecond` / `commandBurst`). `admitCommand` charges each
 *   further command carried in the same frame (a JSON batch, each further
 *   topic of an LHTTP `publish` header).
 * - `identityProblem`: with `auth.anonymous: false`, a connection without
 *   identity may only log in (and ping).
 * - `subscribe` / `unsubscribe`: topic rule and broker namespace, topic
 *   permissions (user and private topics, grants, subscribe tokens), the
 *   per-connection topic limit, and the subscription churn limit
 *   (`limits.subscriptionsPerSecond` / `subscriptionBurst`), which also bounds
 *   the presence join/leave events one connection can cause. All or nothing.
 * - `publish` / `publishLhttp`: topic rule, `clientPublish` and grants.
 * - The backend proxies (docs/backend.md): on a topic a subscribe or publish
 *   proxy covers, the backend is asked first; it refuses, allows (Herald's
 *   permission rules are then not asked; every limit still is), or leaves
 *   it to those rules, and may replace a publication's message. A failed
 *   call (timeout, unreachable, bad status, malformed answer) refuses with
 *   `unavailable`, after at most the proxy's timeout.
 * - `readProblem`: reading a topic's history or presence needs the right to
 *   subscribe to it.
 *
 * Refusals are `HeraldError`s (code and message); each protocol answers them
 * in its own terms. None of this runs per delivery: only per inbound command.
 */
export class Policy {
  private readonly limits: HeraldConfig['limits'];
  /** One refusal for every command over the rate (a flood must not cost an Error per frame). */
  private readonly overRate: HeraldError;

  constructor(private readonly host: PolicyHost) {
    this.limits = host.config.limits;
    this.overRate = new HeraldError('rate_limited', `over ${this.limits.commandsPerSecond} commands per second`);
  }

  /** Gives a new connection its budgets (called once, when it is accepted). */
  attach(session: Session): void {
    session.setBuckets(
      new TokenBucket(this.limits.commandsPerSecond, this.limits.commandBurst),
      new TokenBucket(this.limits.subscriptionsPerSecond, this.limits.subscriptionBurst),
    );
  }

  /** Charges one inbound frame (one command) against the connection's rate; the refusal, or null. */
  admitFrame(session: Session): HeraldError | null {
    return session.takeCommand() ? null : this.overRate;
  }

  /** Charges one more command of a frame that carries several (a JSON batch, an LHTTP `publish` header naming several topics). */
  admitCommand(session: Session): HeraldError | null {
    return this.admitFrame(session);
  }

  /** With `auth.anonymous: false`, a connection that has not logged in may only log in and ping. */
  identityProblem(session: Session, action: string): HeraldError | null {
    if (session.uid !== undefined || this.host.config.auth.anonymous || BEFORE_LOGIN.has(action)) return null;
    return new HeraldError('unauthorized', 'log in first: {"action":"login","token":...}');
  }

  /** Why a topic name cannot be used (Herald's rule and the broker's), as an `invalid_topic` refusal. */
  topicProblem(topic: string): HeraldError | null {
    const problem = this.host.topicProblem(topic);
    return problem ? new HeraldError('invalid_topic', problem) : null;
  }

  /**
   * Subscribes the connection to every topic, or to none and says why.
   * Checks, in order: identity, topic names, permissions of the topics no
   * subscribe proxy covers, the topic limit, the churn limit; then asks the
   * subscribe proxies of the other new topics (at once, in parallel), and
   * for each the backend's verdict stands: refused (nothing is subscribed),
   * allowed, or left to the permission rules. Synchronous unless a proxy is
   * asked; a refused subscribe still counts against the churn limit.
   */
  subscribe(session: Session, topics: readonly string[], options: SubscribeOptions = {}): SubscribeOutcome | Promise<SubscribeOutcome> {
    const grants = options.grants ?? [];
    const refused = this.identityProblem(session, 'subscribe');
    if (refused) return refusedWith(refused);
    let asked: Array<{ topic: string; endpoint: NonNullable<ReturnType<Proxies['subscribeRule']>> }> | null = null;
    for (const topic of topics) {
      const invalid = this.topicProblem(topic);
      if (invalid) return refusedWith(invalid);
      // A sealed topic (the lifecycle events topic) is never left to a subscribe proxy: only an exact grant opens it.
      const endpoint = session.topics.has(topic) || this.host.permissions.sealedProblem(topic) ? undefined : this.host.proxies.subscribeRule(topic);
      if (endpoint) {
        if (!asked?.some((question) => question.topic === topic)) (asked ??= []).push({ topic, endpoint });
        continue;
      }
      const forbidden = this.host.permissions.subscribeProblem(session, topic, grants);
      if (forbidden) return refusedWith(new HeraldError('forbidden', forbidden));
    }
    const fresh = new Set(topics.filter((topic) => !session.topics.has(topic)));
    if (fresh.size === 0) {
      this.refilter(session, topics, fresh, options);
      if (options.granted) this.rememberGrant(session, topics, options.granted);
      return SUBSCRIBED;
    }
    const tooMany = this.topicLimitProblem(session, fresh.size);
    if (tooMany) return refusedWith(tooMany);
    if (!session.takeSubscriptions(fresh.size)) {
      return refusedWith(new HeraldError('rate_limited', `over ${this.limits.subscriptionsPerSecond} new subscriptions per second`));
    }
    if (asked === null) {
      this.refilter(session, topics, fresh, options);
      for (const topic of fresh) this.host.hub.subscribe(session, topic, filterFor(options, topic));
      if (options.granted) this.rememberGrant(session, topics, options.granted);
      return SUBSCRIBED;
    }
    const questions = asked;
    const answers = questions.map(({ topic, endpoint }) => this.host.proxies.subscribe(session, endpoint, topic, options.data));
    return Promise.all(answers).then(
      (verdicts) => this.subscribeAsked(session, topics, options, new Map(questions.map(({ topic }, i) => [topic, verdicts[i]!]))),
      (err: unknown) => refusedWith(err instanceof HeraldError ? err : new HeraldError('internal', 'subscribe proxy failed', { cause: err })),
    );
  }

  /** The rest of a subscribe once its proxies answered (none refused): the topics left to the rules, then all of them. */
  private subscribeAsked(session: Session, topics: readonly string[], options: SubscribeOptions, verdicts: Map<string, SubscribeVerdict>): SubscribeOutcome {
    if (session.state === 'closing' || session.state === 'closed') return refusedWith(new HeraldError('unavailable', 'connection is closing'));
    for (const [topic, verdict] of verdicts) {
      if (verdict.allowed) continue;
      const forbidden = this.host.permissions.subscribeProblem(session, topic, options.grants ?? []);
      if (forbidden) return refusedWith(new HeraldError('forbidden', forbidden));
    }
    // Commands are handled one at a time, but the server may have subscribed the connection meanwhile.
    const fresh = topics.filter((topic) => !session.topics.has(topic));
    const tooMany = this.topicLimitProblem(session, new Set(fresh).size);
    if (tooMany) return refusedWith(tooMany);
    let data: Map<string, unknown> | null = null;
    this.refilter(session, topics, new Set(fresh), options);
    for (const topic of fresh) {
      const verdict = verdicts.get(topic);
      if (verdict?.info !== undefined) session.setTopicInfo(topic, verdict.info);
      if (verdict?.data !== undefined) {
        if (options.deliverFirst) options.deliverFirst(topic, verdict.data);
        else (data ??= new Map()).set(topic, verdict.data);
      }
      this.host.hub.subscribe(session, topic, filterFor(options, topic));
      // What the backend allowed is kept like a subscribe token's grant, so that a later login keeps it.
      if (verdict?.allowed) this.rememberGrant(session, [topic], { grant: topic, uid: session.uid, expiresAt: undefined });
    }
    if (options.granted) this.rememberGrant(session, topics, options.granted);
    return data ? { refused: null, data } : SUBSCRIBED;
  }

  /** A subscribe that carries a filter (or says it has none) sets it on the topics the connection was already subscribed to. */
  private refilter(session: Session, topics: readonly string[], fresh: ReadonlySet<string>, options: SubscribeOptions): void {
    if (!('filter' in options)) return;
    for (const topic of topics) if (!fresh.has(topic)) this.host.hub.setFilter(session, topic, options.filter);
  }

  /** `too_many_topics` when `fresh` more topics would take the connection over its limit. */
  private topicLimitProblem(session: Session, fresh: number): HeraldError | null {
    const limit = this.limits.maxTopicsPerConnection;
    if (session.topics.size + fresh <= limit) return null;
    return new HeraldError('too_many_topics', `subscribing would make ${session.topics.size + fresh} topics, over the limit of ${limit}`);
  }

  /** The subscribe token behind a subscribe's grants, kept for the topics only it allows, so that a later login keeps them (Herald.applyIdentity). */
  private rememberGrant(session: Session, topics: readonly string[], granted: { grant: string; uid: string | undefined; expiresAt: number | undefined }): void {
    for (const topic of topics) {
      if (session.topics.has(topic) && this.host.permissions.subscribeProblem(session, topic) !== null) session.keepSubscribeGrant(topic, granted);
    }
  }

  /** Leaves a topic; false when the connection was not subscribed to it. */
  unsubscribe(session: Session, topic: string): boolean {
    return this.host.hub.unsubscribe(session, topic);
  }

  /**
   * Whether the connection may publish to the topic: the refusal, or null.
   * On a topic a publish proxy covers, only identity and the topic name: the
   * backend is asked by `publish`, and its verdict (or the permission rules,
   * if it leaves them to decide) stands.
   */
  publishProblem(session: Session, topic: string, grants: readonly string[] = []): HeraldError | null {
    const refused = this.identityProblem(session, 'publish');
    if (refused) return refused;
    const invalid = this.topicProblem(topic);
    if (invalid) return invalid;
    const sealed = this.host.permissions.sealedProblem(topic);
    if (sealed) return new HeraldError('forbidden', sealed);
    if (this.host.proxies.publishRule(topic)) return null;
    return this.permissionProblem(session, topic, grants);
  }

  private permissionProblem(session: Session, topic: string, grants: readonly string[] = []): HeraldError | null {
    const forbidden = this.host.permissions.publishProblem(session, topic, grants);
    return forbidden ? new HeraldError('forbidden', forbidden) : null;
  }

  /**
   * Publishes a message from a connection, after `publishProblem`; on a
   * topic a publish proxy covers, after the backend allowed it (maybe
   * replacing the message). Rejects with the refusal or the proxy's failure.
   */
  publish(session: Session, topic: string, message: unknown, options: ClientPublishOptions = {}): Promise<PublishResult> {
    const { grants = [], ...meta } = options;
    const refused = this.publishProblem(session, topic, grants);
    if (refused) return Promise.reject(refused);
    const extra = meta.tags === undefined && meta.event === undefined && meta.exclude === undefined ? undefined : meta;
    const endpoint = this.host.proxies.publishRule(topic);
    if (!endpoint) return owed(session, this.host.publish(topic, message, 'client', extra));
    return owed(
      session,
      this.host.proxies.publish(session, endpoint, topic, message).then((verdict) => {
        const forbidden = verdict.allowed ? null : this.permissionProblem(session, topic, grants);
        if (forbidden) throw forbidden;
        return this.host.publish(topic, verdict.message, 'client', extra);
      }),
    );
  }

  /**
   * Publishes an LHTTP message from a connection, as `publish`. The publish
   * proxy is asked about its body (with its command and headers); a
   * replacement becomes the body (a string as it is, anything else as its
   * JSON text) under the same command and headers.
   */
  publishLhttp(session: Session, topic: string, message: LhttpPublication, body: string): Promise<PublishResult> {
    const refused = this.publishProblem(session, topic);
    if (refused) return Promise.reject(refused);
    const endpoint = this.host.proxies.publishRule(topic);
    if (!endpoint) return owed(session, this.host.publishLhttp(topic, message, body, 'client'));
    return owed(
      session,
      this.host.proxies.publish(session, endpoint, topic, body, message).then((verdict) => {
        const forbidden = verdict.allowed ? null : this.permissionProblem(session, topic);
        if (forbidden) throw forbidden;
        if (!verdict.replaced) return this.host.publishLhttp(topic, message, body, 'client');
        const replaced = typeof verdict.message === 'string' ? verdict.message : toJson(verdict.message);
        const text = encodeLhttp({ command: message.command, headers: message.headers, body: replaced });
        return this.host.publishLhttp(topic, { ...message, text }, replaced, 'client');
      }),
    );
  }

  /** Reading a topic's history or presence needs a valid name and the right to subscribe. */
  readProblem(session: Session, topic: string): HeraldError | null {
    const refused = this.identityProblem(session, 'read');
    if (refused) return refused;
    const invalid = this.topicProblem(topic);
    if (invalid) return invalid;
    const forbidden = this.host.permissions.subscribeProblem(session, topic);
    return forbidden ? new HeraldError('forbidden', forbidden) : null;
  }
}

/** A client's publish is answered before any close frame of its connection (see Session.owe). */
function owed<T>(session: Session, publishing: Promise<T>): Promise<T> {
  session.owe(publishing);
  return publishing;
}
