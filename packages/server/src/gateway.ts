import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CloseCode, CLOSE_CODE_MEANINGS, SUBPROTOCOL_JSON, topicProblem } from '@herald/protocol';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { Broker, BrokerState, Publication, PublishResult } from './broker/broker.js';
import { MemoryBroker } from './broker/memory.js';
import { validateConfig, type HeraldConfig, type HeraldConfigInput } from './config.js';
import { HeraldError } from './errors.js';
import { buildHttpApi } from './http/api.js';
import { encodeTextFrame } from './hub/frame.js';
import { Flusher } from './hub/flusher.js';
import { Hub } from './hub/hub.js';
import { Session, type SessionHost } from './hub/session.js';
import { createLogger, type Logger } from './log.js';
import { JsonProtocol, type CommandHandler, type ConnectionInfo } from './protocols/json.js';
import type { Protocol } from './protocols/protocol.js';
import { Heartbeat } from './transport/heartbeat.js';
import { createUpgradeHandler, type UpgradeHost } from './transport/websocket.js';
import { VERSION } from './version.js';

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
  connect: [connection: ConnectionInfo];
  disconnect: [connection: ConnectionInfo, info: DisconnectInfo];
}

export interface HeraldOptions extends HeraldConfigInput {
  /** A pino logger to use instead of creating one from `log`. */
  logger?: Logger;
  onConnect?: ConnectHook;
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
}

const BUILT_IN_ACTIONS = new Set(['subscribe', 'unsubscribe', 'publish', 'ping', 'pong', 'login', 'history', 'presence', 'error', 'push']);

const DEMO_DIR = fileURLToPath(new URL('../../../../demo', import.meta.url));

