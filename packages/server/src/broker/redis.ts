import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { HeraldError } from '../errors.js';
import type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from './broker.js';
import { decodeEnvelope, encodeEnvelope } from './envelope.js';
import { BrokerNamespace } from './namespace.js';
import type { HistoryStore } from '../history/history.js';
import { RedisHistory } from '../history/redis-history.js';
import { redisAnswer } from './redis-commands.js';

const ACCEPTED: PublishResult = Object.freeze({});

export interface RedisBrokerOptions {
  url: string;
  /** Sentinel addresses (host:port); empty for a direct connection to `url`. */
  sentinels: string[];
  sentinelName: string;
  /** Prepended to every topic to make its channel (and to the control channels): Herald's namespace on Redis. Not empty. */
  prefix: string;
  /** Topics (exact or `prefix*`) whose channel is the bare topic name, for raw publishers (see BrokerNamespace). */
  rawTopics?: readonly string[];
  nodeId: string;
  /** Longest wait (ms) for Redis to answer a command on the command connection (PUBLISH, the history scripts); default 5000. */
  publishTimeout?: number;
  log: Logger;
}

/**
 * Redis Pub/Sub between nodes (ioredis). Two connections per node: one for
 * commands, one in subscriber mode holding one channel per topic that has
 * local subscribers (channel = prefix + topic, or the bare topic for
 * `rawTopics`: see BrokerNamespace), plus the cluster's control channels.
 * ioredis reconnects with backoff; the channels the subscriber link holds
 * are this broker's to keep (see `subscribe` and `resubscribe`), not ioredis's.
 * Commands are never queued while disconnected: a publish during an
 * outage fails at once with `unavailable`. A command in flight when the
 * connection drops fails at once too, and one Redis does not answer within
 * `publishTimeout` fails then: either way it is never sent again (no offline
 * queue, no retry, no resend of unfulfilled commands after a reconnection),
 * so a caller told "unavailable" is never contradicted by a late delivery
 * made by a resend. The last two are answered in doubt (see redisAnswer):
 * a command already on the wire may still run, or may have run, and the
 * idempotency cache keeps such a publish's key.
 */
export class RedisBroker implements Broker {
  readonly name = 'redis';
  private pub: Redis | null = null;
  private sub: Redis | null = null;
  private sink: BrokerSink | null = null;
  private currentState: BrokerState = 'connecting';
  private readonly controlChannel: string;
  private readonly nodeChannel: string;
  readonly namespace: BrokerNamespace;
  private history: RedisHistory | undefined;
  /** The channels the subscriber link is to hold (one per topic with local subscribers), and the topic each carries. */
  private readonly topicsByChannel = new Map<string, string>();
  /** Channels given up while the subscriber link was not ready: Redis may hold them again after the reconnection. */
  private readonly released = new Set<string>();
  /** Subscribes made while the subscriber link was not ready: settled by the next `resubscribe`. */
  private waitingForLink: Array<() => void> = [];
  /** The subscriber link dropped since it was last ready: publications may have been missed. */
  private subscriberInterrupted = false;

  constructor(private readonly options: RedisBrokerOptions) {
    this.namespace = new BrokerNamespace('redis', options.prefix, options.rawTopics ?? []);
    this.controlChannel = `${options.prefix}herald|cluster`;
    this.nodeChannel = `${options.prefix}herald|node|${options.nodeId}`;
  }

  /** The command connection (for the Redis history store), once started. */
  get namespaces(): readonly BrokerNamespace[] {
    return [this.namespace];
  }

  /** History in this Redis, shared by every node; its appends publish on this broker's channels (history/redis-history.ts). */
  sharedHistory(): HistoryStore {
    return (this.history ??= new RedisHistory(() => this.commands(), this.options.prefix, (topic) => this.channelOf(topic), this.publishTimeout));
  }

  commands(): Redis | null {
    return this.pub;
  }

  /** Longest wait for a command on the command connection (ms). */
  private get publishTimeout(): number {
    return this.options.publishTimeout ?? 5_000;
  }

