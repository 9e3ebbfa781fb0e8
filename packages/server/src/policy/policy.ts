import type { Permissions } from '../auth/permissions.js';
import type { LhttpPublication, PublishResult } from '../broker/broker.js';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Session } from '../hub/session.js';
import { TokenBucket } from '../util/token-bucket.js';

/** What the policy needs from the gateway. */
export interface PolicyHost {
  readonly config: HeraldConfig;
  readonly hub: Hub;
  readonly permissions: Permissions;
  /** Herald's topic rule plus the broker's (its namespace and reserved names). */
  topicProblem(topic: string): string | null;
  publish(topic: string, message: unknown, source: 'client'): Promise<PublishResult>;
  publishLhttp(topic: string, message: LhttpPublication, body: string, source: 'client'): Promise<PublishResult>;
}

/** Commands a connection without identity may send when `auth.anonymous` is off. */
const BEFORE_LOGIN = new Set(['login', 'ping', 'pong']);

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
   * Subscribes the connection to every topic, or to none and returns why.
   * `grants` are topics (or `prefix*`) granted for this command alone (a
   * verified subscribe token).
   */
  subscribe(
    session: Session,
    topics: readonly string[],
    grants: readonly string[] = [],
    granted?: { grant: string; uid: string | undefined; expiresAt: number | undefined },
  ): HeraldError | null {
    const refused = this.identityProblem(session, 'subscribe');
    if (refused) return refused;
    for (const topic of topics) {
      const invalid = this.topicProblem(topic);
      if (invalid) return invalid;
      const forbidden = this.host.permissions.subscribeProblem(session, topic, grants);
      if (forbidden) return new HeraldError('forbidden', forbidden);
    }
    const fresh = new Set(topics.filter((topic) => !session.topics.has(topic)));
    if (fresh.size === 0) {
      if (granted) this.rememberGrant(session, topics, granted);
      return null;
    }
    const limit = this.limits.maxTopicsPerConnection;
    if (session.topics.size + fresh.size > limit) {
      return new HeraldError('too_many_topics', `subscribing would make ${session.topics.size + fresh.size} topics, over the limit of ${limit}`);
    }
    if (!session.takeSubscriptions(fresh.size)) {
      return new HeraldError('rate_limited', `over ${this.limits.subscriptionsPerSecond} new subscriptions per second`);
    }
    for (const topic of fresh) this.host.hub.subscribe(session, topic);
    if (granted) this.rememberGrant(session, topics, granted);
    return null;
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

  /** Whether the connection may publish to the topic: the refusal, or null. */
  publishProblem(session: Session, topic: string): HeraldError | null {
    const refused = this.identityProblem(session, 'publish');
    if (refused) return refused;
    const invalid = this.topicProblem(topic);
    if (invalid) return invalid;
    const forbidden = this.host.permissions.publishProblem(session, topic);
    return forbidden ? new HeraldError('forbidden', forbidden) : null;
  }

  /** Publishes a message from a connection, after `publishProblem`. Rejects with the refusal. */
  publish(session: Session, topic: string, message: unknown): Promise<PublishResult> {
    const refused = this.publishProblem(session, topic);
    if (refused) return Promise.reject(refused);
    return this.host.publish(topic, message, 'client');
  }

  /** Publishes an LHTTP message from a connection, after `publishProblem`. Rejects with the refusal. */
  publishLhttp(session: Session, topic: string, message: LhttpPublication, body: string): Promise<PublishResult> {
    const refused = this.publishProblem(session, topic);
    if (refused) return Promise.reject(refused);
    return this.host.publishLhttp(topic, message, body, 'client');
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
