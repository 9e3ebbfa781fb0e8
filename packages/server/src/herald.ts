import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Broker, BrokerState, LhttpPublication, PublishResult } from './broker/broker.js';
import type { Tags } from './publication.js';
import type { HeraldConfig, HeraldConfigInput } from './config.js';
import type { Logger } from './log.js';
import type { Refusal } from './transport/transport.js';

/**
 * The library API of a running Herald, and nothing else: what `createHerald`
 * resolves with, and all that the HTTP layer, the demo backend and the CLI
 * may use (src/http/, src/demo/, src/cli/ depend on this interface, never on
 * the class behind it). Every publication, whatever its source, goes through
 * `publish`, `publishMany` or `publishLhttp`.
 */
export interface Herald {
  /** The validated configuration it runs with (after the demo backend's secret, if any). */
  readonly config: HeraldConfig;
  readonly log: Logger;
  /** This node's name in the cluster (`nodeId`, or the host name plus a random suffix). */
  readonly nodeId: string;
  /** The address the server listens on. */
  readonly address: AddressInfo;
  readonly port: number;
  /** Base HTTP URL of this server, for clients on this machine (`http://127.0.0.1:<port>` for a wildcard address). */
  readonly url: string;
  /** True from the moment `close()` was called. */
  readonly closing: boolean;
  /** Ready to serve: listening, broker ready, not shutting down (what `/readyz` answers). */
  readonly ready: boolean;
  /** The broker's name (`memory`, `redis`, `nats`, `nats+redis`, or a custom broker's) and state. */
  readonly broker: { readonly name: string; readonly state: BrokerState };