  get state(): BrokerState {
    return this.currentState;
  }

  topicProblem(topic: string): string | null {
    return this.namespace.topicProblem(topic);
  }

  /** The Redis channel carrying a topic. */
  channelOf(topic: string): string {
    return this.namespace.nameOf(topic);
  }

  async start(sink: BrokerSink): Promise<void> {
    this.sink = sink;
    const retryStrategy = (times: number): number => Math.min(100 * 2 ** Math.min(times, 6), 5000);
    const common = { retryStrategy, maxRetriesPerRequest: null, lazyConnect: false, connectionName: `herald-${this.options.nodeId}` };
    this.pub = this.client({
      ...common,
      enableOfflineQueue: false,
      // In flight when the connection drops: rejected at the close (not kept for the reconnection), never resent.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // No commandTimeout: its rejection would hide the answer Redis may still give. Every command on this
      // connection is answered within publishTimeout by redisAnswer, which follows it to its end.
    });
    this.sub = this.client({ ...common, enableOfflineQueue: true, autoResubscribe: true });
    // The subscriber link's channels are set right before the state is reported: a caughtUp() PING made
    // when the node hears that the link is back comes after them.
    this.sub.on('ready', () => this.resubscribe());
    for (const [role, client] of [['publisher', this.pub], ['subscriber', this.sub]] as const) {
      client.on('ready', () => this.update());
      client.on('close', () => this.update());
      client.on('end', () => this.update());
      client.on('error', (err: Error) => this.options.log.debug({ role, err: err.message }, 'redis connection error'));
    }
    this.sub.on('close', () => {
      this.subscriberInterrupted = true;
    });
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.receive(channel.toString('utf8'), message.toString('utf8')));
  }

  /**
   * The subscriber link is ready (first connection or reconnection): it
   * subscribes to every channel this node is to hold and unsubscribes from
   * those given up while it was down. Sent last: ioredis has by now written
   * its own resubscription of what the lost connection held, the commands
   * that were in flight when it dropped, and those it queued meanwhile, and it
   * may have written a SUBSCRIBE or UNSUBSCRIBE made while it connected ahead
   * of all of those (it lets them through before the connection is ready).
   * Redis runs one connection's commands in order, so these decide what the
   * link holds, whatever order the ones before them came in: otherwise an
   * UNSUBSCRIBE made before a SUBSCRIBE of the same channel could reach Redis
   * after it, and the node would go on believing it carries a topic whose
   * publications no longer come.
   */
  private resubscribe(): void {
    const sub = this.sub;
    if (!sub) return;
    const waiting = this.waitingForLink;
    this.waitingForLink = [];
    const done = () => {
      for (const settle of waiting) settle();
    };
    sub.subscribe(this.controlChannel, this.nodeChannel, ...this.topicsByChannel.keys()).then(done, (err: Error) => {
      this.options.log.warn({ err: err.message }, 'redis: resubscription failed');
      done();
    });
    const stale = [...this.released].filter((channel) => !this.topicsByChannel.has(channel));
    this.released.clear();
    if (stale.length > 0) sub.unsubscribe(...stale).catch((err: Error) => this.options.log.warn({ err: err.message }, 'redis: unsubscribe after reconnection failed'));
  }

  /** A connection to `url`, or to the master the sentinels name (credentials and db still come from `url`). */
  private client(options: RedisOptions): Redis {
    if (this.options.sentinels.length === 0) return new Redis(this.options.url, options);
    const url = new URL(this.options.url);
    return new Redis({
      ...options,
      sentinels: this.options.sentinels.map((address) => {
        const [host, port] = address.split(':') as [string, string];
        return { host, port: Number(port) };
      }),
      name: this.options.sentinelName,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    });
  }

  private update(): void {
    if (this.currentState === 'closed') return;
    const ready = this.pub?.status === 'ready' && this.sub?.status === 'ready';
    const next: BrokerState = ready ? 'ready' : this.currentState === 'connecting' ? 'connecting' : 'down';
    if (next === this.currentState) return;
    this.currentState = next;
    this.sink?.onStateChange(next, ready ? undefined : `publisher ${this.pub?.status}, subscriber ${this.sub?.status}`);
    // Both links up again (the history store reads on the command link): report the interruption.
    // resubscribe() has sent every SUBSCRIBE before this 'ready'; a caughtUp() round trip confirms them.
    if (ready && this.subscriberInterrupted) {
      this.subscriberInterrupted = false;
      this.sink?.onResumed?.(null);
    }
  }

  /**
   * A PING on the subscriber link: Redis answers it after every message it
   * queued for this node before. A PING lost with the link (cut, Redis
   * restarting) is sent again on the next one, after its resubscriptions:
   * rejects only after 5 attempts.
   */
  async caughtUp(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const sub = this.sub;
      if (!sub || this.currentState === 'closed') return;
      try {
        await sub.ping();
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  private receive(channel: string, text: string): void {
    const sink = this.sink;
    if (!sink) return;
    if (channel === this.controlChannel || channel === this.nodeChannel) {
      sink.onControl(text);
      return;
    }
    const topic = this.topicsByChannel.get(channel);
    if (topic === undefined) return;
    const { node, publication, refused } = decodeEnvelope(topic, text);
    if (node === this.options.nodeId) return;
    if (refused) this.options.log.debug({ topic, node, problem: refused }, 'redis: a Herald envelope with invalid tags or event (dropped them, kept the payload)');
    sink.deliver(publication);
  }

  publish(publication: Publication): Promise<PublishResult> {
    const pub = this.pub;
    if (!pub || this.currentState !== 'ready') return Promise.reject(new HeraldError('unavailable', `broker redis is ${this.currentState}`));
    const command = pub.publish(this.namespace.nameOf(publication.topic), encodeEnvelope(this.options.nodeId, publication));
    return redisAnswer(command, this.publishTimeout, 'broker redis').then(() => ACCEPTED);
  }

  /**
   * Holds the topic's channel on the subscriber link. Resolves once Redis
   * confirmed it: at once when the link is ready, else when it is ready
   * again (`resubscribe`). A link that is not ready is sent nothing.
   */
  subscribe(topic: string): Promise<void> | void {
    const channel = this.namespace.nameOf(topic);
    this.topicsByChannel.set(channel, topic);
    this.released.delete(channel);
    const sub = this.sub;
    if (!sub || this.currentState === 'closed') return;
    if (sub.status !== 'ready') return new Promise<void>((resolve) => this.waitingForLink.push(resolve));
    return sub.subscribe(channel).then(
      () => undefined,
      (err: Error) => this.options.log.warn({ topic, err: err.message }, 'redis subscribe failed'),
    );
  }

  /** Gives the topic's channel up (when the link is not ready: on its next `resubscribe`). */
  unsubscribe(topic: string): void {
    const channel = this.namespace.nameOf(topic);
    this.topicsByChannel.delete(channel);
    const sub = this.sub;
    if (!sub || this.currentState === 'closed') return;
    if (sub.status !== 'ready') {
      this.released.add(channel);
      return;
    }
    sub.unsubscribe(channel).catch((err: Error) => this.options.log.warn({ topic, err: err.message }, 'redis unsubscribe failed'));
  }

  async broadcast(message: string): Promise<void> {
    if (this.currentState !== 'ready' || !this.pub) throw new HeraldError('unavailable', 'broker redis is not ready');
    await redisAnswer(this.pub.publish(this.controlChannel, message), this.publishTimeout, 'broker redis');
  }

  async sendToNode(nodeId: string, message: string): Promise<void> {
    if (this.currentState !== 'ready' || !this.pub) throw new HeraldError('unavailable', 'broker redis is not ready');
    await redisAnswer(this.pub.publish(`${this.options.prefix}herald|node|${nodeId}`, message), this.publishTimeout, 'broker redis');
  }

  async close(): Promise<void> {
    this.currentState = 'closed';
    for (const settle of this.waitingForLink.splice(0)) settle();
    await Promise.all([this.pub, this.sub].map((client) => client?.quit().catch(() => client.disconnect())));
  }
}
