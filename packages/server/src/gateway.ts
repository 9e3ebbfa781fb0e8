import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode, CLOSE_CODE_MEANINGS } from '@herald/protocol';
import { CLOSED_WHILE_CONNECTING, closeCodeFor, type Authenticator } from './auth/authenticator.js';
import type { Broker, LhttpPublication, PublishResult } from './broker/broker.js';
import type { ClusterRegistry, NodeStats, NodeView } from './cluster/registry.js';
import type { HeraldConfig } from './config.js';
import { HeraldError } from './errors.js';
import type { BatchItem, ConnectionView, DisconnectOptions, Herald, HeraldEvents, HeraldStatus, HistoryOptions, HistoryPage, PublishOptions, PushResult, UserResult, UserSubscribeOptions, UserUnsubscribeOptions } from './herald.js';
import type { HistoryStore } from './history/history.js';
import type { Recovery } from './history/recovery.js';
import type { TopicSubscriptions } from './broker/subscriptions.js';
import type { Flusher } from './hub/flusher.js';
import type { Hub } from './hub/hub.js';
import { Session, type SessionHost } from './hub/session.js';
import type { Logger } from './log.js';
import type { Metrics, PublicationSource } from './metrics/metrics.js';
import type { Policy } from './policy/policy.js';
import type { PresenceView } from './presence/presence.js';
import type { PresenceTracker } from './presence/tracker.js';
import type { CommandHandler } from './protocols/json/commands.js';
import type { Protocol } from './protocols/protocol.js';
import type { Protocols } from './protocols/registry.js';
import type { Publisher } from './publish/publisher.js';
import type { Pusher } from './publish/push.js';
import type { ConnectionGate, Refusal } from './transport/admission.js';
import type { Heartbeat } from './transport/heartbeat.js';
import type { Transport } from './transport/transport.js';
import type { UpgradeHost } from './transport/websocket.js';
import type { Users } from './users/users.js';
import { nodeStats, nodeStatus, type StatusSource } from './cluster/status.js';
import type { LifecycleEvents } from './events/events.js';
import type { EventSinks } from './events/sinks.js';

/** The services the gateway holds, built by the composition root (server.ts). */
export interface GatewayParts {
  readonly config: HeraldConfig;
  readonly log: Logger;
  readonly nodeId: string;
  readonly broker: Broker;
  readonly hub: Hub;
  readonly flusher: Flusher;
  readonly metrics: Metrics;
  readonly cluster: ClusterRegistry;
  readonly policy: Policy;
  readonly publisher: Publisher;
  readonly pusher: Pusher;
  readonly recovery: Recovery;
  readonly history: HistoryStore;
  readonly subscriptions: TopicSubscriptions;
  readonly presence: PresenceTracker;
  readonly auth: Authenticator;
  readonly protocols: Protocols;
  readonly gate: ConnectionGate;
  readonly heartbeat: Heartbeat;
  /** The server API on users' connections (users/users.ts). */
  readonly users: Users;
  /** Set under `herald serve --workers`: the node this worker is part of. */
  readonly workerOf: string | undefined;
  /** Lifecycle events (events/): in-process listeners subscribe with `events.on`. */
  readonly events: LifecycleEvents;
  /** Where this node's lifecycle events go (webhooks, the events topic); flushed on shutdown. */
  readonly eventSinks: EventSinks;
  topicProblem(topic: string): string | null;
}

/** What the gateway serves on once the root has built the HTTP server: its address, and how to stop it. */
export interface Endpoint {
  /** The HTTP server (it also takes the WebSocket upgrades). */
  readonly server: Server;
  address(): AddressInfo | string | null;
  readonly listening: boolean;
  /** Stops listening; resolves when in-flight requests and every socket are done. */
  close(): Promise<void>;
}

/**
 * The gateway: the connection lifecycle (accept → open → close → forget),
 * events, status and shutdown, over services that each keep one policy
 * (publisher, pusher, recovery, presence, authenticator, protocols,
 * admission); the library API is one-line delegations to them.
 */
