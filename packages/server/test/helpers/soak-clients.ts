import { HeraldClient, type Subscription } from '@herald/client';
import WebSocket from 'ws';
import type { Emission, Period } from './soak-verdict.js';

/** One WebSocket connection of an SDK client: which node, when, what its history subscribe asked and was answered. */
export interface Connection {
  node: string;
  opened: number;
  connected?: number;
  /** The position the subscribe sent as `since` (the SDK's position when it connected). */
  since?: { offset: number; epoch: string };
  reply?: { at: number; recovered?: boolean; reason?: string; position?: { offset: number; epoch: string }; firstEmission: number };
  closed?: { at: number; why: string };
}

/** A fresh ("plain") subscribe to a topic with history, without a position: from its reply until the client unsubscribed. */
export interface Incarnation {
  topic: string;
  started: number;
  reply?: { at: number; position?: { offset: number; epoch: string } | undefined };
  /** When the subscription was last confirmed (its first reply, or the SDK's resubscribe after a reconnection). */
  confirmed?: number;
  /** When the client unsubscribed (Infinity: it never did). */
  ended: number;
  emissions: Emission[];
}

/** A topic without shared history followed by a client: its subscriptions (one per connection) and every copy received. */
export interface PlainFollow {
  topic: string;
  /** The topic keeps history in a node's memory (a recovery must answer `not_shared`, never replay a part). */
  memoryHistory: boolean;
  periods: Period[];
  open: Period | null;
  /** Copies received over the client's whole life, by message seq. */
  copies: Map<number, number>;
  notShared: number;
}

export interface SoakClientOptions {
  index: number;
  /** The URL of a node picked at random for each connection, and its name. */
  pickNode(): { url: string; name: string };
  /** A topic with history followed for the whole run (and recovered after each drop). */
  historyTopic?: string | undefined;
  /** A topic with history subscribed afresh again and again (plain subscribes). */
  freshTopic?: string | undefined;
  plainTopics: ReadonlyArray<{ topic: string; memoryHistory?: boolean }>;
  /** Start of the run (for the times in the problems). */
  started: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seqOf = (message: unknown): number => (message as { seq: number }).seq;

/**
 * An SDK client of the soak: a HeraldClient on a WebSocket that the soak
 * cuts at random, reconnecting to a node picked at random each time, with
 * what it emits recorded for the verdict.
 */
export class SoakClient {
  readonly client: HeraldClient;
  readonly connections: Connection[] = [];
  readonly emissions: Emission[] = [];
  readonly incarnations: Incarnation[] = [];
  readonly plain: PlainFollow[] = [];
  /** Violations seen as they happened (a failed recovery, a gap on a topic with history, a partial replay). */
  readonly problems: string[] = [];
  recoveries = 0;
  /** The first subscribe reply on the history topic (and the position it reported): every acknowledged publication after it is owed. */
  firstReply: { position?: { offset: number; epoch: string } | undefined } | undefined;
  private socket: WebSocket | null = null;

  constructor(readonly options: SoakClientOptions) {
    const self = this;
    class RandomNode extends WebSocket {
      constructor(_url: string | URL, protocols?: string | string[]) {
        const node = options.pickNode();
        super(node.url, protocols);
        self.socket = this;
        self.connections.push({ node: node.name, opened: Date.now() });
      }
    }
    this.client = new HeraldClient({ url: 'ws://unused/ws', WebSocket: RandomNode as never, minReconnectDelay: 50, maxReconnectDelay: 500, requestTimeout: 5000, pingInterval: 5000, pingTimeout: 5000 });
    if (options.historyTopic) this.followHistory(options.historyTopic);
    for (const { topic, memoryHistory } of options.plainTopics) this.followPlain(topic, memoryHistory ?? false);
    this.client.on('connected', () => {
      // The subscribe commands went out just before this event, asking from here.
      const connection = this.connections.at(-1);
      if (!connection) return;
      connection.connected = Date.now();
      const position = options.historyTopic ? this.client.subscription(options.historyTopic)?.position : undefined;
      if (position) connection.since = { ...position };
    });
    this.client.on('disconnected', ({ code, reason }) => {
      this.endPeriods();
      const connection = this.connections.at(-1);
      if (connection) connection.closed ??= { at: Date.now(), why: `${code} ${reason}` };
    });
    this.client.connect();
  }

  get index(): number {
    return this.options.index;
  }

  private at(): string {
    return `+${((Date.now() - this.options.started) / 1000).toFixed(3)}s`;
  }

