import { shouldReconnect, truncateCloseReason, type ErrorCode, type Json, type StreamPosition } from '@herald/protocol';
import { fullJitter } from './backoff.js';
import { Emitter } from './emitter.js';
import { ClosedError, DisconnectedError, HeraldClientError, RequestError, TimeoutError } from './errors.js';
import { Subscription, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';

/** `disconnected` (waiting to reconnect, or not started), `connecting`, `connected`, `closed` (stopped for good until `connect()`). */
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

/** The part of the WebSocket API the client uses: the browser's, or `ws`'s on Node. */
export interface WebSocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

export interface ClientOptions {
  /** The gateway's WebSocket URL, e.g. `wss://push.example.com/ws`. */
  url: string;
  /** The WebSocket class. Default: the global one (browsers, Node 22+); on Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** A token to log in with on every connection. */
  token?: string;
  /** Called for a token on every connection and shortly before the current one expires. Wins over `token`. */
  getToken?: () => string | Promise<string>;
  /** Smallest ceiling of the reconnect delay (ms, default 500): the first retry waits a random time below it. */
  minReconnectDelay?: number;
  /** Largest reconnect delay (ms, default 20000). */
  maxReconnectDelay?: number;
  /** How long a command waits for its reply (ms, default 10000). */
  requestTimeout?: number;
  /** After this long without a frame from the server, the client pings it (ms, default 25000). */
  pingInterval?: number;
  /** A ping unanswered for this long means the connection is dead: the client reconnects (ms, default 10000). */
  pingTimeout?: number;
  /** Refresh the token this long before it expires (ms, default 30000, at most a fifth of its lifetime). */
  tokenRefreshMargin?: number;
  /** Random source for the backoff (tests). */
  random?: () => number;
}

export interface ClientEvents {
  state: { from: ClientState; to: ClientState };
  connecting: { attempt: number };
  /** Connected (and logged in, when there is a token); subscriptions are being restored. */
  connected: { reconnected: boolean; attempt: number; uid?: string };
  /** The connection was lost; the client reconnects after `delay` ms. */
  disconnected: { code: number; reason: string; delay: number; attempt: number };
  /** The client stopped: `close()` was called, or the server closed with a code that forbids reconnecting. */
  closed: { code: number; reason: string };
  /** A message pushed to this user (`/api/send`). */
  push: { message: Json };
  /** Something went wrong that no promise reports: an error frame, a failed token refresh, an unreadable frame. */
  error: { error: Error; context: string };
  /** A frame the client has no use for (e.g. from an application's command handler). */
  frame: { frame: Record<string, unknown> };
}

type Reply = Record<string, unknown>;
type Settle = (error: HeraldClientError | null, reply: Reply | null) => void;

interface Pending {
  action: string;
  settle: Settle;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
}

const MAX_TIMER = 2 ** 31 - 1;

// The server's code as is (the catalogue's descriptions stay out of the bundle); `internal` when missing.
const codeOf = (code: unknown): ErrorCode => (typeof code === 'string' ? (code as ErrorCode) : 'internal');

/**
 * A connection to Herald that stays up: it reconnects with full-jitter
 * backoff, logs in with a fresh token each time, restores every subscription
 * (asking for missed publications where the topic keeps history) and answers
 * every command with a promise.
 */
export class HeraldClient extends Emitter<ClientEvents> implements SubscriptionOwner {
  state: ClientState = 'disconnected';
  /** The uid the server knows this connection as, once logged in. */
  uid: string | undefined;
  readonly #options: Required<Omit<ClientOptions, 'token' | 'getToken' | 'WebSocket'>> & Pick<ClientOptions, 'token' | 'getToken'>;
  readonly #WebSocket: WebSocketConstructor;
  #socket: WebSocketLike | null = null;
  #attempt = 0;
  #everConnected = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #queue: Array<() => void> = [];
  readonly #subscriptions = new Map<string, Subscription>();
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #deadTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ClientOptions) {
    super();
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketClass) throw new TypeError('no WebSocket class: pass one as the WebSocket option (on Node 20: the `ws` package)');
    this.#WebSocket = WebSocketClass;
    this.#options = {
      minReconnectDelay: 500,
      maxReconnectDelay: 20_000,
      requestTimeout: 10_000,
      pingInterval: 25_000,
      pingTimeout: 10_000,
      tokenRefreshMargin: 30_000,
      random: Math.random,
      ...options,
    };
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
    const socket = this.#socket;
    this.#finish(code, reason);
    try {
      socket?.close(code, truncateCloseReason(reason));
    } catch {
      // A socket that is still connecting may refuse a close code; it is detached either way.
    }
  }

  /** Subscribes to a topic; the subscription is kept across reconnects. One subscription per topic. */
  subscribe(topic: string, options: SubscribeOptions = {}): Subscription {
    const existing = this.#subscriptions.get(topic);
    if (existing) return existing;
    const subscription = new Subscription(topic, options, this);
    this.#subscriptions.set(topic, subscription);
    if (this.state === 'connected') this.#sendSubscribe(subscription);
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
    try {
      await this.request('unsubscribe', { topic: subscription.topic });
    } catch (err) {
      // A subscribe the server refused, or a connection lost meanwhile: either way not subscribed any more.
      if (!(err instanceof HeraldClientError) || (err.code !== 'not_subscribed' && err.code !== 'disconnected')) throw err;
    }
  }

  /** Publishes a message to a topic. Resolves with its place in the topic's history, when it has one. */
  async publish(topic: string, message: Json): Promise<{ offset?: number; epoch?: string }> {
    const reply = await this.request('publish', { topic, message });
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
   */
  request(action: string, fields: Record<string, unknown> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.#command({ ...fields, action }, (error, reply) => (error ? reject(error) : resolve(reply!)));
    });
  }

  /** Fetches a fresh token with `getToken` and logs in with it, without reconnecting. */
  async refreshToken(): Promise<void> {
    if (!this.#options.getToken) return;
    const token = await this.#options.getToken();
    this.#loggedIn(await this.request('login', { token }));
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
      if (!this.#pending.has(id) || !this.#socket) return;
      pending.sent = true;
      this.#socket.send(text);
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

  #open(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#setState('connecting');
    this.emit('connecting', { attempt: this.#attempt });
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(this.#options.url, 'json') as WebSocketLike;
    } catch (err) {
      this.emit('error', { error: err as Error, context: 'connect' });
      return this.#lost(1006, (err as Error).message);
    }
    this.#socket = socket;
    // Callbacks of a socket that was replaced (or dropped by the watchdog) are ignored.
    socket.onopen = () => {
      if (this.#socket === socket) void this.#handshake(socket);
    };
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#detach();
      this.#lost(event.code, event.reason);
    };
    socket.onerror = () => {
      // A close event always follows; it carries the code.
    };
  }

  async #handshake(socket: WebSocketLike): Promise<void> {
    this.#watch();
    let token: string | undefined;
    try {
      token = this.#options.getToken ? await this.#options.getToken() : this.#options.token;
    } catch (err) {
      if (this.#socket !== socket) return;
      this.emit('error', { error: err as Error, context: 'getToken' });
      return this.#drop(4000, 'getToken failed');
    }
    if (this.#socket !== socket) return;
    if (token !== undefined) {
      const failure = await new Promise<HeraldClientError | null>((resolve) =>
        this.#command({ action: 'login', token }, (error, reply) => {
          if (reply) this.#loggedIn(reply);
          resolve(error);
        }, { now: true }),
      );
      if (this.#socket !== socket) return;
      if (failure) {
        this.emit('error', { error: failure, context: 'login' });
        // A token the server refuses will be refused again: stop, unless getToken may give a better one.
        if (failure.code === 'unauthorized' && !this.#options.getToken) return this.close(4501, failure.message);
        return this.#drop(4000, `login failed: ${failure.message}`);
      }
    }
    const reconnected = this.#everConnected;
    const attempt = this.#attempt;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#setState('connected');
    for (const subscription of this.#subscriptions.values()) this.#sendSubscribe(subscription);
    const queued = this.#queue;
    this.#queue = [];
    for (const send of queued) send();
    this.emit('connected', { reconnected, attempt, ...(this.uid !== undefined ? { uid: this.uid } : {}) });
  }

  #loggedIn(reply: Reply): { uid: string; expiresAt?: number } {
    this.uid = String(reply.uid);
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

  #sendSubscribe(subscription: Subscription): void {
    const getToken = subscription.options.getToken;
    if (!getToken) return this.#sendSubscribeWith(subscription, subscription.command());
    const socket = this.#socket;
    Promise.resolve()
      .then(() => getToken(subscription.topic))
      .then(
        (token) => {
          if (this.#socket === socket && this.state === 'connected' && this.#subscriptions.get(subscription.topic) === subscription) {
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

  #receive(data: unknown): void {
    this.#watch();
    if (typeof data !== 'string') return;
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
    switch (frame.action) {
      case 'publish':
        this.#subscriptions.get(frame.topic as string)?.deliver(frame);
        return;
      case 'push':
        return this.emit('push', { message: frame.message as Json });
      case 'ping':
        this.#socket?.send('{"action":"pong"}');
        return;
      case 'gap':
        this.#subscriptions.get(frame.topic as string)?.gap(frame);
        return;
      case 'join':
      case 'leave':
        this.#subscriptions.get(frame.topic as string)?.presence(frame.action, frame);
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

  /** Heartbeat watchdog: silence for pingInterval sends a ping; no answer within pingTimeout drops the connection. */
  #watch(): void {
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#deadTimer);
    this.#deadTimer = undefined;
    this.#idleTimer = setTimeout(() => {
      if (!this.#socket) return;
      this.#command({ action: 'ping' }, () => {}, { now: true, timeout: this.#options.pingTimeout });
      this.#deadTimer = setTimeout(() => this.#drop(4000, 'heartbeat timeout'), this.#options.pingTimeout);
    }, this.#options.pingInterval);
  }

  /** Gives up on the current socket without waiting for its close handshake, and reconnects. */
  #drop(code: number, reason: string): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#detach();
    try {
      socket.close(4000, truncateCloseReason(reason));
    } catch {
      // detached anyway
    }
    this.#lost(code, reason);
  }

  #detach(): void {
    this.#socket = null;
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