export class Gateway implements Herald, SessionHost, UpgradeHost {
  readonly config: HeraldConfig;
  readonly log: Logger;
  readonly nodeId: string;
  readonly broker: Broker;
  readonly hub: Hub;
  readonly flusher: Flusher;
  readonly parts: GatewayParts;
  readonly lhttp: Herald['lhttp'];
  private readonly events = new EventEmitter<HeraldEvents>();
  private readonly startedAt = Date.now();
  private readonly detached = new WeakSet<Session>();
  private readonly counts = { framesIn: 0, framesOut: 0, slowConsumers: 0 };
  private sessionSeq = 0;
  private closingPromise: Promise<void> | null = null;
  private endpoint: Endpoint | null = null;

  constructor(parts: GatewayParts) {
    this.parts = parts;
    ({ config: this.config, log: this.log, nodeId: this.nodeId, broker: this.broker, hub: this.hub, flusher: this.flusher } = parts);
    this.lhttp = parts.protocols.lhttpApi;
  }

  // ---- library API: one-line delegations ---------------------------------

  get address(): AddressInfo { return this.endpoint?.address() as AddressInfo; }
  get port(): number { return this.address.port; }
  get url(): string {
    const { address, port, family } = this.address;
    const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : family === 'IPv6' ? `[${address}]` : address;
    return `http://${host}:${port}`;
  }
  get closing(): boolean { return this.closingPromise !== null; }
  get ready(): boolean { return !this.closing && this.broker.state === 'ready' && this.endpoint?.listening === true; }

  publish(topic: string, message: unknown, source?: PublicationSource, options?: PublishOptions): Promise<PublishResult> { return this.parts.publisher.publish(topic, message, source, options); }
  publishMany(items: ReadonlyArray<BatchItem>, source?: PublicationSource): Promise<PublishResult[]> { return this.parts.publisher.publishMany(items, source); }
  broadcast(topics: readonly string[], message: unknown, source?: PublicationSource, options?: PublishOptions): Promise<PublishResult[]> { return this.parts.publisher.broadcast(topics, message, source, options); }
  publishLhttp(topic: string, message: LhttpPublication, body: string, source?: PublicationSource): Promise<PublishResult> { return this.parts.publisher.publishLhttp(topic, message, body, source); }
  send(uid: string | readonly string[], message: unknown): Promise<PushResult> { return this.parts.pusher.send(uid, message); }
  sendSeed(uid: string, text: string): Promise<PushResult> { return this.parts.pusher.sendSeed(uid, text); }
  historyOf(topic: string, options?: HistoryOptions): Promise<HistoryPage> { return this.parts.recovery.page(topic, options); }
  presence(topic: string): PresenceView { return this.parts.presence.view(topic); }
  busiestTopics(limit: number): Array<{ topic: string; subscribers: number }> { return this.hub.busiestTopics(limit); }
  topicProblem(topic: string): string | null { return this.parts.topicProblem(topic); }
  clusterView(): NodeView[] { return this.parts.cluster.view(); }
  isUserConnected(uid: string): boolean { return this.hub.userSessions(uid).size > 0 || this.parts.cluster.nodesHolding(uid).length > 0; }
  userConnections(uid: string): number { return this.hub.userSessions(uid).size; }
  handle(action: string, handler: CommandHandler): this { this.parts.protocols.json.handle(action, handler); return this; }
  on<E extends keyof HeraldEvents>(event: E, listener: (...args: HeraldEvents[E]) => void): this { this.events.on(event, listener as never); return this; }
  off<E extends keyof HeraldEvents>(event: E, listener: (...args: HeraldEvents[E]) => void): this { this.events.off(event, listener as never); return this; }
  subscribeUser(uid: string, topics: string | readonly string[], options?: UserSubscribeOptions): Promise<UserResult> { return this.parts.users.subscribe(uid, topics, options); }
  unsubscribeUser(uid: string, topics: string | readonly string[], options?: UserUnsubscribeOptions): Promise<UserResult> { return this.parts.users.unsubscribe(uid, topics, options); }
  listConnections(uid: string): Promise<ConnectionView[]> { return this.parts.users.list(uid); }
  async disconnectUser(uid: string, options?: DisconnectOptions): Promise<UserResult> { return this.parts.users.disconnect(uid, options).all; }
  disconnect(uid: string, reason = 'disconnected by the server'): number {
    if (typeof uid !== 'string' || uid === '') return 0;
    const { local, all } = this.parts.users.disconnect(uid, { reason: reason.slice(0, 100) });
    all.catch((err: unknown) => this.log.warn({ uid, err: (err as Error).message }, 'disconnect: not every node answered'));
    return local;
  }

