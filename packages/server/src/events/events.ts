import { randomUUID } from 'node:crypto';
import type { EventKind } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PresenceEntry } from '../presence/presence.js';
import { topicMatches } from '../topics.js';
import { Ownership, transitionOf, type Membership } from './transitions.js';

export type { EventKind };

/**
 * One lifecycle event, as webhooks carry it (`{"events":[...]}`), as the
 * events topic publishes it, and as in-process listeners get it.
 */
export interface LifecycleEvent {
  /** Unique (a UUID): the same event delivered twice (a retried webhook) has the same id. */
  readonly id: string;
  readonly kind: EventKind;
  /** When the emitting node saw the change, ms since the epoch. */
  readonly at: number;
  /** The node that emitted it. */
  readonly node: string;
  /** topic_*, join/leave, member_*: the topic. */
  readonly topic?: string;
  /** user_*, member_*; join/leave and connection_closed of an identified connection. */
  readonly uid?: string;
  /** join/leave, connection_closed: the connection's id. */
  readonly conn?: string;
  /** join, member_added: the connection's presence info, when it has one. */
  readonly info?: unknown;
  /** connection_closed: the WebSocket close code (docs/protocol.md's table) and reason. */
  readonly code?: number;
  readonly reason?: string;
  /**
   * topic_occupied, user_online, member_added: true when the event is part
   * of a catch-up, the state at a cold start (a node became ready while no
   * node was emitting: the whole cluster starting, a lone node, every node
   * cut from the broker). A backend treats it as an assertion of presence,
   * not necessarily a new transition; its vacated/offline/removed
   * counterpart comes later as usual. Absent otherwise.
   */
  readonly catchUp?: true;
}

export type EventListener = (event: LifecycleEvent) => void;

/** What the events unit reads of the node and the cluster (server.ts builds it from the hub, the registry and the presence store). */
export interface EventsHost extends Membership {
  /** Whether this node has a subscriber of `topic`. */
  localTopic(topic: string): boolean;
  /** How many other live nodes hold a subscriber of a tracked topic (ClusterRegistry.topicHolders). */
  topicHolders(topic: string): number;
  /** Whether this node has a connection of `uid`. */
  localUser(uid: string): boolean;
  /** How many other live nodes hold a connection of `uid`. */
  userHolders(uid: string): number;
  /** Connections of `uid` on a presence topic, cluster-wide (the presence store). */
  memberConnections(topic: string, uid: string): number;
  /** This node's topics with a subscriber. */
  localTopics(): Iterable<string>;
  /** Every uid with a connection, cluster-wide (this node's and the replicated ones; duplicates allowed). */
  presentUsers(): Iterable<string>;
  /** Every topic with a subscriber, cluster-wide, among the tracked ones (duplicates allowed). */
  presentTopics(): Iterable<string>;
  /** Every (topic, uid, info) with a presence entry, cluster-wide (the presence store). */
  presentMembers(): Iterable<[string, string, unknown]>;
  /** Tells the other nodes that a tracked topic opened or closed here (ClusterRegistry.topicOpened/Closed). */
  shareTopic(topic: string, open: boolean): void;
}

export interface LifecycleEventsOptions {
  readonly nodeId: string;
  readonly host: EventsHost;
  /** Kinds emitted at all (`events.kinds`). */
  readonly kinds: readonly EventKind[];
  /** Topics tracked from the start (`events.topics`); `track` adds more before the node serves. */
  readonly topics: readonly string[];
  /** How long a transition owned by another node is held in case that node turns out dead, and how long after it that node's heartbeat shows it saw it (see Ownership), ms. */
  readonly handoff: number;
  readonly margin: number;
  readonly metrics?: Metrics;
  readonly log: Logger;
}

/**
 * Lifecycle events: what this node sees change (its connections, the other
 * nodes' replicated state) turned into events, each emitted by exactly one
 * node, and handed to in-process listeners (the webhook senders, the events
 * topic, the Pusher protocol's webhooks).
 *
 * Per-connection events (`join`, `leave`, `connection_closed`) are emitted
 * by the node holding the connection. Cluster-wide ones (`topic_occupied`,
 * `topic_vacated`, `member_added`, `member_removed`, `user_online`,
 * `user_offline`) are computed by every node and emitted by the rendezvous
 * owner of their key (transitions.ts), once the node is ready
 * (ClusterRegistry.ready).
 */
