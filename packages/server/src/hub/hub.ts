import type { Publication } from '../broker/broker.js';
import type { Protocol } from '../protocols/protocol.js';
import type { Session } from './session.js';

export interface TopicListener {
  /** The first local connection subscribed to `topic`. */
  onTopicOpened(topic: string): void;
  /** The last local connection left `topic`. */
  onTopicClosed(topic: string): void;
}

/**
 * The local registry: sessions by id, subscribers by topic. Delivery frames a
 * publication once per protocol and writes the same buffer to every
 * subscriber; the loop allocates nothing per subscriber.
 */
export class Hub {
  readonly sessions = new Map<string, Session>();
  private readonly topics = new Map<string, Set<Session>>();
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

  /** Removes a session and all of its subscriptions. */
  remove(session: Session): void {
    if (!this.sessions.delete(session.id)) return;
    for (const topic of session.topics) this.detach(session, topic);
    session.topics.clear();
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
    return true;
  }

  /** Unsubscribes; returns false when the session was not subscribed. */
  unsubscribe(session: Session, topic: string): boolean {
    if (!session.topics.delete(topic)) return false;
    this.detach(session, topic);
    return true;
  }

  subscriberCount(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
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

  private detach(session: Session, topic: string): void {
    const subscribers = this.topics.get(topic);
    if (!subscribers || !subscribers.delete(session)) return;
    this.subscriptionCount--;
    if (subscribers.size === 0) {
      this.topics.delete(topic);
      this.listener.onTopicClosed(topic);
    }
  }
}