  /** This process's figures, as its cluster heartbeats tell them to the other nodes. */
  nodeStats(): NodeStats { return nodeStats(this.statusSource()); }

  status(): HeraldStatus { return nodeStatus(this.statusSource()); }

  private statusSource(): StatusSource {
    return { hub: this.hub, broker: this.broker, cluster: this.parts.cluster, nodeId: this.nodeId, workerOf: this.parts.workerOf, startedAt: this.startedAt, counts: this.counts, publications: this.parts.publisher.publications };
  }

  /** Emits a broker state change to the library's listeners. */
  brokerState(...args: HeraldEvents['broker']): void { this.events.emit('broker', ...args); }

  /** From now on the gateway reports this endpoint's address and stops it on close. */
  serve(endpoint: Endpoint): void { this.endpoint = endpoint; }

  /** The HTTP server it serves on (null before `serve`). */
  get server(): Server | null { return this.endpoint?.server ?? null; }

  close(): Promise<void> {
    this.closingPromise ??= this.shutdown();
    return this.closingPromise;
  }

  // ---- connection lifecycle ------------------------------------------------

  get maxQueueBytes(): number { return this.config.limits.maxQueueBytes; }
  get closeTimeout(): number { return this.config.shutdown.timeout; }
  get supportedProtocols(): string[] { return this.parts.protocols.names; }
  protocolFor(path: string, offered: Set<string>): Protocol | null | undefined { return this.parts.protocols.forPath(path, offered); }
  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null> { return this.parts.gate.admit(request); }
  release(request: IncomingMessage): void { this.parts.gate.release(request); }
  admitFrame(session: Session): HeraldError | null { return this.parts.policy.admitFrame(session); }

  /**
   * A new connection, admitted: a session in the hub, its identity settled
   * (maybe asynchronously), then open. `credentials.token`: a token the
   * transport took from elsewhere than the URL (HTTP streaming's
   * `Authorization: Bearer`), used instead of `?token=`.
   */
  accept(transport: Transport, request: IncomingMessage, protocol: Protocol, credentials?: { token?: string }): Session {
    const id = protocol.connectionId?.() ?? `${this.nodeId.slice(-8)}-${(++this.sessionSeq).toString(36)}`;
    const ip = this.parts.gate.clientIp(request);
    const session = new Session(id, transport, protocol.codec, protocol.handler, ip, this);
    this.parts.policy.attach(session);
    this.parts.auth.keepHeaders(session, request);
    this.hub.add(session);
    this.parts.metrics.connects.inc({ protocol: protocol.codec.name });
    this.log.info({ conn: id, ip, protocol: protocol.codec.name }, 'connection opened');
    const bearer = credentials?.token;
    if (!this.parts.auth.needed(request, bearer)) {
      this.opened(session);
      return session;
    }
    this.parts.auth.connect(session, request, bearer).then(
      (topics) => {
        this.opened(session);
        for (const topic of topics) this.hub.subscribe(session, topic);
      },
      (err: unknown) => {
        if (session.state !== 'connecting') return void this.log.debug({ conn: id }, CLOSED_WHILE_CONNECTING);
        const code = err instanceof HeraldError ? err.code : 'internal';
        if (!(err instanceof HeraldError)) this.log.error({ conn: id, err }, 'connect hook failed');
        this.closeSession(session, closeCodeFor(code), err instanceof HeraldError ? err.message : 'connection refused');
      },
    );
    return session;
  }