  /**
   * Publishes `message` (any JSON value) to `topic`: this node's subscribers
   * first, then the other nodes through the broker. Resolves with the
   * publication's `offset`/`epoch` on a topic with history (else `{}`) once
   * the broker accepted it. Rejects with `HeraldError` `invalid_topic`,
   * `bad_request` (not JSON, or an `exclude` that is no connection id),
   * `too_large` (over `limits.maxMessageBytes`) or `unavailable` (broker
   * down, shutting down, or no answer within `publishTimeout`).
   */
  publish(topic: string, message: unknown, source?: PublicationSource, options?: PublishOptions): Promise<PublishResult>;
  /**
   * One message to several topics (each once, at most `limits.maxBatchSize`), serialised to
   * JSON once: each topic gets its own publication (and its own
   * `offset`/`epoch` where it keeps history), all carrying the same text.
   * Every topic is checked first; a refused one publishes nothing and
   * rejects naming it (`topic <name>: ...`). Published in order; when the
   * broker fails half way, the earlier topics stay published and the
   * rejection (`unavailable`) says how many. Resolves with one result per
   * topic, in order. `options.idempotencyKey` is remembered per topic;
   * `options.exclude` applies to every topic. Errors as `publish`, and
   * `too_large` for more topics than `limits.maxBatchSize`.
   */
  broadcast(topics: readonly string[], message: unknown, source?: PublicationSource, options?: PublishOptions): Promise<PublishResult[]>;
  /**
   * Publishes several publications in order. Every item is checked (topic,
   * JSON, size) before any is published: a bad item publishes nothing and
   * rejects with its error, its label in the message (`item 3: ...`). When the
   * broker fails half way, the earlier items stay published and the rejection
   * (`unavailable`) says how many. Resolves with one result per item.
   */
  publishMany(items: ReadonlyArray<BatchItem>, source?: PublicationSource): Promise<PublishResult[]>;
  /**
   * Publishes an LHTTP message (docs/lhttp.md): LHTTP subscribers receive
   * `message.text` as it is, JSON subscribers
   * `{"action":"publish","topic","message":<body>,"lhttp":{command,headers}}`.
   */
  publishLhttp(topic: string, message: LhttpPublication, body: string, source?: PublicationSource): Promise<PublishResult>;
  /**
   * Pushes `message` to every connection of the user(s), on every node, as
   * `{"action":"push","message":...}`. Rejects with `unavailable` when the
   * other nodes cannot be reached (it still reached this node's connections).
   */
  send(uid: string | readonly string[], message: unknown): Promise<PushResult>;
  /**
   * The push-centre seed's `/send`: connections that logged in the seed's way
   * (`{"uid":...}`) get `text` as it is; the others get the push envelope.
   */
  sendSeed(uid: string, text: string): Promise<PushResult>;
  /**
   * Past publications of a topic with history: after `since` (oldest first),
   * or the newest `limit` with `reverse`. Rejects with `not_found` for a topic
   * without history, `bad_request` when `since` names another epoch or an
   * offset ahead of the topic's latest one.
   */
  historyOf(topic: string, options?: HistoryOptions): Promise<HistoryPage>;
  /** Who is subscribed to a topic that has presence, cluster-wide. Throws `not_found` for a topic without presence. */
  presence(topic: string): PresenceView;
  /** Whether a uid has a connection on any node of the cluster. */
  isUserConnected(uid: string): boolean;
  /** How many connections a user has on this node. */
  userConnections(uid: string): number;
  /**
   * Closes every connection of a user on this node with 4504 and returns
   * how many it closed; the other nodes that hold the user are asked to
   * close theirs too, without waiting for them (`disconnectUser` waits and
   * counts them).
   */
  disconnect(uid: string, reason?: string): number;
  /**
   * Closes every connection of a user, on every node, with `options.code`
   * (4000–4999, default 4504: "do not reconnect"; 4000 asks the client to
   * reconnect) and `options.reason` (at most 100 characters, default
   * "disconnected by the server"). Resolves once every node that holds the
   * user answered, with the connections closed in all. Rejects with
   * `bad_request` (a code outside 4000–4999, a reason too long) or
   * `unavailable` (a node holding the user did not answer within
   * `cluster.requestTimeout`, or the broker is down; what this node and the
   * nodes that answered did stays done, and the message says so).
   */
  disconnectUser(uid: string, options?: DisconnectOptions): Promise<UserResult>;
  /**
   * Subscribes every open connection of a user, on every node, to `topics`
   * (server-side subscriptions: no permission check, the backend decides),
   * through the same path as a client's subscribe, so history, cache mode
   * and presence work as usual. Each connection is told in its protocol's
   * words (the JSON protocol: `{"action":"subscribed","topic":...}` with the
   * topic's `offset`/`epoch` where it keeps history, then the latest value
   * of a cache-mode topic); LHTTP and raw connections simply start receiving.
   * A single-topic SSE stream and a connection at `limits.maxTopicsPerConnection`
   * are left out. With `options.persistent`, the user's connections that
   * open later, on any node, are subscribed too as they get their identity,
   * until `unsubscribeUser`. Resolves with the connections that hold every
   * topic now. Rejects with `invalid_topic`, `too_many_topics` (more topics
   * than one connection may hold), `bad_request` or `unavailable` (as
   * `disconnectUser`).
   */
  subscribeUser(uid: string, topics: string | readonly string[], options?: UserSubscribeOptions): Promise<UserResult>;
  /**
   * Ends the subscriptions of every connection of a user, on every node, to
   * `topics`, whoever made them (the client or the server), and forgets them
   * as persistent topics of the user. Each connection is told
   * (`{"action":"unsubscribed","topic":...,"reason":...}` in the JSON
   * protocol; the SDK ends the subscription). Resolves with the connections
   * that left at least one of the topics. Errors as `subscribeUser`.
   */
  unsubscribeUser(uid: string, topics: string | readonly string[], options?: UserUnsubscribeOptions): Promise<UserResult>;
  /**
   * Every connection of a user, on every node, oldest first. Rejects with
   * `unavailable` when a node holding the user does not answer within
   * `cluster.requestTimeout`.
   */
  listConnections(uid: string): Promise<ConnectionView[]>;
  /** The live nodes of the cluster, this one included, with their figures. */
  clusterView(): NodeView[];
  /** The topics with the most subscribers on this node, busiest first (at most `limit`). */
  busiestTopics(limit: number): Array<{ topic: string; subscribers: number }>;
  /** Why a topic name is refused (Herald's rule plus the broker's namespace), or null. */
  topicProblem(topic: string): string | null;
  /** The node's status (under `--workers`, the whole node's). */
  status(): HeraldStatus;
  /** Registers a handler for a custom JSON action `{"action": name, ...}`; a built-in name throws `TypeError`. */
  handle(action: string, handler: CommandHandler): this;
  /** The Lhttp seed's server API: processors by command, and header filters run after the built-in ones (docs/lhttp.md). */
  readonly lhttp: { register(command: string, processor: LhttpProcessor): void; addFilter(filter: LhttpFilter): void };
  on<E extends keyof HeraldEvents>(event: E, listener: (...args: HeraldEvents[E]) => void): this;
  off<E extends keyof HeraldEvents>(event: E, listener: (...args: HeraldEvents[E]) => void): this;
  /**
   * Graceful shutdown: refuses new connections, closes every connection with
   * 1001 spread over `shutdown.drainWindow` (after what is queued for each),
   * waits at most `shutdown.timeout`, cuts the rest, then stops the HTTP
   * server, the cluster registry and the broker. Idempotent.
   */
  close(): Promise<void>;
}

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

