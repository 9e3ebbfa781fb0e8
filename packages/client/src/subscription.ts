import type { Json, StreamPosition, TagFilter, Tags } from '@herald/protocol';
import { Emitter } from './emitter.js';
import type { HeraldClientError } from './errors.js';

export interface MessageContext {
  topic: string;
  /** The publication's place in the topic's history, when history is on for the topic. */
  offset?: number;
  epoch?: string;
  /** For a message published by an LHTTP client: its command and headers. */
  lhttp?: { command: string; headers: Record<string, string> };
  /** The publication's event name, when it was published with one. */
  event?: string;
  /** The publication's tags, when it was published with some. */
  tags?: Tags;
}

export interface SubscribedEvent {
  topic: string;
  /** False for the first subscription, true after a reconnect. */
  resubscribed: boolean;
  /** Whether the publications missed while disconnected were delivered (only when a `since` was sent). */
  recovered?: boolean;
  /** Why they could not be: `epoch_changed`, `too_far_behind`, `history_off`, `not_shared` or `unavailable`. */
  reason?: string;
  /** The topic's position in its history, when it has one. */
  position?: StreamPosition;
}

export interface RecoveryFailedEvent {
  topic: string;
  /** `epoch_changed` (the history was lost), `too_far_behind` (more was missed than is kept) or `history_off`. */
  reason: string;
}

/** The server says publications on the topic may have been missed (a `gap` frame): reload the state this topic feeds. */
export interface GapEvent {
  topic: string;
  /**
   * `interrupted` (the server's link to the broker dropped; the topic keeps no shared history),
   * `epoch_changed` (the stored history was lost), `too_far_behind` (more was missed than is kept),
   * `unavailable` (the history store could not be read).
   */
  reason: string;
}

export interface PresenceEvent {
  topic: string;
  info: { conn: string; uid?: string; info?: Json };
}

export interface SubscriptionEvents {
  /** A publication on the topic. */
  message: { message: Json; context: MessageContext };
  /** The server confirmed the subscription (again after each reconnect). */
  subscribed: SubscribedEvent;
  /** Publications were missed and could not be recovered: reload the state this topic feeds. */
  recoveryFailed: RecoveryFailedEvent;
  /** Publications may have been missed while the subscription stood (see GapEvent). */
  gap: GapEvent;
  join: PresenceEvent;
  leave: PresenceEvent;
  /** The server refused the subscription; the subscription is over. */
  error: { error: HeraldClientError };
  /**
   * The subscription is over: `reason` is `client` when the application
   * unsubscribed, `login` when a token refresh (`login`) ended it on the
   * server (the new token does not grant the topic, and no subscribe token
   * the connection holds does) and the subscription has no `getToken` to ask
   * for a fresh subscribe token, `server` when the backend ended it (the
   * server API; `detail` is the backend's reason).
   */
  unsubscribed: { topic: string; reason: 'client' | 'login' | 'server'; detail?: string };
}

export type SubscriptionState = 'pending' | 'subscribed' | 'unsubscribed';

/** What the client lends a subscription. */
export interface SubscriptionOwner {
  unsubscribe(subscription: Subscription): Promise<void>;
}

export interface SubscribeOptions {
  /** Start from this position in the topic's history (recovered publications come first). */
  since?: StreamPosition;
  /** A subscribe token, for a private topic the connection token does not grant. */
  token?: string;
  /**
   * Called for a fresh subscribe token on every (re)subscribe, and when a
   * token refresh ends the subscription on the server: the client then
   * subscribes again with it instead of ending the subscription. Wins over `token`.
   */
  getToken?: (topic: string) => string | Promise<string>;
  /** Ask for the publications missed while disconnected (default true; needs history on the topic). */
  recover?: boolean;
  /**
   * Only publications whose tags pass this filter reach the subscription,
   * live and recovered; evaluated by the server, sent with every
   * (re)subscribe (docs/client.md, "Filters"); over SSE it travels in the
   * stream's URL (`filter.<topic>`).
   */
  filter?: TagFilter;
}

