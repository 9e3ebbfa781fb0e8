import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CloseCode, CLOSE_CODE_MEANINGS, SUBPROTOCOL_JSON, SUBPROTOCOL_LHTTP, topicProblem } from '@herald/protocol';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { askConnectHook } from './auth/connect-hook.js';
import { TokenVerifier, type Identity } from './auth/jwt.js';
import { Permissions, type Grants } from './auth/permissions.js';
import { Policy } from './policy/policy.js';
import type { Broker, BrokerState, LhttpPublication, Publication, PublishResult } from './broker/broker.js';
import { pubSubFilter, upstreamFilter } from './protocols/lhttp/builtins.js';
import { LhttpProtocol, type LhttpFilter, type LhttpProcessor } from './protocols/lhttp/protocol.js';
import { MemoryBroker } from './broker/memory.js';
import { NatsBroker } from './broker/nats.js';
import { RedisBroker } from './broker/redis.js';
import { ClusterRegistry, type NodeStats, type NodeView } from './cluster/registry.js';
import { Metrics, type PublicationSource } from './metrics/metrics.js';
import { LocalPresence, type PresenceEntry, type PresenceView } from './presence/presence.js';
import { continuationProblem, MemoryHistory, ruleFor, type HistoryRead, type HistoryRule, type HistoryStore, type Position, type RecoveryFailure } from './history/history.js';
import { RedisHistory } from './history/redis-history.js';
import { LiveStreams, type GapReason } from './history/catch-up.js';
import { SplitBroker } from './broker/split.js';
import type { BrokerNamespace } from './broker/namespace.js';
import { ConfigError, validateConfig, type HeraldConfig, type HeraldConfigInput } from './config.js';
import { HeraldError } from './errors.js';
import { withDemoSecret } from './demo/backend.js';
import { buildHttpApi } from './http/api.js';
import { encodeTextFrame } from './hub/frame.js';
import { Flusher } from './hub/flusher.js';
import { Hub } from './hub/hub.js';
import { Session, type SessionHost } from './hub/session.js';
import { createLogger, type Logger } from './log.js';
import { JsonProtocol, type CommandHandler, type ConnectionInfo } from './protocols/json.js';
import type { Protocol } from './protocols/protocol.js';
import { RawProtocol } from './protocols/raw.js';
import { Heartbeat } from './transport/heartbeat.js';
import { createUpgradeHandler, type Refusal, type UpgradeHost } from './transport/websocket.js';
import { IdempotencyCache } from './util/idempotency.js';
import { PathPatterns } from './util/paths.js';
import { LocalAdmission, type Admission } from './transport/admission.js';
import { createClientAddressResolver, type ClientAddress, type ClientAddressResolver } from './http/client-address.js';
import { VERSION } from './version.js';
import { toJson } from './util/json.js';

/** What the connect hook learns about a new connection. */
export interface ConnectInfo extends ConnectionInfo {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * Runs for every new connection before any of its frames is handled. Throw a
 * `HeraldError` to refuse it: `unauthorized` closes with 4501, `forbidden`
 * with 4503, any other code with 4000.
 */
export type ConnectHook = (connection: ConnectInfo) => void | Promise<void>;

export interface DisconnectInfo {
  code: number;
  reason: string;
  /** Who closed: the server (limits, shutdown, refusal) or the client / network. */
  by: 'server' | 'client';
}

export interface HeraldEvents {
  /** The broker's state changed (`ready`, `down`, ...). */
  broker: [state: BrokerState, detail: string | undefined];
  connect: [connection: ConnectionInfo];
  disconnect: [connection: ConnectionInfo, info: DisconnectInfo];
}

export interface HeraldOptions extends HeraldConfigInput {
  /** A pino logger to use instead of creating one from `log`. */
  logger?: Logger;
  /** A broker to use instead of the one `broker` names (your own implementation of the Broker contract). */
  brokerInstance?: Broker;
  onConnect?: ConnectHook;
  /** Who admits new connections instead of this process's own counts (the CLI's workers ask their primary). */
  admission?: Admission;
  /**
   * Set by `herald serve --workers` in each worker: the node's name. The
   * worker's `/api/status` then answers for the whole node (every worker).
   */
  workerOf?: string;
}

/** One publication of a `publishMany` batch. */
export interface BatchItem {
  topic: string;
  /** Any JSON value. */
  message: unknown;
  idempotencyKey?: string | undefined;
  /** How errors name the item (default `item <index>`). */
  label?: string;
}

export interface PublishOptions {
  /** A retry with the same key within `idempotencyWindow` publishes nothing and answers the first result. */
  idempotencyKey?: string;
}

export interface HistoryPage {
  topic: string;
  /** The topic's latest offset and its epoch. */
  offset: number;
  epoch: string;
  publications: Array<{ offset: number; time: number; message: unknown; lhttp?: { command: string; headers: Record<string, string> } }>;
}

export interface PushResult {
  /** Connections reached on this node. */
  delivered: number;
  /** Other nodes the push was forwarded to (they deliver to their connections of the users). */
  nodes: number;
}

export interface HeraldStatus {
  node: string;
  version: string;
  uptime: number;
  broker: { name: string; state: BrokerState };
  connections: number;
  topics: number;
  subscriptions: number;
  users: number;
  messagesIn: number;
  messagesOut: number;
  publications: number;
  deliveries: number;
  slowConsumerDisconnects: number;
  /**
   * Under `herald serve --workers`: the node's workers, whose figures the
   * counts above add up (as of each worker's last cluster heartbeat; a topic
   * or user held on two workers counts twice). `id` is the answering worker.
   */
  workers?: { count: number; id: string };
  /** Every live node (or worker) of the cluster, this one included. */
  cluster: { nodes: number; connections: number; users: number };
}

const BUILT_IN_ACTIONS = new Set(['subscribe', 'unsubscribe', 'publish', 'ping', 'pong', 'login', 'history', 'presence', 'error', 'push', 'join', 'leave']);

const DEMO_DIR = fileURLToPath(new URL('../../../../demo', import.meta.url));

/** Starts a Herald gateway and resolves once it listens. */
export async function createHerald(options: HeraldOptions = {}): Promise<Herald> {
  const { logger, onConnect, brokerInstance, admission, workerOf, ...input } = options;
  const herald = new Herald(validateConfig(input), { logger, onConnect, broker: brokerInstance, admission, workerOf });
  await herald.listen();
  return herald;
}

/**
 * The gateway: wiring of HTTP server, WebSocket transport, hub, broker and
 * protocols, and the public library API. Every publication, whatever its
 * source, goes through `publish`.
 */
export class Herald implements SessionHost, UpgradeHost {
  readonly config: HeraldConfig;
  readonly log: Logger;
  readonly nodeId: string;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly flusher = new Flusher();
  readonly http: FastifyInstance;
  readonly tokens: TokenVerifier;
  readonly permissions: Permissions;
  /** The one admission layer every protocol's commands go through (src/policy/policy.ts). */
  readonly policy: Policy;
  readonly cluster: ClusterRegistry;
  readonly metrics: Metrics;
  readonly history: HistoryStore;
  /** Topics with shared history that this node carries, kept gap-free. */
  private readonly live: LiveStreams;
  private readonly presenceStore = new LocalPresence();

