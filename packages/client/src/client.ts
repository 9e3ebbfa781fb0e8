import { shouldReconnect, truncateCloseReason, type ErrorCode, type Json, type StreamPosition, type Tags } from '@herald/protocol';
import { fullJitter } from './backoff.js';
import { defaultMemory, TransportChoice } from './choice.js';
import { Emitter } from './emitter.js';
import { ClosedError, DisconnectedError, HeraldClientError, ReceiveOnlyError, RequestError, TimeoutError } from './errors.js';
import { HttpStreamTransport, type FetchLike } from './http-stream.js';
import { DEFAULTS, type ClientEvents, type ClientOptions, type ClientState, type ResolvedOptions } from './options.js';
import { idleSse, SseTransport, type EventSourceConstructor, type SseRequest } from './sse.js';
import { Subscription, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';
import { siblingUrl, TRANSPORTS, type Transport, type TransportListener, type TransportName } from './transport.js';
import { WebSocketTransport, type WebSocketConstructor } from './websocket.js';

export type { ClientEvents, ClientOptions, ClientState } from './options.js';

type Reply = Record<string, unknown>;
type Settle = (error: HeraldClientError | null, reply: Reply | null) => void;

interface Pending {
  action: string;
  settle: Settle;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
}

/** One connection attempt; callbacks of an attempt that is not the client's current one are ignored. */
interface Connection {
  transport: Transport | null;
  opened: boolean;
  /** HTTP streaming and SSE take the token as they connect (a header, the URL): fetched first, and used for the login. */
  token?: string | undefined;
  tokenFetched: boolean;
  /** SSE: the topics whose position went in the URL (their subscribe replies say whether they were recovered). */
  recovering: Set<string>;
  /** SSE without a topic: nothing to open, so nothing learnt about the transport. */
  idle: boolean;
}

const MAX_TIMER = 2 ** 31 - 1;

// The server's code as is (the catalogue's descriptions stay out of the bundle); `internal` when missing.
const codeOf = (code: unknown): ErrorCode => (typeof code === 'string' ? (code as ErrorCode) : 'internal');

/**
 * A connection to Herald that stays up: it reconnects with full-jitter
 * backoff, logs in with a fresh token each time, restores every subscription
 * (asking for missed publications where the topic keeps history) and answers
 * every command with a promise. It connects over WebSocket, and falls back by
 * itself to HTTP streaming, then to SSE (receive-only), when a transport does
 * not open; subscriptions and their positions carry over.
 */
export class HeraldClient extends Emitter<ClientEvents> implements SubscriptionOwner {
  state: ClientState = 'disconnected';
  /** The uid the server knows this connection as, once logged in. */
  uid: string | undefined;
  /** The transport of the current connection or attempt (before the first, the one it will start with). The `transport` event tells changes. */
  transport: TransportName;
  /**
   * The server's id of the current connection, once logged in (undefined
   * between connections): give it to your backend so that the publication
   * it makes of what this client sent can `exclude` it.
   */
  connectionId: string | undefined;
  readonly #options: ResolvedOptions;
  readonly #platform: { WebSocket?: WebSocketConstructor | undefined; fetch?: FetchLike | undefined; EventSource?: EventSourceConstructor | undefined };
  readonly #urls: { stream: string; sse: string };
  readonly #choice: TransportChoice;
  #conn: Connection | null = null;
  #attempt = 0;
  #everConnected = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #queue: Array<() => void> = [];
  readonly #subscriptions = new Map<string, Subscription>();
  #reopening = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #fallbackTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #deadTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;

  /** @throws TypeError when `transports` names an unknown transport, or when the platform has none of them (no WebSocket, fetch, EventSource class). */
  constructor(options: ClientOptions) {
    super();
    const global = globalThis as { WebSocket?: WebSocketConstructor; fetch?: FetchLike; EventSource?: EventSourceConstructor };
    this.#platform = {
      WebSocket: options.WebSocket ?? global.WebSocket,
      fetch: options.fetch ?? global.fetch?.bind(globalThis),
      EventSource: options.EventSource ?? global.EventSource,
    };
    this.#options = { ...DEFAULTS, ...options };
    const wanted = this.#options.transports;
    for (const name of wanted) if (!TRANSPORTS.includes(name)) throw new TypeError(`transports: unknown transport ${String(name)}`);
    const has = { websocket: this.#platform.WebSocket, 'http-stream': this.#platform.fetch, sse: this.#platform.EventSource };
    const order = wanted.filter((name) => has[name] !== undefined);
    if (order.length === 0) {
      throw new TypeError(`no transport available of ${wanted.join(', ')}: pass WebSocket (on Node 20: the ws package), fetch or EventSource`);
    }
    this.#urls = { stream: options.streamUrl ?? siblingUrl(options.url, '/stream'), sse: options.sseUrl ?? siblingUrl(options.url, '/sse') };
    const memory = options.transportMemory === undefined ? defaultMemory() : options.transportMemory;
    this.#choice = new TransportChoice(order, memory, `herald.transport ${options.url}`, this.#options.rememberTransportFor);
    this.transport = this.#choice.current;
    // A phone back on the network should not wait out its backoff.
    const target = globalThis as { addEventListener?: (type: string, listener: () => void) => void };
    target.addEventListener?.('online', () => {
      if (this.state === 'disconnected' && this.#reconnectTimer !== undefined) this.#open();
    });
  }

  /** Starts connecting (again, after `close()`). Returns at once; listen for `connected`. */
  connect(): this {
    if (this.state === 'connecting' || this.state === 'connected') return this;
    this.#open();
    return this;
  }

  /** Closes the connection and stops reconnecting. Subscriptions are kept for a later `connect()`. */
  close(code = 1000, reason = 'client closed'): void {
    if (this.state === 'closed') return;
    const transport = this.#conn?.transport;
    this.#finish(code, reason);
    transport?.close(code, truncateCloseReason(reason));
  }

  /** Subscribes to a topic; the subscription is kept across reconnects. One subscription per topic. On SSE, the stream reopens with the topic added. */
  subscribe(topic: string, options: SubscribeOptions = {}): Subscription {
    let subscription = this.#subscriptions.get(topic);
    if (subscription && (!subscription.server || subscription.state === 'subscribed')) {
      // One the server made becomes the application's own: subscribed again by the client after a reconnect.
      subscription.server = false;
      return subscription;
    }
    if (subscription) subscription.server = false;
    else this.#subscriptions.set(topic, (subscription = new Subscription(topic, options, this)));
    if (this.state === 'connected') {
      if (this.#canSend) this.#sendSubscribe(subscription);
      else this.#reopenSoon();
    }
    return subscription;
  }

  /** The subscription to a topic, if any. */
  subscription(topic: string): Subscription | undefined {
    return this.#subscriptions.get(topic);
  }

  /** @internal Use `subscription.unsubscribe()`. */
  async unsubscribe(subscription: Subscription): Promise<void> {
    if (this.#subscriptions.get(subscription.topic) !== subscription) return;
    this.#subscriptions.delete(subscription.topic);
    subscription.ended();
    if (this.state !== 'connected') return;
    if (!this.#canSend) return this.#reopenSoon();
    try {
      await this.request('unsubscribe', { topic: subscription.topic });
    } catch (err) {
      // A subscribe the server refused, or a connection lost meanwhile: either way not subscribed any more.
      if (!(err instanceof HeraldClientError) || (err.code !== 'not_subscribed' && err.code !== 'disconnected')) throw err;
    }
  }

  /**
   * Publishes a message to a topic, with `tags` (that subscription filters
   * test: at most 16 string values) and an `event` name if given. Resolves
   * with its place in the topic's history, when it has one.
   */
  async publish(topic: string, message: Json, options: { tags?: Tags; event?: string } = {}): Promise<{ offset?: number; epoch?: string }> {
    const reply = await this.request('publish', { ...options, topic, message });
    return typeof reply.offset === 'number' ? { offset: reply.offset, epoch: reply.epoch as string } : {};
  }

  /** Logs in with a token (and uses it on later reconnects, unless `getToken` is set). */
  async login(token: string): Promise<{ uid: string; expiresAt?: number }> {
    const reply = await this.request('login', { token });
    this.#options.token = token;
    return this.#loggedIn(reply);
  }

  /** Past publications of a topic that keeps history. */
  async history(topic: string, options: { since?: StreamPosition; limit?: number; reverse?: boolean } = {}): Promise<Reply> {
    return this.request('history', { topic, ...options });
  }

  /** Who is subscribed to a topic that keeps presence. */
  async presence(topic: string): Promise<Reply> {
    return this.request('presence', { topic });
  }

  /**
   * Sends any command (an application's own actions included) and resolves
   * with the reply, or rejects with a RequestError carrying the server's code.
   * While not connected, the command waits for the connection (its timeout runs).
   * Over SSE it rejects with a ReceiveOnlyError.
   */
  request(action: string, fields: Record<string, unknown> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.#command({ ...fields, action }, (error, reply) => (error ? reject(error) : resolve(reply!)));
    });
  }

  /** Fetches a fresh token with `getToken` and logs in with it, without reconnecting (on SSE: reopens the stream with it). */
  async refreshToken(): Promise<void> {
    if (!this.#options.getToken) return;
    if (this.state === 'connected' && !this.#canSend) return this.#reopenSoon();
    const token = await this.#options.getToken();
    this.#loggedIn(await this.request('login', { token }));
  }

  /** Whether the current connection carries commands (false on SSE, and while there is none). */
  get #canSend(): boolean {
    return this.#conn?.transport?.canSend === true;
  }

  #command(frame: Record<string, unknown>, settle: Settle, options: { now?: boolean; timeout?: number } = {}): void {
    const action = String(frame.action);
    if (this.state === 'closed') return settle(new ClosedError('the client is closed'), null);
    const id = this.#nextId++;
    const ms = options.timeout ?? this.#options.requestTimeout;
    const pending: Pending = {
      action,
      settle,
      sent: false,
      timer: setTimeout(() => {
        if (this.#pending.delete(id)) settle(new TimeoutError(action, ms), null);
      }, ms),
    };
    this.#pending.set(id, pending);
    const text = JSON.stringify({ id, ...frame });
    const send = () => {
      const transport = this.#conn?.transport;
      if (!this.#pending.has(id) || !transport) return;
      if (!transport.canSend) {
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        return settle(new ReceiveOnlyError(action), null);
      }
      pending.sent = true;
      transport.send(text);
    };
    if (options.now || this.state === 'connected') send();
    else this.#queue.push(send);
  }

  #setState(to: ClientState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.emit('state', { from, to });
  }

  /** Starts a round of connection attempts. */
  #open(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#choice.begin();
    this.#setState('connecting');
    this.#attemptNow();
  }

  /** One attempt over the chosen transport. */
  #attemptNow(): void {
    const name = this.#choice.current;
    if (name !== this.transport) {
      const from = this.transport;
      this.transport = name;
      this.emit('transport', { from, to: name });
    }
    this.emit('connecting', { attempt: this.#attempt, transport: name });
    const conn: Connection = { transport: null, opened: false, tokenFetched: false, recovering: new Set(), idle: false };
    this.#conn = conn;
    const getToken = this.#options.getToken;
    if (name === 'websocket') return this.#connect(conn);
    if (!getToken) {
      conn.token = this.#options.token;
      conn.tokenFetched = true;
      return this.#connect(conn);
    }
    Promise.resolve()
      .then(getToken)
      .then(
        (token) => {
          if (this.#conn !== conn) return;
          conn.token = token;
          conn.tokenFetched = true;
          this.#connect(conn);
        },
        (err: Error) => {
          if (this.#conn !== conn) return;
          this.emit('error', { error: err, context: 'getToken' });
          this.#detach();
          this.#lost(4000, 'getToken failed');
        },
      );
  }

  #connect(conn: Connection): void {
    const current = () => this.#conn === conn;
    const listener: TransportListener = {
      open: () => {
        if (!current()) return;
        conn.opened = true;
        clearTimeout(this.#fallbackTimer);
        void this.#handshake(conn);
      },
      frame: (text) => current() && this.#receive(text),
      alive: () => current() && this.#watch(),
      closed: (code, reason) => current() && this.#failed(conn, code, reason),
    };
    // From here, not from before getToken: a slow token is no reason to fall back.
    if (this.#choice.canFallBack) {
      const ms = this.#options.fallbackTimeout;
      this.#fallbackTimer = setTimeout(() => this.#failed(conn, 1006, `${this.transport} did not open within ${ms} ms`, true), ms);
    }
    try {
      conn.transport = this.#transportFor(conn, listener);
    } catch (err) {
      this.emit('error', { error: err as Error, context: 'connect' });
      this.#failed(conn, 1006, (err as Error).message);
    }
  }

  #transportFor(conn: Connection, listener: TransportListener): Transport {
    const platform = this.#platform;
    switch (this.#choice.current) {
      case 'websocket':
        return new WebSocketTransport(platform.WebSocket!, this.#options.url, listener);
      case 'http-stream':
        return new HttpStreamTransport({ fetch: platform.fetch!, url: this.#urls.stream, sendUrl: `${this.#urls.stream.split('?')[0]}/send`, token: conn.token }, listener);
      case 'sse': {
        // Each subscription's subscribe command holds what the URL needs of it: its topic, `since` and `filter`.
        const topics = [...this.#subscriptions.values()].map((subscription) => subscription.command() as SseRequest['topics'][number]);
        for (const { topic, since } of topics) if (since) conn.recovering.add(topic);
        conn.idle = topics.length === 0;
        if (conn.idle) return idleSse(listener);
        return new SseTransport(platform.EventSource!, { url: this.#urls.sse, topics, token: conn.token }, listener);
      }
    }
  }

  /**
   * The attempt or the connection ended. Before it opened, the network failing
   * (1006, or no answer within fallbackTimeout) moves on to the next
   * transport; a refusal (an HTTP status that says why) does not.
   */
  #failed(conn: Connection, code: number, reason: string, abandon = false): void {
    if (this.#conn !== conn) return;
    this.#detach();
    // A token refused while connecting (an HTTP stream's Bearer token) may be replaced by getToken's next one.
    const retry = code === 4501 && this.#options.getToken !== undefined && this.state === 'connecting' ? 4000 : code;
    if (conn.opened) return this.#lost(retry, reason);
    if (abandon) conn.transport?.close(4000, 'fallback');
    if (code === 1006 && this.#choice.fallBack()) return this.#attemptNow();
    this.#lost(retry, reason);
  }

  async #handshake(conn: Connection): Promise<void> {
    this.#watch();
    const transport = conn.transport!;
    let token = conn.token;
    if (!conn.tokenFetched) {
      try {
        token = this.#options.getToken ? await this.#options.getToken() : this.#options.token;
      } catch (err) {
        if (this.#conn !== conn) return;
        this.emit('error', { error: err as Error, context: 'getToken' });
        return this.#drop(4000, 'getToken failed');
      }
    }
    if (this.#conn !== conn) return;
    if (token !== undefined && transport.canSend) {
      const failure = await new Promise<HeraldClientError | null>((resolve) =>
        this.#command({ action: 'login', token }, (error, reply) => {
          if (reply) this.#loggedIn(reply);
          resolve(error);
        }, { now: true }),
      );
      if (this.#conn !== conn) return;
      if (failure) {
        this.emit('error', { error: failure, context: 'login' });
        // A token the server refuses will be refused again: stop, unless getToken may give a better one.
        if (failure.code === 'unauthorized' && !this.#options.getToken) return this.close(4501, failure.message);
        return this.#drop(4000, `login failed: ${failure.message}`);
      }
    }
    if (!conn.idle) this.#choice.opened();
    const reconnected = this.#everConnected;
    const attempt = this.#attempt;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#setState('connected');
    // Over SSE the topics are in the URL: the server sends their subscribe replies by itself. The server's
    // own subscriptions are the server's to make again (a persistent topic), not the client's.
    if (transport.canSend) for (const subscription of this.#subscriptions.values()) if (!subscription.server) this.#sendSubscribe(subscription);
    const queued = this.#queue;
    this.#queue = [];
    for (const send of queued) send();
    this.emit('connected', { reconnected, attempt, ...(this.uid !== undefined ? { uid: this.uid } : {}) });
  }

  #loggedIn(reply: Reply): { uid: string; expiresAt?: number } {
    this.uid = String(reply.uid);
    // The connection's id (a server without one: undefined).
    this.connectionId = reply.conn as string | undefined;
    // Subscriptions this login ended on the server: subscribe again with a fresh subscribe token, or end them here too.
    if (Array.isArray(reply.unsubscribed)) {
      for (const topic of reply.unsubscribed) {
        const subscription = typeof topic === 'string' ? this.#subscriptions.get(topic) : undefined;
        if (!subscription) continue;
        if (subscription.options.getToken && this.state === 'connected') {
          subscription.suspended();
          this.#sendSubscribe(subscription);
        } else {
          this.#subscriptions.delete(topic as string);
          subscription.ended('login');
        }
      }
    }
    clearTimeout(this.#refreshTimer);
    const expiresAt = typeof reply.expiresAt === 'number' ? reply.expiresAt : undefined;
    if (expiresAt !== undefined && this.#options.getToken) {
      const remaining = expiresAt - Date.now();
      const delay = Math.max(0, remaining - Math.min(this.#options.tokenRefreshMargin, remaining / 5));
      this.#refreshTimer = setTimeout(() => this.#refresh(), Math.min(delay, MAX_TIMER));
    }
    return { uid: this.uid, ...(expiresAt !== undefined ? { expiresAt } : {}) };
  }

  #refresh(): void {
    this.refreshToken().catch((err: Error) => this.emit('error', { error: err, context: 'token refresh' }));
  }

  /** SSE: the topics (or the token) changed, so the stream reopens with them, once for all the changes of this turn. */
  #reopenSoon(): void {
    if (this.#reopening) return;
    this.#reopening = true;
    queueMicrotask(() => {
      this.#reopening = false;
      const conn = this.#conn;
      if (this.state !== 'connected' || !conn?.transport || conn.transport.canSend) return;
      this.#detach();
      conn.transport.close(1000, 'topics changed');
      this.#setState('connecting');
      this.#attemptNow();
    });
  }

  #sendSubscribe(subscription: Subscription): void {
    const getToken = subscription.options.getToken;
    if (!getToken) return this.#sendSubscribeWith(subscription, subscription.command());
    const conn = this.#conn;
    Promise.resolve()
      .then(() => getToken(subscription.topic))
      .then(
        (token) => {
          if (this.#conn === conn && this.state === 'connected' && this.#subscriptions.get(subscription.topic) === subscription) {
            this.#sendSubscribeWith(subscription, subscription.command(token));
          }
        },
        (err: Error) => this.emit('error', { error: err, context: `subscribe ${subscription.topic}: getToken` }),
      );
  }

  #sendSubscribeWith(subscription: Subscription, frame: Record<string, unknown>): void {
    const sentSince = 'since' in frame;
    this.#command(frame, (error, reply) => {
      if (this.#subscriptions.get(subscription.topic) !== subscription) return;
      if (reply) return subscription.confirmed(reply, sentSince);
      if (error instanceof RequestError) {
        this.#subscriptions.delete(subscription.topic);
        return subscription.refused(error);
      }
      // Timed out or disconnected: the next connection subscribes again. A timed-out subscribe may still
      // be answered, and its publications follow on this connection from an unknown place (a failed
      // recovery): drop the connection, so that the next one recovers from the last position emitted.
      if (error?.code === 'timeout') {
        this.emit('error', { error, context: `subscribe ${subscription.topic}` });
        this.#drop(4000, `subscribe ${subscription.topic} timed out`);
      }
    });
  }

  #receive(data: string): void {
    this.#watch();
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return this.emit('error', { error: new Error(`unreadable frame: ${data.slice(0, 100)}`), context: 'receive' });
    }
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
      if (frame && typeof frame === 'object') this.#handle(frame as Record<string, unknown>);
    }
  }

  #handle(frame: Record<string, unknown>): void {
    if (frame.id !== undefined && typeof frame.ok === 'boolean') {
      const pending = this.#pending.get(frame.id as number);
      if (!pending) return;
      this.#pending.delete(frame.id as number);
      clearTimeout(pending.timer);
      if (frame.ok) return pending.settle(null, frame);
      const error = frame.error as { code?: unknown; message?: unknown } | undefined;
      return pending.settle(new RequestError(codeOf(error?.code), String(error?.message ?? 'request failed'), pending.action), null);
    }
    let subscription = typeof frame.topic === 'string' ? this.#subscriptions.get(frame.topic) : undefined;
    switch (frame.action) {
      case 'publish':
        return subscription?.deliver(frame);
      case 'subscribe':
        // SSE: the server's reply to the topics of the URL, without a command.
        if (subscription && frame.ok !== false) subscription.confirmed(frame, this.#conn?.recovering.has(subscription.topic) === true);
        return;
      case 'push':
        return this.emit('push', { message: frame.message as Json });
      case 'ping':
        if (this.#canSend) this.#conn!.transport!.send('{"action":"pong"}');
        return;
      case 'gap':
        return subscription?.gap(frame);
      case 'join':
      case 'leave':
        return subscription?.presence(frame.action, frame);
      case 'subscribed':
        // The server subscribed this connection itself: a subscription of its own, new or confirmed again
        // (one of the application's own that is not confirmed yet is confirmed by its own reply).
        if (!subscription) {
          this.#subscriptions.set(frame.topic as string, (subscription = new Subscription(frame.topic as string, {}, this)));
          subscription.server = true;
          this.emit('serverSubscribed', { topic: subscription.topic, subscription });
        }
        if (subscription?.server) subscription.confirmed(frame, false);
        return;
      case 'unsubscribed':
        // The server ended a subscription (its own or the application's): over here too, and not made again on the
        // next connection; the subscription says so (`unsubscribed`, reason `server`, the backend's reason as `detail`).
        if (subscription) {
          this.#subscriptions.delete(subscription.topic);
          subscription.ended('server', String(frame.reason ?? 'server'));
        }
        return;
      case 'error': {
        const body = frame.error as { code?: unknown; message?: unknown } | undefined;
        const code = codeOf(body?.code);
        if (code === 'token_expired') this.#refresh();
        return this.emit('error', { error: new RequestError(code, String(body?.message ?? ''), 'error'), context: 'server' });
      }
      default:
        this.emit('frame', { frame });
    }
  }

  /**
   * Heartbeat watchdog: silence for pingInterval sends a ping; no answer within pingTimeout drops the
   * connection. Not on SSE: it cannot ping, and an EventSource does not show the server's heartbeats.
   */
  #watch(): void {
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#deadTimer);
    this.#deadTimer = undefined;
    if (this.#conn?.transport?.canSend === false) return;
    this.#idleTimer = setTimeout(() => {
      if (!this.#conn?.transport) return;
      this.#command({ action: 'ping' }, () => {}, { now: true, timeout: this.#options.pingTimeout });
      this.#deadTimer = setTimeout(() => this.#drop(4000, 'heartbeat timeout'), this.#options.pingTimeout);
    }, this.#options.pingInterval);
  }

  /** Gives up on the current connection without waiting for its close handshake, and reconnects. */
  #drop(code: number, reason: string): void {
    const transport = this.#conn?.transport;
    if (!transport) return;
    this.#detach();
    transport.close(4000, truncateCloseReason(reason));
    this.#lost(code, reason);
  }

  #detach(): void {
    this.#conn = null;
    this.connectionId = undefined;
    clearTimeout(this.#fallbackTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#deadTimer);
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    for (const [id, pending] of this.#pending) {
      if (!pending.sent) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.settle(new DisconnectedError(pending.action), null);
    }
    for (const subscription of this.#subscriptions.values()) subscription.suspended();
  }

  #lost(code: number, reason: string): void {
    if (this.state === 'closed') return;
    if (!shouldReconnect(code)) return this.#finish(code, reason);
    const attempt = this.#attempt++;
    const delay = fullJitter(attempt, this.#options.minReconnectDelay, this.#options.maxReconnectDelay, this.#options.random);
    this.#setState('disconnected');
    this.#reconnectTimer = setTimeout(() => this.#open(), delay);
    this.emit('disconnected', { code, reason, delay, attempt });
  }

  #finish(code: number, reason: string): void {
    this.#detach();
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.settle(new ClosedError(`the client closed: ${reason || code}`), null);
    }
    this.#queue = [];
    this.#setState('closed');
    this.emit('closed', { code, reason });
  }
}