/**
 * One topic the client is subscribed to. It outlives connections: after a
 * reconnect the client subscribes again, asking for what was missed.
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  state: SubscriptionState = 'pending';
  /** The last position seen on the topic (from the subscribe reply or a publication): where a resubscribe recovers from. */
  position: StreamPosition | undefined;
  /** The position of the last publication handed to the application: only what is at or below it is a duplicate. */
  #emitted: StreamPosition | undefined;
  /** Settles on the first confirmation, or rejects when the server refuses the subscription. */
  readonly ready: Promise<SubscribedEvent>;
  #settle!: { resolve: (event: SubscribedEvent) => void; reject: (error: HeraldClientError) => void };
  #subscribedOnce = false;
  /**
   * Made by the server (the backend's server API), not by `client.subscribe`:
   * the client does not subscribe it again after a reconnect; the server
   * does, for a topic it keeps for the user, and confirms it again.
   */
  server = false;

  constructor(
    readonly topic: string,
    readonly options: SubscribeOptions,
    private readonly owner: SubscriptionOwner,
  ) {
    super();
    this.position = options.since;
    this.#emitted = options.since;
    this.ready = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    // A refused subscription is reported through `error` too: an unobserved `ready` is not an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** Stops the subscription (on the server too, when connected). */
  unsubscribe(): Promise<void> {
    return this.owner.unsubscribe(this);
  }

  /** @internal The subscribe command to send on (re)connect (`token`: a fresh subscribe token from getToken). */
  command(token: string | undefined = this.options.token): Record<string, unknown> {
    const command: Record<string, unknown> = { action: 'subscribe', topic: this.topic };
    if (token !== undefined) command.token = token;
    if (this.position && this.options.recover !== false) command.since = this.position;
    // Undefined (no filter) is left out of the frame by JSON.stringify.
    command.filter = this.options.filter;
    return command;
  }

  /** @internal */
  confirmed(reply: Record<string, unknown>, sentSince: boolean): void {
    const position = typeof reply.offset === 'number' && typeof reply.epoch === 'string' ? { offset: reply.offset, epoch: reply.epoch } : undefined;
    const event: SubscribedEvent = { topic: this.topic, resubscribed: this.#subscribedOnce };
    if (sentSince) {
      event.recovered = reply.recovered === true;
      if (typeof reply.reason === 'string') event.reason = reply.reason;
    }
    if (position) {
      event.position = position;
      // Recovered publications follow the reply: keep our own position until they arrive (from {0, ""}, "seen
      // nothing", they are the epoch's first ones), so that a connection lost before them recovers them again.
      if (!event.recovered) this.position = this.newer(position);
    }
    this.state = 'subscribed';
    this.#subscribedOnce = true;
    this.emit('subscribed', event);
    this.#settle.resolve(event);
    if (sentSince && !event.recovered) this.emit('recoveryFailed', { topic: this.topic, reason: event.reason ?? 'unknown' });
  }

  private newer(position: StreamPosition): StreamPosition {
    if (this.position && this.position.epoch === position.epoch && this.position.offset > position.offset) return this.position;
    return position;
  }

  /** @internal */
  refused(error: HeraldClientError): void {
    this.state = 'unsubscribed';
    this.emit('error', { error });
    this.#settle.reject(error);
  }

  /**
   * @internal A publication. One at or below the last offset handed to the
   * application in the same epoch is a duplicate, and dropped; a position
   * only reported by a subscribe reply does not count as seen, so nothing
   * the application has not had is ever dropped.
   */
  deliver(frame: Record<string, unknown>): void {
    if (this.state === 'unsubscribed') return;
    const context: MessageContext = { topic: this.topic };
    if (typeof frame.offset === 'number' && typeof frame.epoch === 'string') {
      const { offset, epoch } = frame;
      if (this.#emitted && this.#emitted.epoch === epoch && offset <= this.#emitted.offset) return;
      this.#emitted = { offset, epoch };
      this.position = this.newer(this.#emitted);
      context.offset = offset;
      context.epoch = epoch;
    }
    // Objects and strings as the server writes them (docs/protocol.md).
    if (frame.lhttp) context.lhttp = frame.lhttp as MessageContext['lhttp'];
    if (frame.event) context.event = frame.event as string;
    if (frame.tags) context.tags = frame.tags as Tags;
    this.emit('message', { message: frame.message as Json, context });
  }

  /** @internal A `gap` frame. */
  gap(frame: Record<string, unknown>): void {
    if (this.state === 'unsubscribed') return;
    this.emit('gap', { topic: this.topic, reason: typeof frame.reason === 'string' ? frame.reason : 'unknown' });
  }

  /** @internal join and leave events. */
  presence(kind: 'join' | 'leave', frame: Record<string, unknown>): void {
    if (this.state === 'unsubscribed') return;
    this.emit(kind, { topic: this.topic, info: frame.info as PresenceEvent['info'] });
  }

  /** @internal The connection dropped: the subscription waits for the next one. */
  suspended(): void {
    if (this.state === 'subscribed') this.state = 'pending';
  }

  /** @internal */
  ended(reason: 'client' | 'login' | 'server' = 'client', detail?: string): void {
    if (this.state === 'unsubscribed') return;
    this.state = 'unsubscribed';
    this.emit('unsubscribed', { topic: this.topic, reason, ...(detail !== undefined ? { detail } : {}) });
  }
}
