import type { Publication } from '../broker/broker.js';
import type { Codec } from '../protocols/codec.js';
import type { TagFilter } from '../util/filter.js';
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
  /** A session got a uid (a new one: at connect, or by a login as another user). */
  onIdentified?(session: Session): void;
}

/**
 * The local registry: sessions by id, subscribers by topic, sessions by user.
 * Delivery encodes a publication once per codec and writes the same buffer
 * to every subscriber; the loop allocates nothing per subscriber. The hub
 * knows codecs and sessions only: never a protocol's commands, auth or HTTP.
 */
export class Hub {
  readonly sessions = new Map<string, Session>();
  private readonly topics = new Map<string, Set<Session>>();
  /**
   * The filters of filtered subscriptions (docs/backend.md, "Tags and
   * filters"), by topic, only for topics that have one: a topic without a
   * filtered subscriber is delivered as if filters did not exist.
   */
  private readonly filters = new Map<string, Map<Session, TagFilter>>();
  private readonly users = new Map<string, Set<Session>>();
  private subscriptionCount = 0;
  /** Publications handed to this hub for local delivery. */
  publications = 0;
  /** Publication frames written to connections. */
  deliveries = 0;
  /** Subscribers whose filter the last `deliver` call's publication did not pass (written nothing). */
  lastFiltered = 0;
  /** Subscribers whose filter a publication did not pass, in all. */
  filtered = 0;

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

