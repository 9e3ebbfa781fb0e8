import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import type { NodeStats, NodeView, PresenceEntry } from '../herald.js';

export type { NodeStats, NodeView };

interface RemoteNode {
  seq: number;
  users: Set<string>;
  stats: NodeStats;
  lastSeen: number;
  /** Snapshot being received in parts; `next` is the part expected next. */
  incoming: { seq: number; next: number; users: Set<string>; presence: Array<[string, PresenceEntry]> } | null;
  synced: boolean;
}

type Control =
  | { t: 'hb'; node: string; seq: number; stats: NodeStats }
  | { t: 'delta'; node: string; seq: number; add: string[]; del: string[]; pj?: Array<[string, PresenceEntry]>; pl?: Array<[string, string]> }
  | { t: 'snap'; node: string; seq: number; part: number; last: boolean; users: string[]; presence?: Array<[string, PresenceEntry]> }
  | { t: 'want'; node: string; from: string }
  | { t: 'bye'; node: string }
  | { t: 'push'; node: string; uids: string[]; payload: string; raw: string | null };

const SNAPSHOT_PART = 5000;

export interface RegistryHost {
  stats(): NodeStats;
  /** Every uid with a connection on this node. */
  localUsers(): Iterable<string>;
  /** A push forwarded by another node for users connected here. */
  deliverPush(uids: string[], payload: string, raw: string | null): void;
  /** This node's presence entries, for a snapshot. */
  localPresence(): Iterable<[string, PresenceEntry]>;
  /** Another node's connection joined or left a topic with presence. */
  remotePresence(node: string, change: 'join' | 'leave', topic: string, entry: PresenceEntry | string): void;
  /** Another node's full presence (a snapshot), or null when the node is gone. */
  remotePresenceReset(node: string, entries: Array<[string, PresenceEntry]> | null): void;
}

/**
 * The cluster's shared knowledge, replicated on every node through the
 * broker's control channels: which nodes are alive (heartbeats) and which
 * users each one holds (deltas, snapshots on request). A lookup (`is this
 * uid connected anywhere?`, `which nodes hold it?`) is a local map read: no
 * scatter-gather on a send. Deltas carry a per-node sequence number; a gap
 * (a message lost while the broker was down) makes the receiver ask that
 * node for a snapshot, and so does a snapshot with a part missing. A node
 * that misses three heartbeats is forgotten, with its users.
 */
export class ClusterRegistry {
  private readonly remotes = new Map<string, RemoteNode>();
  private sawPeers = false;
  private seq = 0;
  private added = new Set<string>();
  private removed = new Set<string>();
  private presenceJoined: Array<[string, PresenceEntry]> = [];
  private presenceLeft: Array<[string, string]> = [];
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  /** Control messages that other units handle (the stream relay), by their `t`. */
  private readonly routes = new Map<string, (message: never) => void>();