  private readonly events = new EventEmitter<HeraldEvents>();
  private readonly handlers = new Map<string, CommandHandler>();
  private readonly protocols = new Map<string, Protocol>();
  private readonly defaultProtocol: Protocol;
  private readonly lhttpProtocol: LhttpProtocol;
  private readonly lhttpPaths: PathPatterns;
  /** The raw endpoints, in configuration order, each with its path patterns. */
  private readonly rawEndpoints: Array<{ paths: PathPatterns; protocol: RawProtocol }>;
  private readonly heartbeat: Heartbeat;
  private readonly onConnect: ConnectHook | undefined;
  private readonly startedAt = Date.now();
  private sessionSeq = 0;
  private brokerWasDown = false;
  private closingPromise: Promise<void> | null = null;
  private stats = { messagesIn: 0, messagesOut: 0, publications: 0, slowConsumers: 0 };
  /** The one reading of a request's client address (see http/client-address.ts). */
  readonly clientAddress: ClientAddressResolver;
  private readonly admission: Admission;
  private readonly sessionIp = new WeakMap<Session, string>();
  /** Publish results by topic and idempotency key, bounded by idempotencyWindow, idempotencyMaxKeys and idempotencyMaxBytes. */
  readonly idempotency: IdempotencyCache<PublishResult>;

  private readonly workerOf: string | undefined;
  /** API keys, a JWT key or a connect hook were configured (not counting the demo backend's own secret). */
  private readonly credentialsConfigured: boolean;

  constructor(
    config: HeraldConfig,
    extras: {
      logger?: Logger | undefined;
      onConnect?: ConnectHook | undefined;
      broker?: Broker | undefined;
      admission?: Admission | undefined;
      workerOf?: string | undefined;
    } = {},
  ) {
    const { jwt, connectHook } = config.auth;
    // Asked of the configuration as given: the secret the demo backend makes up is no credential of the operator's.
    this.credentialsConfigured = config.apiKeys.length > 0 || Boolean(jwt.secret || jwt.publicKey || jwt.jwksUrl || connectHook.url);
    config = withDemoSecret(config);
    this.config = config;
    this.workerOf = extras.workerOf;
    this.log = extras.logger ?? createLogger(config.log);
    this.onConnect = extras.onConnect;
    this.nodeId = config.nodeId ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
    this.hub = new Hub({
      onTopicOpened: (topic) => {
        if (this.history.shared && ruleFor(this.config.history, topic)) this.live.open(topic);
        this.brokerSubscribe(topic);
      },
      onTopicClosed: (topic) => {
        this.live.close(topic);
        this.broker.unsubscribe(topic);
      },
      onSubscribed: (session, topic) => this.presenceChanged('join', session, topic),
      onUnsubscribed: (session, topic) => {
        session.subscribeGrants?.delete(topic);
        this.presenceChanged('leave', session, topic);
      },
      onUserOnline: (uid) => this.cluster.userOnline(uid),
      onUserOffline: (uid) => this.cluster.userOffline(uid),
    });
    this.broker = extras.broker ?? createBroker(config, this.nodeId, this.log);
    this.history = createHistoryStore(config, this.broker);
    this.live = new LiveStreams({
      deliver: (publication) => {
        this.deliverLocally(publication, 'broker');
      },
      read: async (topic, after) => {
        const rule = ruleFor(this.config.history, topic);
        if (!rule) throw new HeraldError('not_found', `no history is kept for topic ${topic}`);
        return this.history.read(topic, rule, { after, limit: rule.size });
      },
      caughtUp: (topic) => this.broker.caughtUp?.(topic),
      gap: (topic, reason) => this.announceGap(topic, reason),
      warn: (detail, message) => this.log.warn(detail, message),
    });
    this.metrics = new Metrics({
      connectionsByProtocol: () => {
        const counts = new Map<string, number>([...this.protocols.keys(), ...(this.rawEndpoints.length > 0 ? ['raw'] : [])].map((name) => [name, 0]));
        for (const session of this.hub.sessions.values()) counts.set(session.protocol.name, (counts.get(session.protocol.name) ?? 0) + 1);
        return counts;
      },
      topics: () => this.hub.topicCount,
      subscriptions: () => this.hub.subscriptions,
      users: () => this.hub.userCount,
      queuedBytes: () => Array.from(this.hub.sessions.values(), (session) => session.queuedBytes),
      brokerName: () => this.broker.name,
      brokerReady: () => this.broker.state === 'ready',
    });
    this.cluster = new ClusterRegistry(
      this.nodeId,
      this.broker,
      {
        stats: () => this.nodeStats(),
        localUsers: () => this.hub.userIds(),
        deliverPush: (uids, payload, raw) => {
          this.hub.push(uids, payload, raw);
        },
        localPresence: () => this.presenceStore.localEntries(),
        remotePresence: (node, change, topic, entry) => this.remotePresence(node, change, topic, entry),
        remotePresenceReset: (node, entries) => {
          const before = new Map(this.presenceStore.entriesOf(node).map(([topic, entry]) => [`${topic}\n${entry.conn}`, [topic, entry] as const]));
          for (const [topic, entry] of entries ?? []) {
            if (!before.delete(`${topic}\n${entry.conn}`)) this.remotePresence(node, 'join', topic, entry);
          }
          for (const [topic, entry] of before.values()) this.remotePresence(node, 'leave', topic, entry.conn);
        },
      },
      config.cluster.heartbeatInterval,
      this.log,
    );
    this.tokens = new TokenVerifier(config.auth.jwt);
    this.idempotency = new IdempotencyCache({ window: config.idempotencyWindow, maxKeys: config.idempotencyMaxKeys, maxBytes: config.idempotencyMaxBytes });
    this.permissions = new Permissions(config.auth, config.clientPublish);
    this.policy = new Policy(this);
    this.clientAddress = createClientAddressResolver(config.trustProxy, config.proxyHeader);
    this.admission = extras.admission ?? new LocalAdmission(config.limits);
    this.defaultProtocol = new JsonProtocol(this);
    this.protocols.set(SUBPROTOCOL_JSON, this.defaultProtocol);
    this.lhttpProtocol = new LhttpProtocol([pubSubFilter(this), upstreamFilter(config.lhttp.upstream)], (session, err) => this.reportError(session, err));
    this.protocols.set(SUBPROTOCOL_LHTTP, this.lhttpProtocol);
    this.lhttpPaths = new PathPatterns(config.lhttp.paths);
    this.rawEndpoints = config.raw.map((endpoint) => ({ paths: new PathPatterns([endpoint.path]), protocol: new RawProtocol(this, endpoint) }));
    this.checkRawEndpoints();
    this.heartbeat = new Heartbeat(
      this.hub.sessions,
      {
        interval: config.heartbeat.interval,
        timeout: config.heartbeat.timeout,
        appPingFrame: config.heartbeat.appPing ? encodeTextFrame('{"action":"ping"}') : null,
      },
      (session) => this.terminateSession(session, 'heartbeat timeout: no answer to ping'),
    );
    const demoDir = config.demo.dir ?? DEMO_DIR;
    this.http = buildHttpApi(this, {
      demoDir: config.demo.enabled && existsSync(demoDir) ? demoDir : null,
      dashboardDir: existsSync(join(DEMO_DIR, 'dashboard.html')) ? DEMO_DIR : null,
    });
    this.http.server.on('upgrade', createUpgradeHandler(this));
  }

  // ---- public library API -------------------------------------------------

  /** The address the server listens on. */
  get address(): AddressInfo {
    return this.http.server.address() as AddressInfo;
  }

  get port(): number {
    return this.address.port;
  }

  /** Base HTTP URL of this server, for clients on this machine. */
  get url(): string {
    const { address, port, family } = this.address;
    const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : family === 'IPv6' ? `[${address}]` : address;
    return `http://${host}:${port}`;
  }

  get closing(): boolean {
    return this.closingPromise !== null;
  }

  /**
   * Publishes `message` (any JSON value) to `topic` through the broker, the
   * single path of every publication. Resolves once the broker accepted it.
   */
  publish(topic: string, message: unknown, source: PublicationSource = 'library', options: PublishOptions = {}): Promise<PublishResult> {
    const key = options.idempotencyKey;
    if (key === undefined) return this.publishNow(topic, message, source);
    // A retried publish with the same key within the window is a no-op answering the first result.
    return this.idempotency.remember(topic, key, () => this.publishNow(topic, message, source, key));
  }

