import type { ConnectionView } from '../herald.js';
import type { Hub } from '../hub/hub.js';
import type { Session } from '../hub/session.js';
import type { Logger } from '../log.js';
import type { PersistentTopics } from './persistent.js';

/** What the server API needs to act on this node's connections. */
export interface UserSessionsHost {
  readonly nodeId: string;
  readonly hub: Hub;
  readonly log: Logger;
  /** Most topics one connection may hold (`limits.maxTopicsPerConnection`): a connection at it is not given more. */
  readonly maxTopicsPerConnection: number;
  /** The subscribe reply's fields for one topic and the frames that follow it (Recovery.subscribe, as a client's subscribe gets them). */
  recover(session: Session, topic: string, since: undefined, respond: (result: object | undefined, frames: Buffer[]) => void): void | Promise<void>;
  closeSession(session: Session, code: number, reason: string): void;
  reportError(session: Session, err: unknown): void;
}

/**
 * The server API's work on this node's connections of a user: a
 * server-side subscription is made as a client's is (the hub's subscribe,
 * so the broker subscription, presence and history follow; then the
 * recovery's answer: the topic's position and, in cache mode, its latest
 * value) and told to the connection in its protocol's words (the codec's
 * `subscribed`/`unsubscribed`; nothing where the protocol has none). It is
 * kept as a grant of the topic for the connection's uid, so that a later
 * `login` of the same user keeps it.
 */
export class UserSessions {
  constructor(private readonly host: UserSessionsHost) {}

  /** Whether the user has a connection on this node. */
  holds(uid: string): boolean {
    return this.host.hub.userSessions(uid).size > 0;
  }

  /** Subscribes the user's open connections here; returns how many hold every topic now. */
  subscribe(uid: string, topics: readonly string[]): number {
    let count = 0;
    for (const session of [...this.host.hub.userSessions(uid)]) if (this.subscribeSession(session, topics)) count++;
    return count;
  }

  /** Subscribes a connection to its user's persistent topics (it got its identity, or it opened). */
  persist(session: Session, persistent: PersistentTopics): void {
    if (session.uid === undefined) return;
    const topics = persistent.of(session.uid);
    if (topics.size > 0) this.subscribeSession(session, [...topics]);
  }

  /** Ends the user's subscriptions here to `topics`; returns how many connections left at least one. */
  unsubscribe(uid: string, topics: readonly string[], reason: string): number {
    let count = 0;
    for (const session of [...this.host.hub.userSessions(uid)]) {
      let left = false;
      for (const topic of topics) {
        if (!this.host.hub.unsubscribe(session, topic)) continue;
        left = true;
        const notice = session.codec.unsubscribed(topic, reason);
        if (notice) session.write(notice);
      }
      if (left) count++;
    }
    return count;
  }

  /** Closes the user's connections here; returns how many. */
  disconnect(uid: string, code: number, reason: string): number {
    const sessions = [...this.host.hub.userSessions(uid)];
    for (const session of sessions) this.host.closeSession(session, code, reason);
    return sessions.length;
  }

  /** The user's connections here. */
  list(uid: string): ConnectionView[] {
    return Array.from(this.host.hub.userSessions(uid), (session) => ({
      id: session.id,
      node: this.host.nodeId,
      uid,
      protocol: session.codec.name,
      transport: session.transport.name,
      topics: [...session.topics],
      connectedAt: session.connectedAt,
    }));
  }

  /**
   * Subscribes one open connection to every topic it does not hold yet;
   * true when it holds them all now. Not for a protocol that cannot take
   * topics it did not ask for (a single-topic SSE stream), nor past the
   * connection's topic limit (then none is added).
   */
  private subscribeSession(session: Session, topics: readonly string[]): boolean {
    if (session.state !== 'open' || session.handler.acceptsServerTopics?.(session) === false) return false;
    const fresh = topics.filter((topic) => !session.topics.has(topic));
    if (session.topics.size + fresh.length > this.host.maxTopicsPerConnection) {
      this.host.log.debug({ conn: session.id, topics: fresh.length }, 'server-side subscription left out: over the connection topic limit');
      return false;
    }
    for (const topic of fresh) {
      if (!this.host.hub.subscribe(session, topic)) continue;
      session.keepSubscribeGrant(topic, { grant: topic, uid: session.uid, expiresAt: undefined });
      this.announce(session, topic);
    }
    return true;
  }

  /**
   * Tells the connection of its new topic once the recovery answers (the
   * broker carries the topic here; its position, its latest value in cache
   * mode). Live publications wait behind the notice: the recovery holds them
   * where it reads history, this hold does for the other topics.
   */
  private announce(session: Session, topic: string): void {
    const held = session.holdLive(topic);
    const release = (): void => session.releaseLive(topic, held);
    const pending = this.host.recover(session, topic, undefined, (result, frames) => {
      release();
      const notice = session.codec.subscribed(topic, result);
      if (notice) session.write(notice);
      for (const frame of frames) session.write(frame);
      for (const publication of held) session.write(session.codec.publication(publication));
    });
    if (!pending) return release();
    pending.then(release, (err: unknown) => {
      release();
      this.host.reportError(session, err);
    });
  }
}
