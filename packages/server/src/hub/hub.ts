import type { Publication } from '../broker/broker.js';
import type { Protocol } from '../protocols/protocol.js';
import { encodeTextFrame } from './frame.js';
import type { Session } from './session.js';

const EMPTY: ReadonlySet<Session> = new Set();

export interface TopicListener {
  /** The first local connection subscribed to `topic`. */
  onTopicOpened(topic: string): void;
  /** The last local connection left `topic`. */
  onTopicClosed(topic: string): void;
  /** A session subscribed to a topic (it was not before). */
  onSubscribed?(session: Session, topic: string): void;
  /** A session left a topic (unsubscribe or close). */
  onUnsubscribed?(session: Session, topic: string): void;
  /** A uid got its first connection on this node. */
  onUserOnline?(uid: string): void;
  /** A uid lost its last connection on this node. */
  onUserOffline?(uid: string): void;
}

/**
 * The local registry: sessions by id, subscribers by topic. Delivery frames a
 * publication once per protocol and writes the same buffer to every
 * subscriber; the loop allocates nothing per subscriber.
 */
export class Hub {
  readonly sessions = new Map<string, Session>();
  private readonly topics = new Map<string, Set<Session>>();
  private readonly users = new Map<string, Set<Session>>();
  private subscriptionCount = 0;
  /** Publications handed to this hub for local delivery. */
  publications = 0;
  /** Publication frames written to connections. */
  deliveries = 0;

  constructor(private readonly listener: TopicListener) {}

  get topicCount(): number {
    return this.topics.size;
  }

  get subscriptions(): number {
    return this.subscriptionCount;
  }

  add(session: Session): void {
    this.sessions.set(session.id, session);
  }

  /** Removes a session, its subscriptions and its place in the user index. */
  remove(session: Session): void {
    if (!this.sessions.delete(session.id)) return;
    for (const topic of session.topics) this.detach(session, topic);
    session.topics.clear();
    this.leaveUser(session);
  }

  get userCount(): number {
    return this.users.size;
  }

  /**
   * Gives a session its identity (or none). The index is kept by identity:
   * each uid maps to the set of its live sessions, so closing one tab never
   * makes the user's other tabs unreachable, and a re-login under another
   * uid moves the session.
   */
  setUser(session: Session, uid: string | undefined): void {
    if (session.uid === uid) return;
    this.leaveUser(session);
    session.uid = uid;
    if (uid === undefined) return;
    let set = this.users.get(uid);
    if (!set) {
      set = new Set();
      this.users.set(uid, set);
      this.listener.onUserOnline?.(uid);
    }
    set.add(session);
  }

  /** Every uid with a session on this node. */
  userIds(): IterableIterator<string> {
    return this.users.keys();
  }

  /** The live sessions of a uid on this node. */
  userSessions(uid: string): ReadonlySet<Session> {
    return this.users.get(uid) ?? EMPTY;
  }

  private leaveUser(session: Session): void {
    const uid = session.uid;
    if (uid === undefined) return;
    const set = this.users.get(uid);
    if (set?.delete(session) && set.size === 0) {
      this.users.delete(uid);
      this.listener.onUserOffline?.(uid);
    }
  }

  /** Subscribes; returns false when the session was already subscribed. */
  subscribe(session: Session, topic: string): boolean {
    if (session.topics.has(topic)) return false;
    let subscribers = this.topics.get(topic);
    if (!subscribers) {
      subscribers = new Set();
      this.topics.set(topic, subscribers);
      this.listener.onTopicOpened(topic);
    }
    subscribers.add(session);
    session.topics.add(topic);
    this.subscriptionCount++;
    this.listener.onSubscribed?.(session, topic);
    return true;
  }

  /** Unsubscribes; returns false when the session was not subscribed. */
  unsubscribe(session: Session, topic: string): boolean {
    if (!session.topics.delete(topic)) return false;
    this.detach(session, topic);
    return true;
  }

  /** Every topic with a local subscriber. */
  topicNames(): IterableIterator<string> {
    return this.topics.keys();
  }

  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  /** Writes one frame to the topic's subscribers that speak `protocol`, but `except`. */
  writeToTopic(topic: string, protocol: string, frame: Buffer, except: Session | null): void {
    const subscribers = this.topics.get(topic);
    if (!subscribers) return;
    for (const session of subscribers) if (session !== except && session.protocol.name === protocol) session.write(frame);
  }

  /** Topics with the most local subscribers, busiest first. */
  busiestTopics(limit: number): Array<{ topic: string; subscribers: number }> {
    const all = Array.from(this.topics, ([topic, set]) => ({ topic, subscribers: set.size }));
    all.sort((a, b) => b.subscribers - a.subscribers);
    return all.slice(0, limit);
  }

  /** Writes a publication to every local subscriber of its topic; returns how many got it. */
  deliver(publication: Publication): number {
    this.publications++;
    const subscribers = this.topics.get(publication.topic);
    if (!subscribers) return 0;
    let protocol: Protocol | null = null;
    let frame: Buffer | null = null;
    let cache: Map<Protocol, Buffer> | null = null;
    let written = 0;
    for (const session of subscribers) {
      if (session.held !== null) {
        const held = session.held.get(publication.topic);
        if (held) {
          held.push(publication);
          continue;
        }
      }
      if (session.protocol !== protocol) {
        if (protocol !== null && frame !== null) (cache ??= new Map()).set(protocol, frame);
        protocol = session.protocol;
        frame = cache?.get(protocol) ?? protocol.encodePublication(publication);
      }
      if (session.write(frame!)) written++;
    }
    this.deliveries += written;
    return written;
  }

  /**
   * Pushes a message to every session of the given users on this node.
   * `payload` is the message's JSON text (framed once per protocol, as a
   * push). With `raw` (the seed's `/send`), sessions that logged in the
   * push-centre seed's way get `raw` as it is, as the seed sends it. Returns
   * how many sessions got it.
   */
  push(uids: Iterable<string>, payload: string, raw: string | null = null): number {
    let rawFrame: Buffer | null = null;
    let frames: Map<Protocol, Buffer> | null = null;
    let written = 0;
    for (const uid of uids) {
      for (const session of this.userSessions(uid)) {
        let frame: Buffer;
        if (raw !== null && session.rawPush) {
          frame = rawFrame ??= encodeTextFrame(raw);
        } else {
          frames ??= new Map();
          frame = frames.get(session.protocol) ?? session.protocol.encodePush(payload);
          frames.set(session.protocol, frame);
        }
        if (session.write(frame)) written++;
      }
    }
    return written;
  }

  private detach(session: Session, topic: string): void {
    const subscribers = this.topics.get(topic);
    if (!subscribers || !subscribers.delete(session)) return;
    this.subscriptionCount--;
    this.listener.onUnsubscribed?.(session, topic);
    if (subscribers.size === 0) {
      this.topics.delete(topic);
      this.listener.onTopicClosed(topic);
    }
  }
}