/** Starts a Herald gateway and resolves once it listens. */
export async function createHerald(options: HeraldOptions = {}): Promise<Herald> {
  const { logger, onConnect, ...input } = options;
  const herald = new Herald(validateConfig(input), { logger, onConnect });
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

  private readonly events = new EventEmitter<HeraldEvents>();
  private readonly handlers = new Map<string, CommandHandler>();
  private readonly protocols = new Map<string, Protocol>();
  private readonly defaultProtocol: Protocol;
  private readonly heartbeat: Heartbeat;
  private readonly onConnect: ConnectHook | undefined;
  private readonly startedAt = Date.now();
  private sessionSeq = 0;
  private closingPromise: Promise<void> | null = null;
  private stats = { messagesIn: 0, messagesOut: 0, publications: 0, slowConsumers: 0 };

  constructor(config: HeraldConfig, extras: { logger?: Logger | undefined; onConnect?: ConnectHook | undefined } = {}) {
    this.config = config;
    this.log = extras.logger ?? createLogger(config.log);
    this.onConnect = extras.onConnect;
    this.nodeId = config.nodeId ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
    this.hub = new Hub({
      onTopicOpened: (topic) => this.broker.subscribe(topic),
      onTopicClosed: (topic) => this.broker.unsubscribe(topic),
    });
    this.broker = new MemoryBroker();
    this.defaultProtocol = new JsonProtocol(this);
    this.protocols.set(SUBPROTOCOL_JSON, this.defaultProtocol);
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
    this.http = buildHttpApi(this, { demoDir: config.demo.enabled && existsSync(demoDir) ? demoDir : null });
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
  publish(topic: string, message: unknown): Promise<PublishResult> {
    const problem = topicProblem(topic, this.config.limits.maxTopicLength);
    if (problem) return Promise.reject(new HeraldError('invalid_topic', problem));
    if (this.closing) return Promise.reject(new HeraldError('unavailable', 'server is shutting down'));
    let payload: string | undefined;
    try {
      payload = JSON.stringify(message);
    } catch (err) {
      return Promise.reject(new HeraldError('bad_request', `message is not serialisable as JSON: ${(err as Error).message}`));
    }
    if (payload === undefined) return Promise.reject(new HeraldError('bad_request', 'message must be a JSON value'));
    const max = this.config.limits.maxMessageBytes;
    if (payload.length > max / 3 && Buffer.byteLength(payload) > max) {
      return Promise.reject(new HeraldError('too_large', `message is ${Buffer.byteLength(payload)} bytes, over the limit of ${max}`));
    }
    this.stats.publications++;
    const publication: Publication = { topic, payload };
    return this.broker.publish(publication);
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

  status(): HeraldStatus {
    let users = 0;
    let messagesOut = this.stats.messagesOut;
    const seen = new Set<string>();
    for (const session of this.hub.sessions.values()) {
      messagesOut += session.framesOut;
      if (session.uid !== undefined && !seen.has(session.uid)) {
        seen.add(session.uid);
        users++;
      }
    }
    return {
      node: this.nodeId,
      version: VERSION,
      uptime: Math.round((Date.now() - this.startedAt) / 1000),
      broker: { name: this.broker.name, state: this.broker.state },
      connections: this.hub.sessions.size,
      topics: this.hub.topicCount,
      subscriptions: this.hub.subscriptions,
      users,
      messagesIn: this.stats.messagesIn,
      messagesOut,
      publications: this.stats.publications,
      deliveries: this.hub.deliveries,
      slowConsumerDisconnects: this.stats.slowConsumers,
    };
  }

  /** Ready to serve: listening, broker ready, not shutting down. */
  get ready(): boolean {
    return !this.closing && this.broker.state === 'ready' && this.http.server.listening;
  }

  /** Starts the broker and the HTTP server. */
  async listen(): Promise<void> {
    await this.broker.start({
      deliver: (publication) => {
        this.hub.deliver(publication);
      },
      onStateChange: (state, detail) => this.log.info({ broker: this.broker.name, state, detail }, 'broker state'),
    });
    await this.http.listen({ port: this.config.port, host: this.config.host });
    this.heartbeat.start();
    this.log.info({ url: this.url, node: this.nodeId, broker: this.broker.name, version: VERSION }, 'herald listening');
    if (this.config.apiKeys.length === 0) {
      this.log.warn('no apiKeys configured: the HTTP API answers loopback callers only (configure apiKeys to open it to other hosts)');
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

  get maxQueueBytes(): number {
    return this.config.limits.maxQueueBytes;
  }

  get maxTopicsPerConnection(): number {
    return this.config.limits.maxTopicsPerConnection;
  }

  get maxTopicLength(): number {
    return this.config.limits.maxTopicLength;
  }

  get clientPublish(): 'all' | 'none' {
    return this.config.clientPublish;
  }

  get closeTimeout(): number {
    return this.config.shutdown.timeout;
  }

  get supportedProtocols(): string[] {
    return [...this.protocols.keys()];
  }

  protocolFor(offered: Set<string>): Protocol | null {
    if (offered.size === 0) return this.defaultProtocol;
    for (const name of offered) {
      const protocol = this.protocols.get(name);
      if (protocol) return protocol;
    }
    return null;
  }

  commandHandler(action: string): CommandHandler | undefined {
    return this.handlers.get(action);
  }

  accept(ws: WebSocket, socket: Duplex, request: IncomingMessage, protocol: Protocol): void {
    const id = `${this.nodeId.slice(-8)}-${(++this.sessionSeq).toString(36)}`;
    const ip = request.socket.remoteAddress ?? 'unknown';
    const session = new Session(id, ws, socket, protocol, ip, this);
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
    this.log.info({ conn: id, ip, protocol: protocol.name }, 'connection opened');
    if (!this.onConnect) {
      this.opened(session);
      return;
    }
    const info: ConnectInfo = {
      id,
      ip,
      uid: session.uid,
      topics: session.topics,
      connectedAt: session.connectedAt,
      url: request.url ?? '/',
      headers: request.headers,
    };
    Promise.resolve()
      .then(() => this.onConnect!(info))
      .then(
        () => this.opened(session),
        (err: unknown) => {
          const code = err instanceof HeraldError ? err.code : 'internal';
          if (!(err instanceof HeraldError)) this.log.error({ conn: id, err }, 'connect hook failed');
          const closeCode = code === 'unauthorized' ? CloseCode.UNAUTHORIZED : code === 'forbidden' ? CloseCode.FORBIDDEN : CloseCode.RECONNECT;
          this.closeSession(session, closeCode, err instanceof HeraldError ? err.message : 'connection refused');
        },
      );
  }

  onSlowConsumer(session: Session, queuedBytes: number): void {
    this.stats.slowConsumers++;
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
    this.stats.messagesOut += session.framesOut;
    this.log.info(
      { conn: session.id, code, reason: reason || CLOSE_CODE_MEANINGS[code], by, ms: Date.now() - session.connectedAt, in: session.framesIn, out: session.framesOut },
      'connection closed',
    );
    this.events.emit('disconnect', session, { code, reason, by });
  }

  private async shutdown(): Promise<void> {
    this.log.info({ connections: this.hub.sessions.size }, 'shutting down');
    this.heartbeat.stop();
    // Stops listening at once; resolves when in-flight requests and every socket are done.
    const httpClosed = this.http.close();
    const sessions = [...this.hub.sessions.values()];
    const allClosed = Promise.all(
      sessions.map((session) => (session.state === 'closed' ? undefined : new Promise<void>((resolve) => session.ws.once('close', () => resolve())))),
    );
    for (const session of sessions) this.closeSession(session, CloseCode.GOING_AWAY, 'server shutting down');
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
    await httpClosed;
    await this.broker.close();
    this.log.info('herald stopped');
  }
}