  private opened(session: Session): void {
    if (session.state !== 'connecting') return;
    if (!this.config.auth.anonymous && session.uid === undefined && !session.handler.canLogIn) {
      // Nothing it sends could identify it: refused before any of its frames is handled.
      this.closeSession(session, CloseCode.UNAUTHORIZED, `login required: a ${session.codec.name} connection identifies itself with ?token= or the connect hook`);
      return;
    }
    this.parts.auth.startLoginDeadline(session);
    this.parts.auth.startRefresh(session);
    // The protocol's own start (a raw endpoint's subscriptions); it may close the connection.
    session.handler.onOpen?.(session);
    if (session.state !== 'connecting') return;
    session.open();
    // The protocol's greeting may have closed it (a Pusher app over its quota, an unknown app key).
    if ((session.state as string) !== 'open') return;
    this.parts.users.opened(session);
    this.events.emit('connect', session);
  }

  /** Closes a session from the server side and takes it out of the hub at once. */
  closeSession(session: Session, code: number, reason: string): void {
    session.close(code, reason);
    this.detach(session, code, reason, 'server');
  }

  terminateSession(session: Session, reason: string): void {
    session.terminate(1006, reason);
    this.detach(session, 1006, reason, 'server');
  }

  onClosed(session: Session, code: number, reason: string, by: 'server' | 'client'): void {
    // Counted here, once the transport is gone: frames that arrive after a server-side close count too.
    this.counts.framesIn += session.framesIn;
    this.detach(session, code, reason, by);
  }

  onSlowConsumer(session: Session, queuedBytes: number): void {
    this.counts.slowConsumers++;
    this.parts.metrics.slowConsumers.inc();
    this.log.warn({ conn: session.id, queuedBytes, limit: this.maxQueueBytes }, 'slow consumer: closing');
    this.closeSession(session, CloseCode.TRY_AGAIN_LATER, `slow consumer: over ${this.maxQueueBytes} bytes queued`);
  }

  onHandlerError(session: Session, err: unknown): void { this.reportError(session, err); }

  reportError(session: Session, err: unknown): void { this.log.error({ conn: session.id, err }, 'unexpected error while handling a frame'); }

  /** Removes a session from the hub, once, with a log line and a `disconnect` event. */
  private detach(session: Session, code: number, reason: string, by: 'server' | 'client'): void {
    if (this.detached.has(session)) return;
    this.detached.add(session);
    this.hub.remove(session);
    session.handler.onClose?.(session);
    session.setIdentityTimer(undefined);
    this.parts.gate.releaseAddress(session.ip);
    this.counts.framesOut += session.framesOut;
    this.log.info(
      { conn: session.id, code, reason: reason || CLOSE_CODE_MEANINGS[code], by, ms: Date.now() - session.connectedAt, in: session.framesIn, out: session.framesOut },
      'connection closed',
    );
    this.parts.metrics.disconnects.inc({ code: String(code), by });
    this.events.emit('disconnect', session, { code, reason, by });
  }

  /**
   * Keeps listening while it drains, so that `/readyz` answers 503 (and
   * upgrades are refused with 503) until the connections are gone; then
   * stops listening, the cluster registry and the broker.
   */
  private async shutdown(): Promise<void> {
    this.log.info({ connections: this.hub.sessions.size }, 'shutting down');
    this.parts.heartbeat.stop();
    const sessions = [...this.hub.sessions.values()];
    const allClosed = Promise.all(sessions.map((session) => session.whenClosed()));
    await this.hub.closeAll(sessions, this.config.shutdown.drainWindow, (session) => this.closeSession(session, CloseCode.GOING_AWAY, 'server shutting down: reconnect'));
    // A connection answers the commands it was handling before its close frame (each waits at most shutdown.timeout).
    await Promise.all(sessions.map((session) => session.whenCloseSent()));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.config.shutdown.timeout);
    });
    const cut = await Promise.race([allClosed.then(() => false), timedOut]);
    clearTimeout(timer);
    if (cut) {
      const left = sessions.filter((session) => session.state !== 'closed');
      this.log.warn({ connections: left.length }, 'shutdown timeout: cutting connections that did not close');
      for (const session of left) session.transport.terminate();
    }
    await this.endpoint?.close();
    // The events of the drain (closes, departures this node owns) go out before the node says goodbye.
    await this.parts.eventSinks.close(this.config.shutdown.timeout);
    if (this.broker.state === 'ready') await this.parts.cluster.stop();
    await this.broker.close();
    this.log.info('herald stopped');
  }
}
