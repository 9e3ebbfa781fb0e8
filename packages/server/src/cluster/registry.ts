import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import type { NodeStats, NodeView, PresenceEntry } from '../herald.js';

export type { NodeStats, NodeView };

interface RemoteNode {
  /** The incarnation (process) of the node its messages come from: another one under the same id means this one is gone. */
  inc: string | undefined;
  seq: number;
  users: Set<string>;
  /** Its open topics among those whose occupancy is tracked (lifecycle events: `RegistryHost.localTopics`). */
  topics: Set<string>;
  stats: NodeStats;
  lastSeen: number;
  /** Snapshot being received in parts; `next` is the part expected next. */
  incoming: { seq: number; next: number; users: Set<string>; topics: Set<string>; presence: Array<[string, PresenceEntry]> } | null;
  synced: boolean;
  /** Its last heartbeat said it is ready to emit cluster-wide events (`ClusterRegistry.ready`). */
  ready: boolean;
}

/** Every registry message carries `inc`, its sender's incarnation (a random id per process, per registry). */
type Control =
  | { t: 'hb'; node: string; inc?: string; seq: number; stats: NodeStats; ready?: boolean }
  | { t: 'delta'; node: string; inc?: string; seq: number; add: string[]; del: string[]; pj?: Array<[string, PresenceEntry]>; pl?: Array<[string, string]>; to?: string[]; tc?: string[] }
  | { t: 'snap'; node: string; inc?: string; seq: number; part: number; last: boolean; users: string[]; presence?: Array<[string, PresenceEntry]>; topics?: string[] }
  | { t: 'want'; node: string; inc?: string; from: string }
  | { t: 'bye'; node: string; inc?: string }
  | { t: 'push'; node: string; inc?: string; uids: string[]; payload: string; raw: string | null };

const SNAPSHOT_PART = 5000;