export class LifecycleEvents {
  private readonly listeners = new Set<EventListener>();
  private readonly patterns: string[];
  private readonly kinds: ReadonlySet<EventKind>;
  private readonly ownership: Ownership<LifecycleEvent>;

  constructor(private readonly options: LifecycleEventsOptions) {
    this.patterns = [...options.topics];
    this.kinds = new Set(options.kinds);
    this.ownership = new Ownership(options.host, (event) => this.deliver(event), options.handoff, options.margin);
  }

  /**
   * Tracks the occupancy and presence of more topics (exact or `prefix*`),
   * e.g. a protocol's namespace. Call it at start-up, before connections
   * arrive: topics already open are not announced.
   */
  track(pattern: string): void {
    if (!this.patterns.includes(pattern)) this.patterns.push(pattern);
  }

  /** Whether a topic's occupancy and presence make events. */
  tracks(topic: string): boolean {
    return this.patterns.length > 0 && topicMatches(this.patterns, topic);
  }

  /** Whether any topic is tracked (else nothing about topics is replicated). */
  get tracking(): boolean {
    return this.patterns.length > 0;
  }

  /**
   * Calls `listener` with every event this node emits, synchronously, in the
   * order they happen; returns a function that stops it. A listener that
   * throws is logged and does not stop the others. Filter by `event.kind`
   * and `event.topic` (e.g. a namespace prefix) in the listener.
   */
  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** This node's tracked open topics, for its cluster snapshot. */
  *trackedTopics(): Iterable<string> {
    if (!this.tracking) return;
    for (const topic of this.options.host.localTopics()) if (this.tracks(topic)) yield topic;
  }

  // ---- what this node sees -------------------------------------------------

  /** The first local subscriber of `topic` (Hub.onTopicOpened). */
  topicOpened(topic: string): void {
    if (!this.tracks(topic)) return;
    this.options.host.shareTopic(topic, true);
    this.topicChanged('add', topic, 1 + this.options.host.topicHolders(topic));
  }

  /** The last local subscriber left `topic` (Hub.onTopicClosed). */
  topicClosed(topic: string): void {
    if (!this.tracks(topic)) return;
    this.options.host.shareTopic(topic, false);
    this.topicChanged('remove', topic, this.options.host.topicHolders(topic));
  }

  /** A uid's first connection on this node (Hub.onUserOnline). */
  userOnline(uid: string): void {
    this.userChanged('add', uid, 1 + this.options.host.userHolders(uid));
  }

  /** A uid's last connection on this node is gone (Hub.onUserOffline). */
  userOffline(uid: string): void {
    this.userChanged('remove', uid, this.options.host.userHolders(uid));
  }

  /** Another node's users changed (ClusterRegistry's host: remoteUsers). */
  remoteUsers(added: readonly string[], removed: readonly string[]): void {
    const { host } = this.options;
    for (const uid of added) this.userChanged('add', uid, (host.localUser(uid) ? 1 : 0) + host.userHolders(uid));
    for (const uid of removed) this.userChanged('remove', uid, (host.localUser(uid) ? 1 : 0) + host.userHolders(uid));
  }

  /** Another node's tracked topics changed (remoteTopics). */
  remoteTopics(opened: readonly string[], closed: readonly string[]): void {
    const { host } = this.options;
    for (const topic of opened) if (this.tracks(topic)) this.topicChanged('add', topic, (host.localTopic(topic) ? 1 : 0) + host.topicHolders(topic));
    for (const topic of closed) if (this.tracks(topic)) this.topicChanged('remove', topic, (host.localTopic(topic) ? 1 : 0) + host.topicHolders(topic));
  }

  /**
   * Another node was forgotten (before what it held is told as gone): when
   * it crashed, the transitions it owned and may not have emitted get a new
   * owner; after its goodbye it emitted them itself.
   */
  remoteGone(node: string, crashed: boolean): void {
    if (crashed) this.ownership.ownerGone(node);
    else this.ownership.ownerAlive(node, -1);
  }

  /** Another node's heartbeat: the transitions it owned before it are its own to emit. */
  remoteAlive(node: string): void {
    this.ownership.ownerAlive(node);
  }