/** `createHerald`'s input: the configuration (see docs/configuration.md) plus what only a program can give. */
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
  /** A connection that must not receive it (see `PublishOptions.exclude`). */
  exclude?: string | undefined;
  /** See `PublishOptions.tags`. */
  tags?: Tags | undefined;
  /** See `PublishOptions.event`. */
  event?: string | undefined;
  /** How errors name the item (default `item <index>`). */
  label?: string;
}

export interface PublishOptions {
  /** A retry with the same key within `idempotencyWindow` publishes nothing and answers the first result. */
  idempotencyKey?: string;
  /**
   * A connection id (`ConnectionInfo.id`, a `listConnections` entry's `id`)
   * that must not receive the publication, on whatever node it is: its
   * sender, which already knows. A live-delivery filter only: the
   * publication is stored in history as any other, and a recovery (or a
   * node catching up from the shared history) hands it to every subscriber.
   */
  exclude?: string;
  /**
   * Tags that subscription filters test (docs/backend.md, "Tags and
   * filters"): at most 16, names of 1 to 64 characters, string values of at
   * most 256 characters; anything else is refused with `bad_request`. Kept
   * in history with the publication; JSON frames carry them as `"tags"`.
   */
  tags?: Tags;
  /**
   * An event name (1 to 200 characters, no control character), as Pusher's
   * events have; kept in history; JSON frames carry it as `"event"`.
   * Anything else is refused with `bad_request`.
   */
  event?: string;
}

export interface UserSubscribeOptions {
  /** Also subscribe the user's connections that open later, on any node, until `unsubscribeUser` (default false: the open ones only). */
  persistent?: boolean;
}

export interface UserUnsubscribeOptions {
  /** Why, as the connections are told (at most 100 characters, default "server"). */
  reason?: string;
}

export interface DisconnectOptions {
  /** The close code, 4000–4999 (default 4504). */
  code?: number;
  /** The close reason (at most 100 characters, default "disconnected by the server"). */
  reason?: string;
}

/** What a server API call on a user's connections did, cluster-wide. */
export interface UserResult {
  /** The user's connections it concerned, on this node and on the nodes that answered (see each method). */
  connections: number;
  /** Other nodes that hold the user and answered (0 on a single node). */
  nodes: number;
}

/** One connection of a user, as `listConnections` lists it. */
export interface ConnectionView {
  /** The connection id (what `PublishOptions.exclude` takes). */
  id: string;
  /** The node that holds it (`nodeId`). */
  node: string;
  uid: string;
  /** The protocol it speaks: `json`, `lhttp`, `raw`, `sse`. */
  protocol: string;
  /** What carries it: `websocket`, `sse`, `http-stream`. */
  transport: string;
  /** The topics it is subscribed to. */
  topics: string[];
  /** When it opened (ms since the epoch). */
  connectedAt: number;
}

/** A topic's position: the offset of its latest publication in an epoch (a history's lifetime). */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface HistoryOptions {
  /** Only publications after this position (its epoch must be the topic's current one). */
  since?: StreamPosition;
  /** At most this many (capped at the topic's history size). */
  limit?: number;
  /** The newest first. */
  reverse?: boolean;
}