  /**
   * Publishes several publications in order, all or nothing as far as
   * checks go: every item's topic (Herald's rule and the broker's) and
   * message (JSON, size) is checked before any is published, so a batch with
   * one bad item publishes nothing and rejects with that item's error (its
   * index in the message: `item 3: ...`). Publishing itself is not atomic:
   * when the broker fails on an item, the earlier ones stay published and the
   * rejection (`unavailable`) says how many. Resolves with one result per item.
   */
  async publishMany(items: ReadonlyArray<BatchItem>, source: PublicationSource = 'library'): Promise<PublishResult[]> {
    const label = (index: number): string => items[index]!.label ?? (items.length > 1 ? `item ${index}` : '');
    const checked = items.map((item, index) => {
      const where = label(index) ? `${label(index)}: ` : '';
      const problem = this.topicProblem(item.topic);
      if (problem) throw new HeraldError('invalid_topic', `${where}${problem}`);
      try {
        return { topic: item.topic, payload: this.encodeMessage(item.message), key: item.idempotencyKey };
      } catch (err) {
        if (err instanceof HeraldError) throw new HeraldError(err.code, `${where}${err.message}`, { cause: err });
        throw err;
      }
    });
    const results: PublishResult[] = [];
    for (const [index, item] of checked.entries()) {
      try {
        if (this.closing) throw new HeraldError('unavailable', 'server is shutting down');
        const publish = () => this.distribute({ topic: item.topic, payload: item.payload }, source, item.key);
        results.push(await (item.key === undefined ? publish() : this.idempotency.remember(item.topic, item.key, publish)));
      } catch (err) {
        if (!(err instanceof HeraldError) || checked.length === 1) throw err;
        const done = index === 0 ? 'nothing was published' : `the ${index} before it were published, the rest were not`;
        throw new HeraldError(err.code, `${label(index)}: ${err.message} (${done})`, { cause: err });
      }
    }
    return results;
  }

