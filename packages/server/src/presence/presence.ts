/** One connection present on a topic. */
export interface PresenceEntry {
  conn: string;
  uid?: string;
  /** Public information about the user (token `info` claim, or the connect hook's `info`). */
  info?: unknown;
}

export interface PresenceView {
  topic: string;
  /** Connections subscribed. */
  connections: number;
  /** Distinct uids among them (anonymous connections are not users). */
  users: number;
  /** At most the rule's maxList entries. */
  list: PresenceEntry[];
}

interface TopicPresence {
  connections: Map<string, PresenceEntry>;
  users: Map<string, number>;
}

/**
 * Who is subscribed to each topic that has presence, on this node. Counts are
 * kept as connections join and leave (no scan per query); a query copies at
 * most `maxList` entries.
 */
export class LocalPresence {
  private readonly topics = new Map<string, TopicPresence>();

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