export interface HistoryPage {
  topic: string;
  /** The topic's latest offset and its epoch. */
  offset: number;
  epoch: string;
  /** Oldest first (newest first with `reverse`); `event` and `tags` when the publication had them. */
  publications: Array<{ offset: number; time: number; message: unknown; lhttp?: { command: string; headers: Record<string, string> }; event?: string; tags?: Tags }>;
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
  /** Seconds since start. */
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

/** Where a publication came from (a label of the `herald_publications_total` metric). */
export type PublicationSource = 'client' | 'http' | 'library' | 'broker';

/** What a connection's command handler is told about it. */
export interface ConnectionInfo {
  readonly id: string;
  readonly ip: string;
  readonly uid: string | undefined;
  readonly topics: ReadonlySet<string>;
  readonly connectedAt: number;
}

export interface CommandContext {
  connection: ConnectionInfo;
}

/**
 * An application-registered handler for a custom action. Its return value
 * (or the value its promise resolves to) becomes the reply's `result`; a
 * thrown `HeraldError` becomes an error reply with its code.
 */
export type CommandHandler = (command: Record<string, unknown>, context: CommandContext) => unknown;

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

/** What a node tells the others about itself in each heartbeat. */
export interface NodeStats {
  connections: number;
  users: number;
  topics: number;
  subscriptions: number;
  /** The `herald serve --workers` node this process is a worker of (absent for a single process). */
  workerOf?: string;
  /** A worker's counters, summed by `/api/status` into its node's figures. */
  messagesIn?: number;
  messagesOut?: number;
  publications?: number;
  deliveries?: number;
  slowConsumerDisconnects?: number;
}

export interface NodeView extends NodeStats {
  id: string;
  self: boolean;
  /** When this node last heard from it (ms since the epoch). */
  lastSeen: number;
}

/**
 * Who may open a connection: the per-address limits first (connections held,
 * new connections per second), then the node's rate behind them, so that one
 * address cannot empty the node's bucket for everyone else. An admitted
 * connection holds its slot until `release`.
 */
export interface Admission {
  /** null admits (and counts) the connection; a refusal says why not. */
  admit(ip: string): Refusal | null | Promise<Refusal | null>;
  /** Gives back the slot of an admitted connection (closed, or never opened). */
  release(ip: string): void;
}


/** One part of an LHTTP multipart message, in the original's linked-list shape. */
export interface LhttpMultipart {
  getNext(): LhttpMultipart | null;
  getBody(): string;
  getHeaders(): Record<string, string>;
}

/**
 * What a processor or filter gets for one LHTTP message: the original's
 * `WsHandler` (SEEDS-SPEC §3.5, §3.7), with its semantics kept:
 * `addHeader(k, v)` replaces the response headers with `{k: v}`;
 * `setHeader(k, v)` changes the request headers, which the built-in headers
 * read afterwards (`setHeader('publish', '')` cancels a publish); `send(body)`
 * answers with the response command (or the request's) and the response
 * headers (or all request headers), then resets both. Setting `stopped`
 * ends the message's way through the pipeline.
 */
export interface LhttpMessage {
  readonly connection: ConnectionInfo;
  readonly command: string;
  readonly headers: Map<string, string>;
  readonly body: string;
  stopped: boolean;
  getCommand(): string;
  /** The request header's value, exact key; "" when absent. */
  getHeader(key: string): string;
  getBody(): string;
  setCommand(command: string): void;
  addHeader(key: string, value: string): void;
  setHeader(key: string, value: string): void;
  getMultipart(): LhttpMultipart | null;
  /** The message as the response state says: what `send` writes and `publish` carries. */
  response(body: string): string;
  send(body: string): void;
}

type LhttpHook = (message: LhttpMessage) => void | Promise<void>;

/** A processor for one command (the original's HandlerCallbacks), registered with `herald.lhttp.register`. */
export interface LhttpProcessor {
  /** Once per connection, before the first message's onMessage (lazily, as in the original). */
  onOpen?: LhttpHook;
  onMessage?: LhttpHook;
  /** When the connection closes, on the processor of its last message. */
  onClose?: LhttpHook;
}

/** A header filter (the original's HeadFilterHandler), added with `herald.lhttp.addFilter`: runs for every message, whatever its command. */
export interface LhttpFilter {
  onOpen?: LhttpHook;
  beforeRequest?: LhttpHook;
  afterRequest?: LhttpHook;
  onClose?: LhttpHook;
}