  private publishNow(topic: string, message: unknown, source: PublicationSource, idempotencyKey?: string): Promise<PublishResult> {
    const problem = this.topicProblem(topic);
    if (problem) return Promise.reject(new HeraldError('invalid_topic', problem));
    if (this.closing) return Promise.reject(new HeraldError('unavailable', 'server is shutting down'));
    let payload: string;
    try {
      payload = this.encodeMessage(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.distribute({ topic, payload }, source, idempotencyKey);
  }

  /**
   * Publishes an LHTTP message to `topic`: LHTTP subscribers receive `text`
   * as it is, JSON subscribers `{"action":"publish","topic","message":<body>,"lhttp":{command,headers}}`.
   */
  publishLhttp(topic: string, message: LhttpPublication, body: string, source: PublicationSource = 'client'): Promise<PublishResult> {
    const problem = this.topicProblem(topic);
    if (problem) return Promise.reject(new HeraldError('invalid_topic', problem));
    if (this.closing) return Promise.reject(new HeraldError('unavailable', 'server is shutting down'));
    const max = this.config.limits.maxMessageBytes;
    const size = Buffer.byteLength(message.text);
    if (size > max) return Promise.reject(new HeraldError('too_large', `message is ${size} bytes, over the limit of ${max}`));
    return this.distribute({ topic, payload: toJson(body), lhttp: message }, source);
  }

  /** Hands a publication to this node's subscribers, with its metrics. */
  private deliverLocally(publication: Publication, source: PublicationSource): number {
    const started = process.hrtime.bigint();
    const attempted = this.hub.subscriberCount(publication.topic);
    const written = this.hub.deliver(publication);
    const metrics = this.metrics;
    metrics.published.inc({ source });
    if (attempted > 0) {
      metrics.fanoutSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      metrics.delivered.inc(written);
      if (written < attempted) metrics.dropped.inc(attempted - written);
    }
    return written;
  }

  /** Every publication's one path: this node's subscribers first, then the other nodes through the broker. */
  private distribute(publication: Publication, source: PublicationSource, idempotencyKey?: string): Promise<PublishResult> {
    const rule = ruleFor(this.config.history, publication.topic);
    if (rule && this.history.shared) {
      // The shared store's append publishes to every node, this one included, in offset order.
      // The key is kept in the shared store too, so that a retry reaching another node is a no-op as well.
      const idempotency = idempotencyKey === undefined ? undefined : { key: idempotencyKey, window: this.config.idempotencyWindow };
      return Promise.resolve(this.history.append(publication.topic, rule, publication.payload, publication.lhttp, idempotency)).then((position) => {
        this.stats.publications++;
        return { offset: position.offset, epoch: position.epoch };
      });
    }
    if (rule) {
      const position = this.history.append(publication.topic, rule, publication.payload, publication.lhttp);
      if (position instanceof Promise) return position.then((p) => this.distributeAt(publication, source, p));
      return this.distributeAt(publication, source, position);
    }
    return this.distributeAt(publication, source, null);
  }

  private distributeAt(publication: Publication, source: PublicationSource, position: Position | null): Promise<PublishResult> {
    if (position) {
      publication.offset = position.offset;
      publication.epoch = position.epoch;
    }
    this.stats.publications++;
    // Local subscribers first, then the other nodes: local delivery keeps
    // working while the broker is down, and the caller is told the truth.
    const local = this.deliverLocally(publication, source);
    const accepted = this.broker.publish(publication);
    const result: PublishResult = position ? { offset: position.offset, epoch: position.epoch } : {};
    return accepted.then(() => result, (err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      throw new HeraldError('unavailable', `${why}: delivered to ${local} connection(s) on this node only, not to other nodes`, { cause: err });
    });
  }

  /**
   * Pushes `message` to every connection of the given user(s) on this node,
   * as `{"action":"push","message":...}`. Returns how many connections it
   * reached.
   */
  async send(uid: string | readonly string[], message: unknown): Promise<PushResult> {
    return this.push(typeof uid === 'string' ? [uid] : uid, this.encodeMessage(message), null);
  }

  /**
   * The push-centre seed's `/send`: connections that logged in the seed's way
   * (`{"uid":...}`) get the text as it is, as the seed sends it; the others
   * get the push envelope.
   */
  sendSeed(uid: string, text: string): Promise<PushResult> {
    return this.push([uid], this.encodeMessage(text), text);
  }

  /** Delivers a push here and forwards it to the other nodes that hold the users. */
  private async push(uids: readonly string[], payload: string, raw: string | null): Promise<PushResult> {
    if (this.closing) throw new HeraldError('unavailable', 'server is shutting down');
    this.metrics.pushes.inc();
    const delivered = this.hub.push(uids, payload, raw);
    let nodes = 0;
    try {
      nodes = await this.cluster.forwardPush(uids, payload, raw);
    } catch (err) {
      throw new HeraldError('unavailable', `${(err as Error).message}: pushed to ${delivered} connection(s) on this node only`, { cause: err });
    }
    return { delivered, nodes };
  }

  /**
   * Past publications of a topic with history: after `since` (oldest first),
   * or the newest `limit` with `reverse`. Rejects with `not_found` for a topic
   * without history, `bad_request` when `since` names another epoch or an
   * offset ahead of the topic's latest one (see continuationProblem).
   */
  async historyOf(topic: string, options: { since?: Position; limit?: number; reverse?: boolean } = {}): Promise<HistoryPage> {
    const problem = this.topicProblem(topic);
    if (problem) throw new HeraldError('invalid_topic', problem);
    const rule = ruleFor(this.config.history, topic);
    if (!rule) throw new HeraldError('not_found', `no history is kept for topic ${topic}`);
    const limit = Math.min(options.limit ?? rule.size, rule.size);
    const read = await this.history.read(topic, rule, { after: options.since?.offset, limit, reverse: options.reverse });
    const refused = options.since ? continuationProblem(options.since, read.position) : null;
    if (refused) throw new HeraldError('bad_request', refused);
    return {
      topic,
      offset: read.position.offset,
      epoch: read.position.epoch,
      publications: read.entries.map((entry) => ({
        offset: entry.offset,
        time: entry.time,
        message: JSON.parse(entry.payload) as unknown,
        ...(entry.lhttp ? { lhttp: { command: entry.lhttp.command, headers: Object.fromEntries(entry.lhttp.headers) } } : {}),
      })),
    };
  }

  /**
   * The answer to a subscribe to one topic, with or without `since`: waits
   * until the broker carries the topic here, then answers through `respond`
   * with the reply's fields (for a topic with history: its position, and with
   * `since` whether the missed publications follow) and the frames to send
   * right after the reply, in order, before any newer publication.
   *
   * The contract the reply keeps: after a reply that reports position P, the
   * connection receives every publication of that epoch with offset > P
   * exactly once, in order, and none with offset <= P. With the memory store
   * this holds because subscribing, reading and answering happen in one turn.
   * A shared store is read asynchronously, on another connection than the
   * one that delivers publications: live publications for the topic are held
   * back for this connection from the moment it subscribed, the store is
   * read, a round trip on the broker's subscriber link makes sure every
   * publication up to the read's position has arrived (and the node's live
   * stream has no hole before it, see LiveStreams.settle), and then the held
   * ones the read already covers are dropped by offset.
   */
  recover(session: Session, topic: string, since: Position | undefined, respond: (result: RecoveryResult | Position | undefined, frames: Buffer[]) => void): void | Promise<void> {
    const rule = ruleFor(this.config.history, topic);
    if (!rule || !this.history.shared) {
      const answer = (): void => {
        if (session.state !== 'open' || !session.topics.has(topic)) return;
        if (!rule) return respond(since ? { recovered: false, reason: 'history_off' } : undefined, []);
        const read = this.history.read(topic, rule, { after: since?.offset, limit: since ? rule.size : 0 });
        if (read instanceof Promise) throw new Error('an unshared history store must read synchronously');
        if (!since) return respond({ offset: read.position.offset, epoch: read.position.epoch }, []);
        this.recovered(session, topic, since, read, [], respond);
      };
      // Subscribed, read and answered in one turn (memory store): nothing new can come between.
      const ready = this.whenSubscribed([topic]);
      return ready ? ready.then(answer) : answer();
    }
    const held: Publication[] = [];
    (session.held ??= new Map()).set(topic, held);
    const release = () => {
      if (session.held?.get(topic) === held) session.held.delete(topic);
      if (session.held?.size === 0) session.held = null;
    };
    let read: HistoryRead;
    return Promise.resolve(this.whenSubscribed([topic]))
      .then(() => readRetrying(() => this.history.read(topic, rule, { after: since?.offset, limit: since ? rule.size : 0 }), SUBSCRIBE_READ_RETRY))
      .then((done) => {
        read = done;
        return this.broker.caughtUp?.(topic);
      })
      .then(() => this.live.settle(topic, read.position))
      .then(() => this.fillHole(topic, rule, read.position, held))
      .then(
        () => {
          release();
          if (!since) {
            if (session.state !== 'open' || !session.topics.has(topic)) return;
            const { offset, epoch } = read.position;
            const frames = held.filter((p) => p.epoch !== epoch || p.offset === undefined || p.offset > offset).map((p) => session.protocol.encodePublication(p));
            return respond({ offset, epoch }, frames);
          }
          this.recovered(session, topic, since, read, held, respond);
        },
        (err: unknown) => {
          release();
          if (session.state !== 'open' || !session.topics.has(topic)) return;
          // History unreachable: the subscription stands, nothing can be replayed, no position is promised.
          this.log.warn({ topic, err: (err as Error).message }, 'history read for a subscribe failed');
          const frames = held.map((publication) => session.protocol.encodePublication(publication));
          respond(since ? { recovered: false, reason: 'unavailable' } : undefined, frames);
        },
      );
  }

  /**
   * The node's live stream of a topic may have started after the position a
   * connection read (the topic opened here while its publications were
   * already under way): what lies between that position and the first held
   * publication is read from the store and put in front of the held ones.
   */
  private async fillHole(topic: string, rule: HistoryRule, position: Position, held: Publication[]): Promise<void> {
    const first = held.find((publication) => publication.epoch === position.epoch && publication.offset !== undefined && publication.offset > position.offset);
    if (!first || first.offset! === position.offset + 1) return;
    const read = await readRetrying(() => this.history.read(topic, rule, { after: position.offset, limit: first.offset! - position.offset - 1 }), SUBSCRIBE_READ_RETRY);
    if (read.position.epoch !== position.epoch) return;
    const missing = read.entries
      .filter((entry) => entry.offset < first.offset!)
      .map((entry): Publication => ({ topic, payload: entry.payload, ...(entry.lhttp ? { lhttp: entry.lhttp } : {}), offset: entry.offset, epoch: position.epoch }));
    held.splice(held.indexOf(first), 0, ...missing);
  }

  private recovered(session: Session, topic: string, since: Position, read: HistoryRead, held: Publication[], respond: (result: RecoveryResult, frames: Buffer[]) => void): void {
    const { position } = read;
    const here = { offset: position.offset, epoch: position.epoch };
    // Live publications held during the read that it did not include.
    const live = held.filter((publication) => publication.offset === undefined || publication.epoch !== position.epoch || publication.offset > position.offset);
    const encode = (publication: Publication) => session.protocol.encodePublication(publication);
    if (session.state !== 'open' || !session.topics.has(topic)) return;
    if (continuationProblem(since, position)) return respond({ recovered: false, reason: 'epoch_changed', ...here }, live.map(encode));
    if (since.offset + 1 < read.oldest) return respond({ recovered: false, reason: 'too_far_behind', ...here }, live.map(encode));
    const frames = read.entries.map((entry) => encode({ topic, payload: entry.payload, lhttp: entry.lhttp, offset: entry.offset, epoch: position.epoch }));
    for (const publication of live) frames.push(encode(publication));
    respond({ recovered: true, ...here }, frames);
  }

  /**
   * Tells the topic's JSON subscribers on this node that they may have missed
   * publications: `{"action":"gap","topic":...,"reason":...}` (docs/protocol.md).
   */
  private announceGap(topic: string, reason: GapReason): void {
    this.metrics.gaps.inc({ reason });
    this.log.warn({ topic, reason, subscribers: this.hub.subscriberCount(topic) }, 'subscribers told they may have missed publications');
    this.hub.writeToTopic(topic, SUBPROTOCOL_JSON, encodeTextFrame(JSON.stringify({ action: 'gap', topic, reason })), null);
  }

  /** The broker's subscriber link came back: topics with shared history catch up from it, the others are told of a gap. */
  private brokerResumed(carries: ((topic: string) => boolean) | null): void {
    this.live.resumed(carries);
    for (const topic of this.hub.topicNames()) {
      if ((carries !== null && !carries(topic)) || this.live.follows(topic)) continue;
      // Once the resubscription is confirmed (a round trip behind it): every publication after the frame arrives.
      const confirmed = this.broker.caughtUp?.(topic);
      if (!confirmed) this.announceGap(topic, 'interrupted');
      else void confirmed.then(() => this.announceGap(topic, 'interrupted'), () => this.announceGap(topic, 'interrupted'));
    }
  }

  /** Who is subscribed to a topic that has presence (on this node). */
  presence(topic: string): PresenceView {
    const problem = this.topicProblem(topic);
    if (problem) throw new HeraldError('invalid_topic', problem);
    const rule = ruleFor(this.config.presence, topic);
    if (!rule) throw new HeraldError('not_found', `no presence is kept for topic ${topic}`);
    return this.presenceStore.view(topic, rule.maxList);
  }

  /** Keeps presence in step with subscriptions, and sends join/leave events where the rule asks. */
  private presenceChanged(change: 'join' | 'leave', session: Session, topic: string): void {
    const rule = ruleFor(this.config.presence, topic);
    if (!rule) return;
    let entry;
    if (change === 'join') {
      entry = { conn: session.id, ...(session.uid !== undefined ? { uid: session.uid } : {}), ...(session.info !== undefined ? { info: session.info } : {}) };
      this.presenceStore.join(topic, entry);
      this.cluster.presenceJoin(topic, entry);
    } else {
      entry = this.presenceStore.leave(topic, session.id);
      if (entry) this.cluster.presenceLeave(topic, session.id);
    }
    if (entry && rule.joinLeave) this.announcePresence(change, topic, entry, session);
  }

  /** A join or leave event to the topic's JSON subscribers (but `except`). */
  private announcePresence(change: 'join' | 'leave', topic: string, entry: PresenceEntry, except: Session | null): void {
    this.hub.writeToTopic(topic, SUBPROTOCOL_JSON, encodeTextFrame(toJson({ action: change, topic, info: entry })), except);
  }

  /** Another node's connection joined or left: the shared view changes, and this node's subscribers hear of it where the rule asks. */
  private remotePresence(node: string, change: 'join' | 'leave', topic: string, entryOrConn: PresenceEntry | string): void {
    const rule = ruleFor(this.config.presence, topic);
    if (!rule) return;
    let entry: PresenceEntry | undefined;
    if (change === 'leave') entry = this.presenceStore.leaveRemote(node, topic, entryOrConn as string);
    else if (this.presenceStore.joinRemote(node, topic, entryOrConn as PresenceEntry)) entry = entryOrConn as PresenceEntry;
    if (entry && rule.joinLeave) this.announcePresence(change, topic, entry, null);
  }

  private readonly topicsOpening = new Map<string, Promise<void>>();

  /** Subscribes the broker to a topic; remembers (for a bounded time) until the broker confirms it. */
  private brokerSubscribe(topic: string): void {
    const pending = this.broker.subscribe(topic);
    if (!pending) return;
    // While the broker is down the confirmation waits for the reconnection: do not hold clients that long.
    let timer: NodeJS.Timeout | undefined;
    const bounded = Promise.race([pending, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]).finally(() => {
      clearTimeout(timer);
      if (this.topicsOpening.get(topic) === bounded) this.topicsOpening.delete(topic);
    });
    this.topicsOpening.set(topic, bounded);
  }

  /** Resolves when the broker carries every one of these topics to this node; undefined when it already does. */
  whenSubscribed(topics: readonly string[]): Promise<void> | undefined {
    const waits = topics.map((topic) => this.topicsOpening.get(topic)).filter((wait) => wait !== undefined);
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined);
  }

  /** Whether a uid has a connection on any node (this one, or another the cluster registry knows). */
  isUserConnected(uid: string): boolean {
    return this.hub.userSessions(uid).size > 0 || this.cluster.nodesHolding(uid).length > 0;
  }

  /** The live nodes of the cluster, this one included, with their figures. */
  clusterView(): NodeView[] {
    return this.cluster.view();
  }

  /** Herald's topic rule plus the broker's own (NATS subjects cannot have empty tokens). */
  topicProblem(topic: string): string | null {
    return topicProblem(topic, this.config.limits.maxTopicLength) ?? this.broker.topicProblem(topic);
  }

  /** Closes every connection of a user with 4504. Returns how many were closed. */
  disconnect(uid: string, reason = 'disconnected by the server'): number {
    const sessions = [...this.hub.userSessions(uid)];
    for (const session of sessions) this.closeSession(session, CloseCode.DISCONNECTED, reason);
    return sessions.length;
  }

  /** How many connections a user has on this node. */
  userConnections(uid: string): number {
    return this.hub.userSessions(uid).size;
  }

  /** JSON text of a message, checked against the message size limit. */
  private encodeMessage(message: unknown): string {
    let payload: string | undefined;
    try {
      payload = toJson(message);
    } catch (err) {
      throw new HeraldError('bad_request', `message is not serialisable as JSON: ${(err as Error).message}`);
    }
    if (payload === undefined) throw new HeraldError('bad_request', 'message must be a JSON value');
    const max = this.config.limits.maxMessageBytes;
    if (payload.length > max / 3 && Buffer.byteLength(payload) > max) {
      throw new HeraldError('too_large', `message is ${Buffer.byteLength(payload)} bytes, over the limit of ${max}`);
    }
    return payload;
  }

  /** Registers a handler for a custom action sent by clients as `{"action": name, ...}`. */
  handle(action: string, handler: CommandHandler): this {
    if (BUILT_IN_ACTIONS.has(action)) throw new TypeError(`"${action}" is a built-in action and cannot be handled by the application`);
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    this.handlers.set(action, handler);
    return this;
  }

  on<E extends keyof HeraldEvents>(event: E, listener: (...args: HeraldEvents[E]) => void): this {
    this.events.on(event, listener as never);
    return this;
  }

  off<E extends keyof HeraldEvents>(event: E, listener: (...args: HeraldEvents[E]) => void): this {
    this.events.off(event, listener as never);
    return this;
  }

  /** This process's figures, as its cluster heartbeats tell them to the other nodes. */
  private nodeStats(): NodeStats {
    const stats: NodeStats = { connections: this.hub.sessions.size, users: this.hub.userCount, topics: this.hub.topicCount, subscriptions: this.hub.subscriptions };
    if (this.workerOf === undefined) return stats;
    let messagesOut = this.stats.messagesOut;
    for (const session of this.hub.sessions.values()) messagesOut += session.framesOut;
    return {
      ...stats,
      workerOf: this.workerOf,
      messagesIn: this.stats.messagesIn,
      messagesOut,
      publications: this.stats.publications,
      deliveries: this.hub.deliveries,
      slowConsumerDisconnects: this.stats.slowConsumers,
    };
  }

  /**
   * The node's status. A worker of `herald serve --workers` answers for its
   * whole node: its own figures plus its sibling workers' last heartbeats.
   */
  status(): HeraldStatus {
    const view = this.cluster.view();
    const cluster = view.reduce((sum, node) => ({ nodes: sum.nodes + 1, connections: sum.connections + node.connections, users: sum.users + node.users }), { nodes: 0, connections: 0, users: 0 });
    const workers = this.workerOf === undefined ? [] : view.filter((node) => node.workerOf === this.workerOf);
    const sum = (pick: (node: NodeStats) => number | undefined, own: number): number =>
      workers.length === 0 ? own : workers.reduce((total, node) => total + (node.self ? own : (pick(node) ?? 0)), 0);
    let messagesOut = this.stats.messagesOut;
    for (const session of this.hub.sessions.values()) messagesOut += session.framesOut;
    return {
      node: this.workerOf ?? this.nodeId,
      version: VERSION,
      uptime: Math.round((Date.now() - this.startedAt) / 1000),
      broker: { name: this.broker.name, state: this.broker.state },
      connections: sum((n) => n.connections, this.hub.sessions.size),
      topics: sum((n) => n.topics, this.hub.topicCount),
      subscriptions: sum((n) => n.subscriptions, this.hub.subscriptions),
      users: sum((n) => n.users, this.hub.userCount),
      messagesIn: sum((n) => n.messagesIn, this.stats.messagesIn),
      messagesOut: sum((n) => n.messagesOut, messagesOut),
      publications: sum((n) => n.publications, this.stats.publications),
      deliveries: sum((n) => n.deliveries, this.hub.deliveries),
      slowConsumerDisconnects: sum((n) => n.slowConsumerDisconnects, this.stats.slowConsumers),
      ...(this.workerOf === undefined ? {} : { workers: { count: Math.max(1, workers.length), id: this.nodeId } }),
      cluster,
    };
  }


  /** Ready to serve: listening, broker ready, not shutting down. */
  get ready(): boolean {
    return !this.closing && this.broker.state === 'ready' && this.http.server.listening;
  }

  /** Starts the broker and the HTTP server. */
  async listen(): Promise<void> {
    await this.broker.start({
      deliver: (publication) => this.live.live(publication),
      onControl: (message) => this.cluster.onControl(message),
      onResumed: (carries) => this.brokerResumed(carries),
      onStateChange: (state, detail) => {
        if (state === 'ready' && this.brokerWasDown) this.metrics.brokerReconnects.inc();
        if (state === 'down') this.brokerWasDown = true;
        const level = state === 'down' ? 'warn' : 'info';
        this.log[level]({ broker: this.broker.name, state, detail }, 'broker state');
        if (state === 'ready') this.cluster.announce();
        this.events.emit('broker', state, detail);
      },
    });
    if (this.broker.name !== 'memory') this.cluster.start();
    await this.http.listen({ port: this.config.port, host: this.config.host });
    this.heartbeat.start();
    this.log.info({ url: this.url, node: this.nodeId, broker: this.broker.name, version: VERSION }, 'herald listening');
    if (this.config.apiKeys.length === 0) {
      this.log.warn('no apiKeys configured: the HTTP API answers loopback callers only (configure apiKeys to open it to other hosts)');
    }
    if (this.config.history.length > 0 && !this.history.shared && this.broker.name !== 'memory') {
      this.log.warn('history is kept in each process\'s memory: with several nodes or workers, offsets are per node (use the redis broker for a shared history)');
    }
    if (this.config.demo.enabled && this.config.demo.backend) {
      this.log.warn('demo.backend is on: /demo/* mints tokens for any uid to callers on this machine; turn it off in production');
    }
    for (const namespace of brokerNamespaces(this.broker)) {
      if (namespace.rawTopics.length === 0) continue;
      const names = namespace.kind === 'redis' ? 'channels' : 'subjects';
      this.log.warn(
        { rawTopics: namespace.rawTopics },
        `${namespace.kind}.rawTopics: these topics are bare ${namespace.kind} ${names}, outside Herald's namespace ${JSON.stringify(namespace.prefix)}: any ${namespace.kind} client can publish to them and read them`,
      );
    }
    if (this.config.auth.insecureUidLogin) {
      this.log.warn('auth.insecureUidLogin is on: any client can claim any uid with {"uid":...}; use it only on a trusted network');
    }
    if (this.credentialsConfigured && this.config.allowedOrigins.length === 0) {
      this.log.warn('credentials are configured but allowedOrigins is empty: browsers on any origin may connect');
    }
  }

  /**
   * Graceful shutdown: refuse new connections, close every connection with
   * 1001 after what is queued for it, wait for them (at most
   * `shutdown.timeout`), cut the rest, stop the broker and the HTTP server.
   */
  close(): Promise<void> {
    this.closingPromise ??= this.shutdown();
    return this.closingPromise;
  }

  // ---- SessionHost / UpgradeHost / JsonProtocolHost ------------------------

  get wsPath(): string {
    return this.config.wsPath;
  }

  get maxFrameBytes(): number {
    return this.config.limits.maxFrameBytes;
  }

  get maxMessageFragments(): number {
    return this.config.limits.maxMessageFragments;
  }

  get maxQueueBytes(): number {
    return this.config.limits.maxQueueBytes;
  }

  get maxTopicsPerConnection(): number {
    return this.config.limits.maxTopicsPerConnection;
  }

  admitFrame(session: Session): HeraldError | null {
    return this.policy.admitFrame(session);
  }

  get closeTimeout(): number {
    return this.config.shutdown.timeout;
  }

  get supportedProtocols(): string[] {
    return [...this.protocols.keys()];
  }

  /**
   * The protocol of a new WebSocket: by path, first `wsPath` (JSON), then the
   * raw endpoints, then `lhttp.paths` (LHTTP); a subprotocol the client
   * offers (`json`, `lhttp`) wins on any of these paths.
   */
  protocolFor(path: string, offered: Set<string>): Protocol | null | undefined {
    let byPath: Protocol | undefined;
    if (path === this.config.wsPath) byPath = this.defaultProtocol;
    else byPath = this.rawEndpoints.find((endpoint) => endpoint.paths.matches(path))?.protocol ?? (this.lhttpPaths.matches(path) ? this.lhttpProtocol : undefined);
    if (!byPath) return undefined;
    if (offered.size === 0) return byPath;
    for (const name of offered) {
      const protocol = this.protocols.get(name);
      if (protocol) return protocol;
    }
    return null;
  }

  /**
   * The Lhttp seed's server API: processors by command, and header filters
   * that run after the built-in ones (see docs/lhttp.md).
   */
  readonly lhttp = {
    register: (command: string, processor: LhttpProcessor): void => this.lhttpProtocol.register(command, processor),
    addFilter: (filter: LhttpFilter): void => this.lhttpProtocol.addFilter(filter),
  };

  commandHandler(action: string): CommandHandler | undefined {
    return this.handlers.get(action);
  }

  private readonly upgradeClients = new WeakMap<IncomingMessage, ClientAddress>();

  /** The client's address (trustProxy and proxyHeader decide which hop), read once per upgrade. */
  clientIp(request: IncomingMessage): string {
    let client = this.upgradeClients.get(request);
    if (!client) this.upgradeClients.set(request, (client = this.clientAddress(request)));
    return client.address;
  }

  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null> {
    const origins = this.config.allowedOrigins;
    const origin = request.headers.origin;
    if (origins.length > 0 && origin !== undefined && !origins.includes(origin)) {
      return { status: 403, code: 'forbidden', message: `origin ${origin} is not allowed` };
    }
    return this.admission.admit(this.clientIp(request));
  }

  release(request: IncomingMessage): void {
    this.admission.release(this.clientIp(request));
  }

  accept(ws: WebSocket, socket: Duplex, request: IncomingMessage, protocol: Protocol): void {
    const id = `${this.nodeId.slice(-8)}-${(++this.sessionSeq).toString(36)}`;
    const ip = this.clientIp(request);
    const session = new Session(id, ws, socket, protocol, ip, this);
    this.policy.attach(session);
    this.sessionIp.set(session, ip);
    ws.on('message', (data, isBinary) => {
      this.stats.messagesIn++;
      session.receive(data as Buffer, isBinary);
    });
    ws.on('pong', () => {
      session.lastSeen = Date.now();
    });
    ws.on('error', (err) => {
      // ws closes the connection itself (1009 for an oversize frame, 1002 for a protocol error).
      this.log.debug({ conn: id, err: err.message }, 'websocket error');
      if (!session.closeCode) {
        const code = (err as Error & { code?: string }).code;
        session.closeCode = code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CloseCode.MESSAGE_TOO_BIG : CloseCode.PROTOCOL_ERROR;
        session.closeReason = err.message;
      }
    });
    ws.on('close', (code, reason) => {
      session.closed();
      this.detach(session, session.closeCode ?? code, session.closeReason ?? reason.toString(), session.closeCode ? 'server' : 'client');
    });
    this.hub.add(session);
    this.metrics.connects.inc({ protocol: protocol.name });
    this.log.info({ conn: id, ip, protocol: protocol.name }, 'connection opened');
    const needsWork = this.onConnect || this.config.auth.connectHook.url || request.url?.includes('token=');
    if (!needsWork) {
      this.opened(session);
      return;
    }
    this.authenticate(session, request).then(
      (topics) => {
        this.opened(session);
        for (const topic of topics) this.hub.subscribe(session, topic);
      },
      (err: unknown) => {
        const code = err instanceof HeraldError ? err.code : 'internal';
        if (!(err instanceof HeraldError)) this.log.error({ conn: id, err }, 'connect hook failed');
        this.closeSession(session, closeCodeFor(code), err instanceof HeraldError ? err.message : 'connection refused');
      },
    );
  }

  /**
   * Establishes who a new connection is, before any of its frames is handled:
   * the `?token=` on its URL, then the backend connect hook, then the
   * library's onConnect. Resolves with the topics the hook subscribes it to.
   */
  private async authenticate(session: Session, request: IncomingMessage): Promise<string[]> {
    const url = request.url ?? '/';
    const token = new URL(url, 'http://herald').searchParams.get('token');
    if (token !== null) this.applyIdentity(session, await this.tokens.identity(token));
    let topics: string[] = [];
    const hook = this.config.auth.connectHook;
    if (hook.url) {
      const answer = await askConnectHook(hook, { ip: session.ip, url, headers: request.headers });
      topics = (answer.topics ?? []).filter((topic) => this.topicProblem(topic) === null);
      if (answer.uid !== undefined) {
        this.applyIdentity(session, { uid: answer.uid, expiresAt: undefined, topics, publish: answer.publish ?? [], info: answer.info });
      } else {
        session.grants = { topics, publish: answer.publish ?? [] };
      }
    }
    if (this.onConnect) {
      await this.onConnect({ id: session.id, ip: session.ip, uid: session.uid, topics: session.topics, connectedAt: session.connectedAt, url, headers: request.headers });
    }
    return topics;
  }

  /** Checks what the schema cannot: the raw endpoints' topics against the topic rule (and the broker's), their paths against wsPath. */
  private checkRawEndpoints(): void {
    const problems: string[] = [];
    this.config.raw.forEach((endpoint, index) => {
      if (endpoint.path === this.config.wsPath) problems.push(`raw.${index}.path: ${endpoint.path} is wsPath, where the JSON protocol is spoken`);
      const topics = endpoint.publish === false ? endpoint.topics : [...endpoint.topics, endpoint.publish];
      for (const topic of topics) {
        const problem = this.topicProblem(topic);
        if (problem) problems.push(`raw.${index}: ${problem}`);
      }
      const { maxTopicsPerConnection, subscriptionBurst } = this.config.limits;
      if (endpoint.topics.length > Math.min(maxTopicsPerConnection, subscriptionBurst)) {
        const [limit, name] = maxTopicsPerConnection <= subscriptionBurst ? [maxTopicsPerConnection, 'maxTopicsPerConnection'] : [subscriptionBurst, 'subscriptionBurst'];
        problems.push(`raw.${index}.topics: ${endpoint.topics.length} topics, over limits.${name} (${limit})`);
      }
    });
    if (problems.length > 0) throw new ConfigError(problems);
  }

  /** Verifies a token sent with `login` and makes it the connection's identity. */
  async login(session: Session, token: unknown): Promise<{ uid: string; expiresAt?: number; unsubscribed?: string[] }> {
    const identity = await this.tokens.identity(token);
    if (session.state !== 'open') throw new HeraldError('unavailable', 'connection is closing');
    const unsubscribed = this.applyIdentity(session, identity);
    return {
      uid: identity.uid,
      ...(identity.expiresAt !== undefined ? { expiresAt: identity.expiresAt } : {}),
      ...(unsubscribed.length > 0 ? { unsubscribed } : {}),
    };
  }

  /** The push-centre seed's `{"uid":"123"}` login: no proof, only when auth.insecureUidLogin is on. */
  insecureLogin(session: Session, uid: string): void {
    if (!this.config.auth.insecureUidLogin) {
      throw new HeraldError('unauthorized', 'login with a bare uid is disabled: send {"action":"login","token":...} (or enable auth.insecureUidLogin)');
    }
    this.applyIdentity(session, { uid, expiresAt: undefined, topics: [], publish: [], info: undefined });
    session.rawPush = true;
  }

  /**
   * Gives a session an identity: user index, grants, expiry. Subscriptions
   * that neither the new identity nor a subscribe token the connection still
   * holds (same uid, not expired) grants are dropped; their topics are returned.
   */
  private applyIdentity(session: Session, identity: Identity): string[] {
    const limit = this.config.limits.maxConnectionsPerUser;
    if (session.uid !== identity.uid && this.hub.userSessions(identity.uid).size >= limit) {
      throw new HeraldError('rate_limited', `too many connections for user ${identity.uid} (limit ${limit})`);
    }
    this.hub.setUser(session, identity.uid);
    const grants: Grants = { topics: identity.topics, publish: identity.publish };
    session.grants = grants;
    session.info = identity.info;
    session.rawPush = false;
    const dropped = [...session.topics].filter((topic) => this.permissions.subscribeProblem(session, topic, this.heldGrant(session, topic)) !== null);
    for (const topic of dropped) this.hub.unsubscribe(session, topic);
    this.scheduleExpiry(session, identity.expiresAt);
    return dropped;
  }

  /** The subscribe-token grant the connection still holds for a topic: issued to its current uid and not expired (with clockTolerance). */
  private heldGrant(session: Session, topic: string): string[] {
    const held = session.subscribeGrants?.get(topic);
    if (!held || held.uid !== session.uid) return [];
    if (held.expiresAt !== undefined && held.expiresAt + this.tokens.clockTolerance <= Date.now()) return [];
    return [held.grant];
  }

  /** At expiry (the token's `exp` plus `auth.jwt.clockTolerance`): an error frame, then a grace period to log in again, then close 4001. */
  private scheduleExpiry(session: Session, expiresAt: number | undefined): void {
    if (session.authTimer) clearTimeout(session.authTimer);
    session.authTimer = undefined;
    session.expiresAt = expiresAt;
    if (expiresAt === undefined) return;
    const grace = this.config.auth.expiryGrace;
    // The same tolerance as acceptance: a token accepted within clockTolerance past its `exp` is not answered `token_expired` at once.
    after(expiresAt + this.tokens.clockTolerance - Date.now(), session, () => {
      if (session.expiresAt !== expiresAt || session.state !== 'open') return;
      session.write(encodeTextFrame(toJson({ action: 'error', error: { code: 'token_expired', message: `token expired: log in with a fresh token within ${grace} ms` } })));
      after(grace, session, () => {
        if (session.expiresAt === expiresAt) this.closeSession(session, CloseCode.TOKEN_EXPIRED, 'token expired');
      });
    });
  }

  onSlowConsumer(session: Session, queuedBytes: number): void {
    this.stats.slowConsumers++;
    this.metrics.slowConsumers.inc();
    this.log.warn({ conn: session.id, queuedBytes, limit: this.maxQueueBytes }, 'slow consumer: closing');
    this.closeSession(session, CloseCode.TRY_AGAIN_LATER, `slow consumer: over ${this.maxQueueBytes} bytes queued`);
  }

  onHandlerError(session: Session, err: unknown): void {
    this.reportError(session, err);
  }

  reportError(session: Session, err: unknown): void {
    this.log.error({ conn: session.id, err }, 'unexpected error while handling a frame');
  }

  // ---- internals ----------------------------------------------------------

  private opened(session: Session): void {
    if (session.state !== 'connecting') return;
    if (!this.config.auth.anonymous && session.uid === undefined) {
      if (!session.protocol.canLogIn) {
        // Nothing it sends could identify it: refused before any of its frames is handled.
        this.closeSession(session, CloseCode.UNAUTHORIZED, `login required: a ${session.protocol.name} connection identifies itself with ?token= or the connect hook`);
        return;
      }
      after(this.config.auth.loginTimeout, session, () => {
        if (session.uid === undefined) this.closeSession(session, CloseCode.UNAUTHORIZED, 'login required');
      });
    }
    // The protocol's own start (a raw endpoint's subscriptions); it may close the connection.
    session.protocol.onOpen?.(session);
    if (session.state !== 'connecting') return;
    session.open();
    this.events.emit('connect', session);
  }

  /** Closes a session from the server side and takes it out of the hub at once. */
  closeSession(session: Session, code: number, reason: string): void {
    session.close(code, reason);
    this.detach(session, code, reason, 'server');
  }

  private terminateSession(session: Session, reason: string): void {
    session.terminate(1006, reason);
    this.detach(session, 1006, reason, 'server');
  }

  private readonly detached = new WeakSet<Session>();

  /** Removes a session from the hub, once, with a log line and a `disconnect` event. */
  private detach(session: Session, code: number, reason: string, by: 'server' | 'client'): void {
    if (this.detached.has(session)) return;
    this.detached.add(session);
    this.hub.remove(session);
    session.protocol.onClose?.(session);
    if (session.authTimer) clearTimeout(session.authTimer);
    const ip = this.sessionIp.get(session);
    if (ip !== undefined) this.admission.release(ip);
    this.stats.messagesOut += session.framesOut;
    this.log.info(
      { conn: session.id, code, reason: reason || CLOSE_CODE_MEANINGS[code], by, ms: Date.now() - session.connectedAt, in: session.framesIn, out: session.framesOut },
      'connection closed',
    );
    this.metrics.disconnects.inc({ code: String(code), by });
    this.events.emit('disconnect', session, { code, reason, by });
  }

  /**
   * Closes sessions with 1001 spread evenly over `shutdown.drainWindow`: n
   * connections in at most one batch per 50 ms, batch i at i/batches of the
   * window (n = 20 over 3 s: one every 150 ms), each after what is queued for
   * it. Clients that reconnect at once land on other nodes over the window,
   * not all in the same second.
   */
  private async drain(sessions: Session[]): Promise<void> {
    const window = this.config.shutdown.drainWindow;
    const batches = Math.max(1, Math.min(sessions.length, Math.floor(window / 50)));
    const perBatch = Math.ceil(sessions.length / batches);
    const start = Date.now();
    for (let batch = 0; batch * perBatch < sessions.length; batch++) {
      // Timed from the start, so that slow batches do not stretch the window.
      const wait = start + (batch * window) / batches - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      for (const session of sessions.slice(batch * perBatch, (batch + 1) * perBatch)) {
        if (session.state === 'open' || session.state === 'connecting') this.closeSession(session, CloseCode.GOING_AWAY, 'server shutting down: reconnect');
      }
    }
  }

  /**
   * Shutdown keeps the listener open while it drains, so that `/readyz`
   * answers 503 (and upgrades are refused with 503) until the connections
   * are gone; then it stops listening and closes the broker.
   */
  private async shutdown(): Promise<void> {
    this.log.info({ connections: this.hub.sessions.size }, 'shutting down');
    this.heartbeat.stop();
    const sessions = [...this.hub.sessions.values()];
    const allClosed = Promise.all(
      sessions.map((session) => (session.state === 'closed' ? undefined : new Promise<void>((resolve) => session.ws.once('close', () => resolve())))),
    );
    await this.drain(sessions);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.config.shutdown.timeout);
    });
    const cut = await Promise.race([allClosed.then(() => false), timedOut]);
    clearTimeout(timer);
    if (cut) {
      const left = sessions.filter((session) => session.state !== 'closed');
      this.log.warn({ connections: left.length }, 'shutdown timeout: cutting connections that did not close');
      for (const session of left) session.ws.terminate();
    }
    // Stops listening; resolves when in-flight requests and every socket are done.
    await this.http.close();
    if (this.broker.state === 'ready') await this.cluster.stop();
    await this.broker.close();
    this.log.info('herald stopped');
  }
}