  /**
   * This node became a candidate while it knew no other (ClusterRegistry's
   * host: readyAlone): the transitions before it were emitted by no node,
   * so it emits the present state, each event marked `catchUp`:
   * topic_occupied for each tracked topic with a subscriber, user_online
   * for each connected uid, member_added for each member of a tracked
   * presence topic, cluster-wide. Being the only candidate, it owns every
   * key; the later vacated/offline/removed pair with these.
   */
  catchUp(): void {
    const { host } = this.options;
    const topics = new Set<string>();
    for (const topic of host.presentTopics()) if (this.tracks(topic)) topics.add(topic);
    for (const topic of topics) this.cluster('topic_occupied', `t\n${topic}`, { topic, catchUp: true });
    for (const uid of new Set(host.presentUsers())) this.cluster('user_online', `u\n${uid}`, { uid, catchUp: true });
    for (const [topic, uid, info] of host.presentMembers()) if (this.tracks(topic)) this.cluster('member_added', `m\n${topic}\n${uid}`, { topic, uid, info, catchUp: true });
  }

  /** A presence entry came or went (PresenceTracker's observer): `node` null for this node's connections. */
  presence(node: string | null, change: 'join' | 'leave', topic: string, entry: PresenceEntry): void {
    if (!this.tracks(topic)) return;
    if (node === null) this.emit(change, { topic, conn: entry.conn, uid: entry.uid, info: change === 'join' ? entry.info : undefined });
    if (entry.uid === undefined) return;
    const count = this.options.host.memberConnections(topic, entry.uid);
    const kind = transitionOf(change === 'join' ? 'add' : 'remove', count);
    if (kind === 'first') this.cluster('member_added', `m\n${topic}\n${entry.uid}`, { topic, uid: entry.uid, info: entry.info });
    else if (kind === 'last') this.cluster('member_removed', `m\n${topic}\n${entry.uid}`, { topic, uid: entry.uid });
  }

  /** A connection of this node closed (the gateway's `disconnect`). */
  connectionClosed(conn: string, uid: string | undefined, code: number, reason: string): void {
    this.emit('connection_closed', { conn, uid, code, reason });
  }

  // ---- emission --------------------------------------------------------------

  private topicChanged(change: 'add' | 'remove', topic: string, count: number): void {
    const kind = transitionOf(change, count);
    if (kind === 'first') this.cluster('topic_occupied', `t\n${topic}`, { topic });
    else if (kind === 'last') this.cluster('topic_vacated', `t\n${topic}`, { topic });
  }

  private userChanged(change: 'add' | 'remove', uid: string, count: number): void {
    const kind = transitionOf(change, count);
    if (kind === 'first') this.cluster('user_online', `u\n${uid}`, { uid });
    else if (kind === 'last') this.cluster('user_offline', `u\n${uid}`, { uid });
  }

  /** A cluster-wide transition: made into an event now (its time and id), emitted by the key's owner. */
  private cluster(kind: EventKind, key: string, fields: Omit<Partial<LifecycleEvent>, 'id' | 'kind' | 'at' | 'node'>): void {
    // Nothing listens (no sink configured, no protocol's webhooks): no event is made.
    if (this.listeners.size === 0 || !this.kinds.has(kind)) return;
    this.ownership.decide(key, this.make(kind, fields));
  }

  private emit(kind: EventKind, fields: Omit<Partial<LifecycleEvent>, 'id' | 'kind' | 'at' | 'node'>): void {
    if (this.listeners.size > 0 && this.kinds.has(kind)) this.deliver(this.make(kind, fields));
  }

  private make(kind: EventKind, fields: Omit<Partial<LifecycleEvent>, 'id' | 'kind' | 'at' | 'node'>): LifecycleEvent {
    const event: Record<string, unknown> = { id: randomUUID(), kind, at: Date.now(), node: this.options.nodeId };
    for (const [name, value] of Object.entries(fields)) if (value !== undefined) event[name] = value;
    return event as unknown as LifecycleEvent;
  }

  private deliver(event: LifecycleEvent): void {
    this.options.metrics?.events.inc({ kind: event.kind });
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.options.log.error({ err, kind: event.kind }, 'lifecycle event listener failed');
      }
    }
  }
}