  /** Whether the session is in the hub (added and not removed). */
  holds(session: Session): boolean {
    return this.sessions.get(session.id) === session;
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
    // A session already removed (it closed while its identity was being settled) is indexed no more.
    if (uid === undefined || !this.holds(session)) return;
    let set = this.users.get(uid);
    if (!set) {
      set = new Set();
      this.users.set(uid, set);
      this.listener.onUserOnline?.(uid);
    }
    set.add(session);
    this.listener.onIdentified?.(session);
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

  /**
   * Subscribes; returns false when the session was already subscribed, or is
   * not (or no longer) in the hub: a connection that closed while a connect
   * hook, a token check or an application's processor was still running must
   * not be left behind in a topic (a broker subscription, a presence entry
   * and a session object that nothing would ever remove).
   */
  subscribe(session: Session, topic: string, filter?: TagFilter): boolean {
    if (session.topics.has(topic) || !this.holds(session)) return false;
    if (filter) this.setFilter(session, topic, filter);
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

  /**
   * Sets (or, with undefined, removes) the filter of a session's subscription
   * to `topic`; a session not subscribed to it gets none.
   */
  setFilter(session: Session, topic: string, filter: TagFilter | undefined): void {
    let filters = this.filters.get(topic);
    if (filter === undefined) {
      if (filters?.delete(session) && filters.size === 0) this.filters.delete(topic);
      return;
    }
    if (!filters) this.filters.set(topic, (filters = new Map()));
    filters.set(session, filter);
  }

  /** The filter of a session's subscription to `topic`, if it has one. */
  filterOf(session: Session, topic: string): TagFilter | undefined {
    return this.filters.get(topic)?.get(session);
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

  /**
   * Tells the topic's subscribers (but `except`) something that is not a
   * publication (presence, a gap): `encode` runs once per codec, and
   * connections whose codec has no frame for it (null) are not told.
   */
  announce(topic: string, encode: (codec: Codec) => Buffer | null, except: Session | null): void {
    const subscribers = this.topics.get(topic);
    if (!subscribers) return;
    const frames = new Map<Codec, Buffer | null>();
    for (const session of subscribers) {
      if (session === except) continue;
      let frame = frames.get(session.codec);
      if (frame === undefined) frames.set(session.codec, (frame = encode(session.codec)));
      if (frame) session.write(frame);
    }
  }

  /** Topics with the most local subscribers, busiest first. */
  busiestTopics(limit: number): Array<{ topic: string; subscribers: number }> {
    const all = Array.from(this.topics, ([topic, set]) => ({ topic, subscribers: set.size }));
    all.sort((a, b) => b.subscribers - a.subscribers);
    return all.slice(0, limit);
  }

  /**
   * Writes a publication to every local subscriber of its topic but the
   * connection it excludes (`publication.exclude`, its sender, looked up
   * once) and those whose filter its tags do not pass (the filter runs
   * before the write; the frame is still encoded once per codec, and only
   * when some subscriber of that codec takes it); returns how many got it.
   * `lastFiltered` then says how many the filters left out.
   */
  deliver(publication: Publication): number {
    this.publications++;
    this.lastFiltered = 0;
    const subscribers = this.topics.get(publication.topic);
    if (!subscribers) return 0;
    const excluded = publication.exclude === undefined ? undefined : this.sessions.get(publication.exclude);
    const filters = this.filters.get(publication.topic);
    const tags = publication.tags;
    let codec: Codec | null = null;
    let frame: Buffer | null = null;
    let cache: Map<Codec, Buffer> | null = null;
    let written = 0;
    let skipped = 0;
    for (const session of subscribers) {
      if (session === excluded) continue;
      if (filters !== undefined) {
        const filter = filters.get(session);
        if (filter !== undefined && !filter(tags)) {
          skipped++;
          continue;
        }
      }
      // A recovery is reading history for this connection: the publication waits in its hold.
      if (session.hold(publication)) continue;
      if (session.codec !== codec) {
        if (codec !== null && frame !== null) (cache ??= new Map()).set(codec, frame);
        codec = session.codec;
        frame = cache?.get(codec) ?? codec.publication(publication);
      }
      if (session.write(frame!)) written++;
    }
    this.deliveries += written;
    if (skipped > 0) {
      this.lastFiltered = skipped;
      this.filtered += skipped;
    }
    return written;
  }

  /**
   * Pushes a message to every session of the given users on this node.
   * `payload` is the message's JSON text (encoded once per codec, as a push).
   * With `raw` (the seed's `/send`), sessions that logged in the push-centre
   * seed's way get `raw` as it is where their codec has a plain push (once
   * per codec too). Returns how many sessions got it.
   */
  push(uids: Iterable<string>, payload: string, raw: string | null = null): number {
    let frames: Map<Codec, Buffer> | null = null;
    let plain: Map<Codec, Buffer | null> | null = null;
    let written = 0;
    for (const uid of uids) {
      for (const session of this.userSessions(uid)) {
        const codec = session.codec;
        let frame: Buffer | null | undefined = null;
        if (raw !== null && session.identity.rawPush) {
          plain ??= new Map();
          frame = plain.get(codec);
          if (frame === undefined) {
            frame = codec.plainPush(raw);
            plain.set(codec, frame);
          }
        }
        if (frame === null) {
          frames ??= new Map();
          frame = frames.get(codec) ?? codec.push(payload);
          frames.set(codec, frame);
        }
        if (session.write(frame)) written++;
      }
    }
    return written;
  }

  /**
   * Closes `sessions` spread evenly over `window` ms (a graceful drain): n
   * connections in at most one batch per 50 ms, batch i at i/batches of the
   * window (n = 20 over 3 s: one every 150 ms; n = 21 over 1 s: 11 batches
   * of 2, one every 91 ms), each through `close` (after what is queued for
   * it). Clients that reconnect at once land on other nodes over the window,
   * not all in the same second.
   */
  async closeAll(sessions: readonly Session[], window: number, close: (session: Session) => void): Promise<void> {
    if (sessions.length === 0) return;
    const perBatch = Math.ceil(sessions.length / Math.max(1, Math.min(sessions.length, Math.floor(window / 50))));
    // Counted again after rounding up, so that the batches spread over the whole window.
    const batches = Math.ceil(sessions.length / perBatch);
    const start = Date.now();
    for (let batch = 0; batch * perBatch < sessions.length; batch++) {
      // Timed from the start, so that slow batches do not stretch the window.
      const wait = start + (batch * window) / batches - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      for (const session of sessions.slice(batch * perBatch, (batch + 1) * perBatch)) {
        if (session.state === 'open' || session.state === 'connecting') close(session);
      }
    }
  }

  private detach(session: Session, topic: string): void {
    const subscribers = this.topics.get(topic);
    if (!subscribers || !subscribers.delete(session)) return;
    this.setFilter(session, topic, undefined);
    this.subscriptionCount--;
    this.listener.onUnsubscribed?.(session, topic);
    if (subscribers.size === 0) {
      this.topics.delete(topic);
      this.listener.onTopicClosed(topic);
    }
  }
}