/** Adds (or deletes) each of `items` in `set`; returns those that changed it. */
function changed(set: Set<string>, items: readonly string[], add: boolean): string[] {
  const out: string[] = [];
  for (const item of items) {
    if (set.has(item) === add) continue;
    if (add) set.add(item);
    else set.delete(item);
    out.push(item);
  }
  return out;
}

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
  /** This node's open topics whose occupancy is tracked (lifecycle events), for a snapshot. None when absent. */
  localTopics?(): Iterable<string>;
  /**
   * Another node's users changed: uids it got (`added`) or lost (`removed`),
   * told after the registry's view changed (`nodesHolding` already answers
   * with the change), from a delta, a snapshot's difference with what was
   * known, or the node being forgotten (every uid it held, removed; the
   * node is no longer among `candidates()`).
   */
  remoteUsers?(node: string, added: readonly string[], removed: readonly string[]): void;
  /** Another node's tracked topics changed (opened, closed), as `remoteUsers`. */
  remoteTopics?(node: string, opened: readonly string[], closed: readonly string[]): void;
  /**
   * Another node is forgotten, before `remoteUsers`/`remoteTopics` tell what
   * it held: `crashed` when it fell silent for three heartbeats, false on
   * its goodbye (it shut down in order).
   */
  remoteGone?(node: string, crashed: boolean): void;
  /** Another node's heartbeat arrived: it was alive a moment ago. */
  remoteAlive?(node: string): void;
  /**
   * This node just became a candidate (ready, and its heartbeat said so)
   * while it knows no other ready candidate: no node was emitting the
   * cluster-wide events of what happened before (a cold start of the whole
   * cluster, a lone node, a broker outage of every node), so this node
   * tells the present state (events/: the catch-up).
   */
  readyAlone?(): void;
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
  private topicsOpened = new Set<string>();
  private topicsClosed = new Set<string>();
  /** When this node last announced itself after a broker (re)connection; 0: never. */
  private announcedAt = 0;
  /** What this node's last heartbeat said of its readiness. */
  private saidReady = false;
  private presenceJoined: Array<[string, PresenceEntry]> = [];
  private presenceLeft: Array<[string, string]> = [];
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  /** This process's incarnation: another process under the same node id (a quick restart) has another one. */
  readonly incarnation = randomBytes(9).toString('base64url');
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
    this.announcedAt = Date.now();
    this.sendSnapshot();
    this.heartbeat();
  }

  /**
   * Whether this node may emit cluster-wide lifecycle events (events/): a
   * lone node (the memory broker) always; in a cluster, once its broker is
   * ready, `readinessDelay` after its last announce (it has heard every live
   * node by then) and while it holds a full snapshot of every node it
   * knows. A node whose broker is down is never ready: it cannot know what
   * the others hold.
   */
  get ready(): boolean {
    if (this.startedAt === 0) return this.broker.name === 'memory';
    if (this.broker.state !== 'ready' || this.announcedAt === 0 || Date.now() - this.announcedAt < this.readinessDelay) return false;
    for (const node of this.remotes.values()) if (!node.synced) return false;
    return true;
  }

  /**
   * How long after its announce a node may count itself ready, ms: one
   * heartbeat interval plus a margin (a tenth of it, at least 100 ms and at
   * most 1 s) for the broker's latency and the timers' drift. Every live
   * node heartbeats once per interval (and answers an announce at once with
   * a request for its snapshot), so by then every live node has been heard
   * of; readiness also waits for a full snapshot of each of them.
   */
  get readinessDelay(): number {
    return this.interval + Math.min(1_000, Math.max(100, this.interval / 10));
  }

  /**
   * The nodes that may emit a cluster-wide event, by id: this one when it is
   * ready, and every other node that is synced and whose last heartbeat said
   * it was ready. Every node computes the same set once heartbeats agree.
   */
  candidates(): string[] {
    // This node counts itself once its heartbeat told the others it is ready, as they count it.
    const ids = this.saidReady && this.ready ? [this.nodeId] : [];
    for (const [id, node] of this.remotes) if (node.synced && node.ready) ids.push(id);
    return ids;
  }

  /** A tracked topic got its first subscriber on this node (lifecycle events): the other nodes are told. */
  topicOpened(topic: string): void {
    if (!this.topicsClosed.delete(topic)) this.topicsOpened.add(topic);
    this.scheduleFlush();
  }

  /** A tracked topic lost its last subscriber on this node. */
  topicClosed(topic: string): void {
    if (!this.topicsOpened.delete(topic)) this.topicsClosed.add(topic);
    this.scheduleFlush();
  }

  /** Every uid another live node holds (duplicates across nodes). */
  *remoteUsers(): Iterable<string> {
    for (const node of this.remotes.values()) yield* node.users;
  }

  /** Every tracked topic another live node has open (duplicates across nodes). */
  *remoteTopics(): Iterable<string> {
    for (const node of this.remotes.values()) yield* node.topics;
  }

  /** How many other live nodes hold a subscriber of a tracked topic. */
  topicHolders(topic: string): number {
    let count = 0;
    for (const node of this.remotes.values()) if (node.topics.has(topic)) count++;
    return count;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.send({ t: 'bye', node: this.nodeId, inc: this.incarnation });
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
    if (message.t === 'hb' || message.t === 'delta' || message.t === 'snap' || message.t === 'want' || message.t === 'bye') {
      // Another process under a known node's id (a restart quicker than three heartbeats): the one
      // known is gone without a goodbye, and what it held leaves as after a crash before the new one is taken.
      const known = this.remotes.get(message.node);
      if (known && typeof message.inc === 'string' && known.inc !== undefined && known.inc !== message.inc) {
        this.log.warn({ node: message.node }, 'cluster node restarted (another incarnation): the previous one forgotten');
        this.forget(message.node, true);
        if (message.t === 'bye') return;
      }
    }
    switch (message.t) {
      case 'hb': {
        const node = this.remote(message.node, message.inc);
        node.stats = message.stats;
        node.ready = message.ready === true;
        this.host.remoteAlive?.(message.node);
        if (!node.synced || message.seq !== node.seq) this.want(message.node);
        break;
      }
      case 'delta': {
        const node = this.remote(message.node, message.inc);
        if (node.synced && message.seq === node.seq + 1) {
          const added = changed(node.users, message.add, true);
          const removed = changed(node.users, message.del, false);
          const opened = changed(node.topics, message.to ?? [], true);
          const closed = changed(node.topics, message.tc ?? [], false);
          node.seq = message.seq;
          if (added.length > 0 || removed.length > 0) this.host.remoteUsers?.(message.node, added, removed);
          if (opened.length > 0 || closed.length > 0) this.host.remoteTopics?.(message.node, opened, closed);
          for (const [topic, entry] of message.pj ?? []) this.host.remotePresence(message.node, 'join', topic, entry);
          for (const [topic, conn] of message.pl ?? []) this.host.remotePresence(message.node, 'leave', topic, conn);
        } else if (!node.incoming) {
          this.want(message.node);
        }
        break;
      }
      case 'snap': {
        const node = this.remote(message.node, message.inc);
        if (message.part === 0) node.incoming = { seq: message.seq, next: 0, users: new Set(), topics: new Set(), presence: [] };
        else if (!node.incoming || node.incoming.seq !== message.seq || node.incoming.next !== message.part) {
          // A part of this snapshot was lost: what arrived is not the node's whole state. Ask for another.
          node.incoming = null;
          this.want(message.node);
          break;
        }
        node.incoming.next = message.part + 1;
        for (const uid of message.users) node.incoming.users.add(uid);
        for (const topic of message.topics ?? []) node.incoming.topics.add(topic);
        if (message.presence) node.incoming.presence.push(...message.presence);
        if (message.last) {
          const { users, topics, presence } = node.incoming;
          const [usersBefore, topicsBefore] = [node.users, node.topics];
          node.users = users;
          node.topics = topics;
          node.seq = message.seq;
          node.incoming = null;
          node.synced = true;
          // The difference with what was known, told once the new state is in place.
          const added = [...users].filter((uid) => !usersBefore.has(uid));
          const removed = [...usersBefore].filter((uid) => !users.has(uid));
          if (added.length > 0 || removed.length > 0) this.host.remoteUsers?.(message.node, added, removed);
          const opened = [...topics].filter((topic) => !topicsBefore.has(topic));
          const closed = [...topicsBefore].filter((topic) => !topics.has(topic));
          if (opened.length > 0 || closed.length > 0) this.host.remoteTopics?.(message.node, opened, closed);
          this.host.remotePresenceReset(message.node, presence);
        }
        break;
      }
      case 'want':
        // The asker is a live node too: a node that just joined learns of the others from their
        // requests for its snapshot (answering its announce), not only at their next heartbeat.
        this.remote(message.node, message.inc);
        if (message.from === this.nodeId) this.sendSnapshot();
        break;
      case 'bye':
        this.forget(message.node, false);
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

  private remote(id: string, inc: string | undefined): RemoteNode {
    let node = this.remotes.get(id);
    if (!node) {
      this.sawPeers = true;
      node = { inc, seq: 0, users: new Set(), topics: new Set(), stats: { connections: 0, users: 0, topics: 0, subscriptions: 0 }, lastSeen: 0, incoming: null, synced: false, ready: false };
      this.remotes.set(id, node);
      // A node heard of for the first time may not know this one yet (it joined after this one's
      // announce): a heartbeat to it now, not at the next tick, so that it learns at once that other
      // nodes exist (history kept in its memory stops vouching for a recovery: server.ts).
      if (this.startedAt !== 0) this.greet(id);
    }
    node.inc ??= inc;
    node.lastSeen = Date.now();
    return node;
  }

  /** Drops a node and everything it held; what its departure changes is told after it is gone (another node emits its events). */
  private forget(id: string, crashed: boolean): void {
    const node = this.remotes.get(id);
    if (!node) return;
    this.remotes.delete(id);
    this.host.remoteGone?.(id, crashed);
    if (node.users.size > 0) this.host.remoteUsers?.(id, [], [...node.users]);
    if (node.topics.size > 0) this.host.remoteTopics?.(id, [], [...node.topics]);
    this.host.remotePresenceReset(id, null);
  }

  private want(node: string): void {
    void this.send({ t: 'want', node: this.nodeId, inc: this.incarnation, from: node });
  }

  private tick(): void {
    const deadline = Date.now() - 3 * this.interval;
    for (const [id, node] of this.remotes) {
      if (node.lastSeen < deadline) {
        this.forget(id, true);
        this.log.warn({ node: id }, 'cluster node silent for three heartbeats: forgotten');
      }
    }
    this.heartbeat();
  }

  /** This node's heartbeat, to one node only. */
  private greet(node: string): void {
    const message: Control = { t: 'hb', node: this.nodeId, inc: this.incarnation, seq: this.seq, stats: this.host.stats(), ready: this.saidReady };
    this.broker.sendToNode(node, JSON.stringify(message)).catch((err: Error) => this.log.debug({ err: err.message, node }, 'cluster greeting not sent'));
  }

  private heartbeat(): void {
    const wasReady = this.saidReady;
    this.saidReady = this.ready;
    void this.send({ t: 'hb', node: this.nodeId, inc: this.incarnation, seq: this.seq, stats: this.host.stats(), ready: this.saidReady });
    if (this.saidReady && !wasReady && this.candidates().length === 1) this.host.readyAlone?.();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.added.size === 0 && this.removed.size === 0 && this.presenceJoined.length === 0 && this.presenceLeft.length === 0 && this.topicsOpened.size === 0 && this.topicsClosed.size === 0) return;
      const message: Control = { t: 'delta', node: this.nodeId, inc: this.incarnation, seq: ++this.seq, add: [...this.added], del: [...this.removed] };
      if (this.presenceJoined.length > 0) message.pj = this.presenceJoined;
      if (this.presenceLeft.length > 0) message.pl = this.presenceLeft;
      if (this.topicsOpened.size > 0) message.to = [...this.topicsOpened];
      if (this.topicsClosed.size > 0) message.tc = [...this.topicsClosed];
      this.added = new Set();
      this.removed = new Set();
      this.topicsOpened = new Set();
      this.topicsClosed = new Set();
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
    this.topicsOpened = new Set();
    this.topicsClosed = new Set();
    const users = [...this.host.localUsers()];
    const presence = [...this.host.localPresence()];
    const topics = [...(this.host.localTopics?.() ?? [])];
    const seq = ++this.seq;
    const parts = Math.max(1, Math.ceil(users.length / SNAPSHOT_PART), Math.ceil(presence.length / SNAPSHOT_PART), Math.ceil(topics.length / SNAPSHOT_PART));
    for (let part = 0; part < parts; part++) {
      const slice = (list: unknown[]) => list.slice(part * SNAPSHOT_PART, (part + 1) * SNAPSHOT_PART);
      const message: Control = { t: 'snap', node: this.nodeId, inc: this.incarnation, seq, part, last: part === parts - 1, users: slice(users) as string[], presence: slice(presence) as Array<[string, PresenceEntry]> };
      if (topics.length > 0) message.topics = slice(topics) as string[];
      void this.send(message);
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