  private followHistory(topic: string): void {
    const subscription = this.client.subscribe(topic);
    subscription.on('message', ({ message, context }) => {
      this.emissions.push({ offset: context.offset!, epoch: context.epoch!, seq: seqOf(message), at: Date.now(), connection: this.connections.length - 1 });
    });
    subscription.on('subscribed', (event) => {
      this.firstReply ??= { position: event.position };
      if (event.recovered) this.recoveries++;
      if (event.recovered === false) this.problems.push(`client ${this.index}: recovery on ${topic} failed (${event.reason})`);
      const connection = this.connections.at(-1);
      if (connection) connection.reply = { at: Date.now(), firstEmission: this.emissions.length, ...event };
    });
    subscription.on('gap', ({ reason }) => {
      this.problems.push(`client ${this.index}: gap (${reason}) on ${topic}, which has history, at ${this.at()} on node ${this.connections.at(-1)?.node}`);
    });
  }

  private followPlain(topic: string, memoryHistory: boolean): void {
    const follow: PlainFollow = { topic, memoryHistory, periods: [], open: null, copies: new Map(), notShared: 0 };
    this.plain.push(follow);
    const subscription = this.client.subscribe(topic);
    subscription.on('message', ({ message }) => {
      const seq = seqOf(message);
      follow.copies.set(seq, (follow.copies.get(seq) ?? 0) + 1);
      if (follow.open) follow.open.received.set(seq, (follow.open.received.get(seq) ?? 0) + 1);
    });
    subscription.on('subscribed', (event) => {
      follow.open = { from: Date.now(), to: Infinity, gaps: [], received: new Map() };
      follow.periods.push(follow.open);
      if (!memoryHistory || event.recovered === undefined) return;
      // History in one node's memory while other nodes publish: a recovery cannot vouch for the whole.
      if (event.recovered === false && event.reason === 'not_shared') follow.notShared++;
      else this.problems.push(`client ${this.index}: recovery on ${topic} (memory history, other nodes publishing) answered recovered=${event.recovered}${event.reason ? ` (${event.reason})` : ''}, not not_shared, at ${this.at()}`);
    });
    subscription.on('gap', () => {
      follow.open?.gaps.push(Date.now());
    });
  }

  /** Fresh subscribes to `freshTopic`, one after another, each held 0.8–2.5 s (the last until the end), while `running()`. */
  async rotate(running: () => boolean): Promise<void> {
    const topic = this.options.freshTopic;
    if (!topic) return;
    while (running()) {
      const incarnation: Incarnation = { topic, started: Date.now(), ended: Infinity, emissions: [] };
      this.incarnations.push(incarnation);
      const subscription: Subscription = this.client.subscribe(topic);
      subscription.on('subscribed', (event) => {
        incarnation.reply ??= { at: Date.now(), position: event.position };
        incarnation.confirmed = Date.now();
        if (event.recovered === false) this.problems.push(`client ${this.index}: recovery on ${topic} (fresh subscription) failed (${event.reason})`);
      });
      subscription.on('message', ({ message, context }) => {
        if (!incarnation.reply) this.problems.push(`client ${this.index}: ${topic} offset ${context.offset} emitted before the fresh subscription's reply`);
        incarnation.emissions.push({ offset: context.offset!, epoch: context.epoch!, seq: seqOf(message), at: Date.now(), connection: this.connections.length - 1 });
      });
      subscription.on('gap', ({ reason }) => this.problems.push(`client ${this.index}: gap (${reason}) on ${topic}, which has history (fresh subscription), at ${this.at()}`));
      await pause(800 + Math.random() * 1700);
      if (!running()) return;
      incarnation.ended = Date.now();
      // The server has left the topic once this answers (or the connection is gone): the next subscribe starts afresh.
      await subscription.unsubscribe().catch(() => undefined);
    }
  }

  private endPeriods(): void {
    for (const follow of this.plain) {
      if (follow.open) follow.open.to = Date.now();
      follow.open = null;
    }
  }

  /** Cuts the WebSocket (no close frame): the SDK notices and reconnects. */
  drop(): void {
    // The subscriptions end when the soak cuts the socket, not when the client notices.
    this.endPeriods();
    const connection = this.connections.at(-1);
    if (connection && this.socket) connection.closed ??= { at: Date.now(), why: 'cut by the soak' };
    this.socket?.terminate();
  }

  close(): void {
    this.endPeriods();
    this.client.close();
  }
}
