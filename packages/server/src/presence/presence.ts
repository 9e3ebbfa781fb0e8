import type { PresenceEntry, PresenceView } from '../herald.js';

export type { PresenceEntry, PresenceView };

interface TopicPresence {
  connections: Map<string, PresenceEntry>;
  users: Map<string, number>;
}

/**
 * Who is subscribed to each topic that has presence, across the cluster: this
 * node's connections, and those the other nodes report through the cluster
 * registry (tagged with their node, so that a node's entries go when it does).
 * Counts are kept as connections join and leave (no scan per query); a query
 * copies at most `maxList` entries.
 */
export class LocalPresence {
  private readonly topics = new Map<string, TopicPresence>();
  /** Entries of other nodes: node -> conn -> topics. */
  private readonly remote = new Map<string, Map<string, Set<string>>>();

  /** Adds an entry of another node; false when it was already there. */
  joinRemote(node: string, topic: string, entry: PresenceEntry): boolean {
    if (this.topics.get(topic)?.connections.has(entry.conn)) return false;
    this.join(topic, entry);
    let conns = this.remote.get(node);
    if (!conns) this.remote.set(node, (conns = new Map()));
    let topics = conns.get(entry.conn);
    if (!topics) conns.set(entry.conn, (topics = new Set()));
    topics.add(topic);
    return true;
  }

  leaveRemote(node: string, topic: string, conn: string): PresenceEntry | undefined {
    const conns = this.remote.get(node);
    const topics = conns?.get(conn);
    if (!topics?.delete(topic)) return undefined;
    if (topics.size === 0) conns!.delete(conn);
    return this.leave(topic, conn);
  }

  /** Every entry another node holds (to compare with its snapshot, or to drop when it is gone). */
  entriesOf(node: string): Array<[string, PresenceEntry]> {
    const out: Array<[string, PresenceEntry]> = [];
    for (const [conn, topics] of this.remote.get(node) ?? []) {
      for (const topic of topics) {
        const entry = this.topics.get(topic)?.connections.get(conn);
        if (entry) out.push([topic, entry]);
      }
    }
    return out;
  }

  /** This node's own entries (every entry no other node reported). */
  *localEntries(): Iterable<[string, PresenceEntry]> {
    const remote = new Set<string>();
    for (const conns of this.remote.values()) for (const conn of conns.keys()) remote.add(conn);
    for (const [topic, presence] of this.topics) {
      for (const entry of presence.connections.values()) if (!remote.has(entry.conn)) yield [topic, entry];
    }
  }

  join(topic: string, entry: PresenceEntry): void {
    let presence = this.topics.get(topic);
    if (!presence) {
      presence = { connections: new Map(), users: new Map() };
      this.topics.set(topic, presence);
    }
    if (presence.connections.has(entry.conn)) return;
    presence.connections.set(entry.conn, entry);
    if (entry.uid !== undefined) presence.users.set(entry.uid, (presence.users.get(entry.uid) ?? 0) + 1);
  }

  /** Removes a connection; returns its entry, or undefined when it was not present. */
  leave(topic: string, conn: string): PresenceEntry | undefined {
    const presence = this.topics.get(topic);
    const entry = presence?.connections.get(conn);
    if (!presence || !entry) return undefined;
    presence.connections.delete(conn);
    if (entry.uid !== undefined) {
      const left = (presence.users.get(entry.uid) ?? 1) - 1;
      if (left > 0) presence.users.set(entry.uid, left);
      else presence.users.delete(entry.uid);
    }
    if (presence.connections.size === 0) this.topics.delete(topic);
    return entry;
  }

  /** Every (topic, uid) with a connection, cluster-wide, with the info of one of its entries (a lifecycle events catch-up). */
  *members(): Iterable<[string, string, unknown]> {
    for (const [topic, presence] of this.topics) {
      const seen = new Set<string>();
      for (const entry of presence.connections.values()) {
        if (entry.uid === undefined || seen.has(entry.uid)) continue;
        seen.add(entry.uid);
        yield [topic, entry.uid, entry.info];
      }
    }
  }

  /** How many connections of `uid` are on a topic, cluster-wide. */
  connectionsOf(topic: string, uid: string): number {
    return this.topics.get(topic)?.users.get(uid) ?? 0;
  }

  /** Every entry of the topic (live: not to be kept across changes). */
  entries(topic: string): Iterable<PresenceEntry> {
    return this.topics.get(topic)?.connections.values() ?? [];
  }

  view(topic: string, maxList: number): PresenceView {
    const presence = this.topics.get(topic);
    if (!presence) return { topic, connections: 0, users: 0, list: [] };
    const list: PresenceEntry[] = [];
    for (const entry of presence.connections.values()) {
      if (list.length >= maxList) break;
      list.push(entry);
    }
    return { topic, connections: presence.connections.size, users: presence.users.size, list };
  }
}