/** The close code that refuses a connection for an error of this code. */
function closeCodeFor(code: string): number {
  if (code === 'unauthorized' || code === 'token_expired') return CloseCode.UNAUTHORIZED;
  if (code === 'forbidden') return CloseCode.FORBIDDEN;
  if (code === 'rate_limited') return CloseCode.TOO_MANY_CONNECTIONS;
  return CloseCode.RECONNECT;
}

const MAX_TIMER = 2 ** 31 - 1;

/** Runs `fn` after `ms` as the session's auth timer; longer than a timer can wait, it waits in steps. */
function after(ms: number, session: Session, fn: () => void): void {
  if (session.authTimer) clearTimeout(session.authTimer);
  const delay = Math.max(0, ms);
  session.authTimer = setTimeout(() => {
    session.authTimer = undefined;
    if (delay > MAX_TIMER) after(delay - MAX_TIMER, session, fn);
    else fn();
  }, Math.min(delay, MAX_TIMER));
  session.authTimer.unref();
}

/**
 * How long a subscribe keeps retrying a history store that does not answer
 * (Redis restarting) before it answers without a position (`unavailable`).
 */
const SUBSCRIBE_READ_RETRY = 5000;

/** Runs `read` until it succeeds or `within` ms have passed, every 200 ms. */
async function readRetrying<T>(read: () => T | Promise<T>, within: number): Promise<T> {
  const until = Date.now() + within;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      if (Date.now() + 200 > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Where history is kept: in Redis when the broker is Redis (shared by the cluster), else in this process's memory. */
function createHistoryStore(config: HeraldConfig, broker: Broker): HistoryStore {
  const store = config.historyStore === 'auto' ? (broker instanceof RedisBroker ? 'redis' : 'memory') : config.historyStore;
  if (store === 'memory') return new MemoryHistory(config.historyMaxBytes);
  const redis = broker instanceof RedisBroker ? broker : broker instanceof SplitBroker ? broker.history : null;
  if (!redis) throw new HeraldError('bad_request', 'historyStore "redis" needs broker "redis" or "nats"');
  return new RedisHistory(() => redis.commands(), config.redis.prefix, (topic) => redis.channelOf(topic));
}

/** The topic namespaces of the brokers in use (none for the memory broker or a custom one). */
function brokerNamespaces(broker: Broker): BrokerNamespace[] {
  if (broker instanceof SplitBroker) return [...brokerNamespaces(broker.main), broker.history.namespace];
  if (broker instanceof RedisBroker || broker instanceof NatsBroker) return [broker.namespace];
  return [];
}

/** What a recovery answers in the subscribe reply. */
export interface RecoveryResult {
  recovered: boolean;
  reason?: RecoveryFailure | 'unavailable';
  offset?: number;
  epoch?: string;
}

function createBroker(config: HeraldConfig, nodeId: string, log: Logger): Broker {
  const publishTimeout = config.publishTimeout;
  if (config.broker === 'nats' && config.historyStore === 'redis') {
    const nats = new NatsBroker({ ...config.nats, nodeId, publishTimeout, log: log.child({ component: 'nats' }) });
    const redis = new RedisBroker({ ...config.redis, nodeId, publishTimeout, log: log.child({ component: 'redis' }) });
    return new SplitBroker(nats, redis, (topic) => ruleFor(config.history, topic) !== undefined);
  }
  switch (config.broker) {
    case 'redis':
      return new RedisBroker({ ...config.redis, nodeId, publishTimeout, log: log.child({ component: 'redis' }) });
    case 'nats':
      return new NatsBroker({ ...config.nats, nodeId, publishTimeout, log: log.child({ component: 'nats' }) });
    default:
      return new MemoryBroker();
  }
}
