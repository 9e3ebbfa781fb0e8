import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import { ruleFor } from '../topics.js';
import type { Hub } from '../hub/hub.js';
import type { Session } from '../hub/session.js';
import { LocalPresence, type PresenceEntry, type PresenceView } from './presence.js';

/** Where this node's presence changes go for the other nodes (the cluster registry). */
export interface PresenceShare {
  presenceJoin(topic: string, entry: PresenceEntry): void;
  presenceLeave(topic: string, conn: string): void;
}

export interface PresenceTrackerOptions {
  /** The presence rules (`presence[]`: pattern, joinLeave, maxList). */
  readonly rules: HeraldConfig['presence'];
  readonly hub: Hub;
  readonly share: PresenceShare;
  topicProblem(topic: string): string | null;
  /**
   * Told of every entry the store took or dropped (after the change), this
   * node's (`node` null) and the other nodes' (lifecycle events).
   */
  observe?(node: string | null, change: 'join' | 'leave', topic: string, entry: PresenceEntry): void;
}

/**
 * Presence policy: which topics have it (the first matching rule), what a
 * subscription or a departure changes (this node's entries, shared with the
 * other nodes), what other nodes report (their joins, leaves and snapshots),
 * and who is told: with the rule's `joinLeave`, every subscriber whose
 * protocol has a presence frame (the codec's `presence`), but the one who
 * joined. The store (presence.ts) only counts.
 */
export class PresenceTracker {
  readonly store = new LocalPresence();

  constructor(private readonly options: PresenceTrackerOptions) {}

  /** Who is subscribed to a topic that has presence; throws `invalid_topic` or `not_found`. */
  view(topic: string): PresenceView {
    const problem = this.options.topicProblem(topic);
    if (problem) throw new HeraldError('invalid_topic', problem);
    const rule = ruleFor(this.options.rules, topic);
    if (!rule) throw new HeraldError('not_found', `no presence is kept for topic ${topic}`);
    return this.store.view(topic, rule.maxList);
  }

  /** A connection of this node subscribed to a topic or left it. */
  changed(change: 'join' | 'leave', session: Session, topic: string): void {
    const rule = ruleFor(this.options.rules, topic);
    if (!rule) return;
    let entry: PresenceEntry | undefined;
    if (change === 'join') {
      const uid = session.uidFor(topic);
      entry = { conn: session.id, ...(uid !== undefined ? { uid } : {}), ...(session.infoFor(topic) !== undefined ? { info: session.infoFor(topic) } : {}) };
      this.store.join(topic, entry);
      this.options.share.presenceJoin(topic, entry);
    } else {
      entry = this.store.leave(topic, session.id);
      if (entry) this.options.share.presenceLeave(topic, session.id);
    }
    if (entry) this.options.observe?.(null, change, topic, entry);
    if (entry && rule.joinLeave) this.announce(change, topic, entry, session);
  }

  /** Another node's connection joined or left. */
  remote(node: string, change: 'join' | 'leave', topic: string, entryOrConn: PresenceEntry | string): void {
    const rule = ruleFor(this.options.rules, topic);
    if (!rule) return;
    let entry: PresenceEntry | undefined;
    if (change === 'leave') entry = this.store.leaveRemote(node, topic, entryOrConn as string);
    else if (this.store.joinRemote(node, topic, entryOrConn as PresenceEntry)) entry = entryOrConn as PresenceEntry;
    if (entry) this.options.observe?.(node, change, topic, entry);
    if (entry && rule.joinLeave) this.announce(change, topic, entry, null);
  }

  /** Another node's full list (a snapshot, or none when it is gone): the difference with what was known becomes joins and leaves. */
  reset(node: string, entries: ReadonlyArray<readonly [string, PresenceEntry]> | null | undefined): void {
    const before = new Map(this.store.entriesOf(node).map(([topic, entry]) => [`${topic}\n${entry.conn}`, [topic, entry] as const]));
    for (const [topic, entry] of entries ?? []) {
      if (!before.delete(`${topic}\n${entry.conn}`)) this.remote(node, 'join', topic, entry);
    }
    for (const [topic, entry] of before.values()) this.remote(node, 'leave', topic, entry.conn);
  }

  /**
   * Tells the subscribers. `userEdge`: the entry's uid is now present on the
   * topic through this entry alone (its first connection joined) or no more
   * (its last left), across the cluster; protocols with per-user presence
   * (Pusher's member_added/member_removed) speak only then.
   */
  private announce(change: 'join' | 'leave', topic: string, entry: PresenceEntry, except: Session | null): void {
    const userEdge = entry.uid !== undefined && this.store.connectionsOf(topic, entry.uid) === (change === 'join' ? 1 : 0);
    this.options.hub.announce(topic, (codec) => codec.presence(change, topic, entry, userEdge), except);
  }

  /** Every entry of a topic that has presence, across the cluster (no copy, no limit: for a protocol's own member list). */
  entries(topic: string): Iterable<PresenceEntry> {
    return this.store.entries(topic);
  }

  /** How many distinct uids are present on a topic, across the cluster. */
  userCount(topic: string): number {
    return this.store.view(topic, 0).users;
  }
}