  constructor(
    readonly nodeId: string,
    private readonly broker: Broker,
    private readonly host: RegistryHost,
    private readonly interval: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), this.interval);
    this.timer.unref();
  }

  /** Announces this node (after every broker (re)connection): a snapshot, and a request for everyone else's. */
  announce(): void {
    this.sendSnapshot();
    this.heartbeat();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.send({ t: 'bye', node: this.nodeId });
  }

  userOnline(uid: string): void {
    if (!this.removed.delete(uid)) this.added.add(uid);
    this.scheduleFlush();
  }

  userOffline(uid: string): void {
    if (!this.added.delete(uid)) this.removed.add(uid);
    this.scheduleFlush();
  }

  /** A connection of this node joined a topic with presence: the other nodes are told. */
  presenceJoin(topic: string, entry: PresenceEntry): void {
    this.presenceJoined.push([topic, entry]);
    this.scheduleFlush();
  }

  presenceLeave(topic: string, conn: string): void {
    this.presenceLeft.push([topic, conn]);
    this.scheduleFlush();
  }

  /** Other live nodes that hold a connection of `uid`. */
  nodesHolding(uid: string): string[] {
    const nodes: string[] = [];
    for (const [id, node] of this.remotes) if (node.users.has(uid)) nodes.push(id);
    return nodes;
  }

  /** Forwards a push to the other nodes that hold any of `uids`; resolves with how many nodes it went to. */
  async forwardPush(uids: readonly string[], payload: string, raw: string | null): Promise<number> {
    const byNode = new Map<string, string[]>();
    for (const uid of uids) for (const node of this.nodesHolding(uid)) (byNode.get(node) ?? byNode.set(node, []).get(node)!).push(uid);
    await Promise.all([...byNode].map(([node, list]) => this.broker.sendToNode(node, JSON.stringify({ t: 'push', node: this.nodeId, uids: list, payload, raw }))));
    return byNode.size;
  }

  /**
   * Hands the control messages whose `t` is `type` to `handler` (another
   * unit's messages on the same channels: the stream relay's). The message
   * is parsed JSON from another node, an object with a `node` other than
   * this one; its other fields are unchecked.
   */
  route<M extends { t: string; node: string }>(type: M['t'], handler: (message: M) => void): void {
    this.routes.set(type, handler as (message: never) => void);
  }

  /**
   * Whether `node` may be a live node: this one, one heard from within
   * three heartbeats, or any while this node has not been running for three
   * heartbeats yet (it may not have heard from every node). False on a
   * registry that was never started (the memory broker: one node).
   */
  mayBeLive(node: string): boolean {
    if (node === this.nodeId || this.remotes.has(node)) return true;
    return this.startedAt !== 0 && Date.now() - this.startedAt < 3 * this.interval;
  }

  /** Every node known, this one first by id order with `self` (default: its figures now), the others as their last heartbeat told. */
  view(self: NodeStats = this.host.stats()): NodeView[] {
    const now = Date.now();
    const nodes: NodeView[] = [{ id: this.nodeId, self: true, lastSeen: now, ...self }];
    for (const [id, node] of this.remotes) nodes.push({ id, self: false, lastSeen: node.lastSeen, ...node.stats });
    return nodes.sort((a, b) => a.id.localeCompare(b.id));
  }

  onControl(text: string): void {
    let message: Control;
    try {
      message = JSON.parse(text) as Control;
    } catch {
      return;
    }
    if (!message || typeof message !== 'object' || message.node === this.nodeId) return;
    switch (message.t) {
      case 'hb': {
        const node = this.remote(message.node);
        node.stats = message.stats;
        if (!node.synced || message.seq !== node.seq) this.want(message.node);
        break;
      }
      case 'delta': {
        const node = this.remote(message.node);
        if (node.synced && message.seq === node.seq + 1) {
          for (const uid of message.add) node.users.add(uid);
          for (const uid of message.del) node.users.delete(uid);
          node.seq = message.seq;
          for (const [topic, entry] of message.pj ?? []) this.host.remotePresence(message.node, 'join', topic, entry);
          for (const [topic, conn] of message.pl ?? []) this.host.remotePresence(message.node, 'leave', topic, conn);
        } else if (!node.incoming) {
          this.want(message.node);
        }
        break;
      }
      case 'snap': {
        const node = this.remote(message.node);
        if (message.part === 0) node.incoming = { seq: message.seq, next: 0, users: new Set(), presence: [] };
        else if (!node.incoming || node.incoming.seq !== message.seq || node.incoming.next !== message.part) {
          // A part of this snapshot was lost: what arrived is not the node's whole state. Ask for another.
          node.incoming = null;
          this.want(message.node);
          break;
        }
        node.incoming.next = message.part + 1;
        for (const uid of message.users) node.incoming.users.add(uid);
        if (message.presence) node.incoming.presence.push(...message.presence);
        if (message.last) {
          node.users = node.incoming.users;
          this.host.remotePresenceReset(message.node, node.incoming.presence);
          node.seq = message.seq;
          node.incoming = null;
          node.synced = true;
        }
        break;
      }
      case 'want':
        // The asker is a live node too: a node that just joined learns of the others from their
        // requests for its snapshot (answering its announce), not only at their next heartbeat.
        this.remote(message.node);
        if (message.from === this.nodeId) this.sendSnapshot();
        break;
      case 'bye':
        this.forget(message.node);
        break;
      case 'push':
        this.host.deliverPush(message.uids, message.payload, message.raw);
        break;
      default: {
        const other = message as { t?: unknown };
        if (typeof other.t === 'string') this.routes.get(other.t)?.(other as never);
      }
    }
  }

  /** Whether another node has been heard of since this one started (its publications may exist). */
  get peersSeen(): boolean {
    return this.sawPeers;
  }

  private remote(id: string): RemoteNode {
    let node = this.remotes.get(id);
    if (!node) {
      this.sawPeers = true;
      node = { seq: 0, users: new Set(), stats: { connections: 0, users: 0, topics: 0, subscriptions: 0 }, lastSeen: 0, incoming: null, synced: false };
      this.remotes.set(id, node);
      // A node heard of for the first time may not know this one yet (it joined after this one's
      // announce): a heartbeat to it now, not at the next tick, so that it learns at once that other
      // nodes exist (history kept in its memory stops vouching for a recovery: server.ts).
      if (this.startedAt !== 0) this.greet(id);
    }
    node.lastSeen = Date.now();
    return node;
  }

  private forget(id: string): void {
    if (this.remotes.delete(id)) this.host.remotePresenceReset(id, null);
  }

  private want(node: string): void {
    void this.send({ t: 'want', node: this.nodeId, from: node });
  }

  private tick(): void {
    const deadline = Date.now() - 3 * this.interval;
    for (const [id, node] of this.remotes) {
      if (node.lastSeen < deadline) {
        this.forget(id);
        this.log.warn({ node: id }, 'cluster node silent for three heartbeats: forgotten');
      }
    }
    this.heartbeat();
  }

  /** This node's heartbeat, to one node only. */
  private greet(node: string): void {
    const message: Control = { t: 'hb', node: this.nodeId, seq: this.seq, stats: this.host.stats() };
    this.broker.sendToNode(node, JSON.stringify(message)).catch((err: Error) => this.log.debug({ err: err.message, node }, 'cluster greeting not sent'));
  }

  private heartbeat(): void {
    void this.send({ t: 'hb', node: this.nodeId, seq: this.seq, stats: this.host.stats() });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.added.size === 0 && this.removed.size === 0 && this.presenceJoined.length === 0 && this.presenceLeft.length === 0) return;
      const message: Control = { t: 'delta', node: this.nodeId, seq: ++this.seq, add: [...this.added], del: [...this.removed] };
      if (this.presenceJoined.length > 0) message.pj = this.presenceJoined;
      if (this.presenceLeft.length > 0) message.pl = this.presenceLeft;
      this.added = new Set();
      this.removed = new Set();
      this.presenceJoined = [];
      this.presenceLeft = [];
      void this.send(message);
    });
  }

  private sendSnapshot(): void {
    // Pending deltas are part of the snapshot.
    this.added = new Set();
    this.removed = new Set();
    this.presenceJoined = [];
    this.presenceLeft = [];
    const users = [...this.host.localUsers()];
    const presence = [...this.host.localPresence()];
    const seq = ++this.seq;
    const parts = Math.max(1, Math.ceil(users.length / SNAPSHOT_PART), Math.ceil(presence.length / SNAPSHOT_PART));
    for (let part = 0; part < parts; part++) {
      const slice = (list: unknown[]) => list.slice(part * SNAPSHOT_PART, (part + 1) * SNAPSHOT_PART);
      void this.send({ t: 'snap', node: this.nodeId, seq, part, last: part === parts - 1, users: slice(users) as string[], presence: slice(presence) as Array<[string, PresenceEntry]> });
    }
  }

  private async send(message: Control): Promise<void> {
    try {
      await this.broker.broadcast(JSON.stringify(message));
    } catch (err) {
      this.log.debug({ err: (err as Error).message, t: message.t }, 'cluster message not sent');
    }
  }
}
