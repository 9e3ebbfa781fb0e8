import { truncateCloseReason } from '@herald/protocol';
import { NO_GRANTS, type Grants } from '../topics.js';
import type { Publication } from '../broker/broker.js';
import { HeraldError } from '../errors.js';
import type { Codec } from '../protocols/codec.js';
import type { Transport } from '../transport/transport.js';
import type { TokenBucket } from '../util/token-bucket.js';
import type { Flusher } from './flusher.js';
import { Liveness } from './liveness.js';
import { Writer } from './writer.js';

export type SessionState = 'connecting' | 'open' | 'closing' | 'closed';

/**
 * What a protocol does with a connection's frames: the command side of a
 * wire protocol (its encoder is the `Codec`). Declared here, by the session
 * that hands frames to it; protocols implement it.
 */
export interface FrameHandler {
  /**
   * Handles one frame from the peer that the policy admitted. A returned
   * promise holds back the connection's next frames until it settles, so
   * commands are handled and answered in the order they were sent.
   */
  onFrame(session: Session, data: Buffer, isBinary: boolean): void | Promise<void>;
  /** The policy refused a frame before it was handled (over the command rate): answer in this protocol's terms. */
  refuse(session: Session, refusal: HeraldError, data: Buffer, isBinary: boolean): void;
  /**
   * Whether a connection can identify itself over this protocol after it
   * opened (JSON's `login`). With `auth.anonymous: false`, a connection of a
   * protocol that cannot is closed with 4501 at once unless its URL token or
   * the connect hook identified it.
   */
  readonly canLogIn: boolean;
  /** The connection is open and its identity settled, before any of its frames is handled: the protocol may subscribe it, or close it. */
  onOpen?(session: Session): void;
  /**
   * The connection just opened, before the frames that waited are handled:
   * the protocol's greeting may be written (Pusher's connection_established),
   * or the connection closed.
   */
  onOpened?(session: Session): void;
  /** The connection closed. */
  onClose?(session: Session): void;
  /**
   * The server is closing the connection with `code` (a Herald close code):
   * the protocol may still write (its own error frame, before the close
   * frame) and returns the close code its clients understand, or nothing to
   * keep `code`.
   */
  onServerClose?(session: Session, code: number, reason: string): number | void;
  /** The close code for a connection the heartbeat found dead (no answer to its pings); absent: it is cut without a close frame. */
  readonly deadPeerCode?: number;
  /**
   * Whether the server may subscribe this connection to topics it did not
   * ask for (the server API, a user's persistent topics). Absent: it may.
   */
  acceptsServerTopics?(session: Session): boolean;
}

/** What a session needs from the gateway that owns it. */
export interface SessionHost {
  readonly flusher: Flusher;
  /** Most bytes queued for one connection (`limits.maxQueueBytes`); over it the connection is closed with 1013. */
  readonly maxQueueBytes: number;
  /** How long a close handshake may take before the connection is cut (`shutdown.timeout`), in ms. */
  readonly closeTimeout: number;
  /** Called when a write would take the session over its queue limit. */
  onSlowConsumer(session: Session, queuedBytes: number): void;
  /** Called when a frame handler throws or rejects: a bug, not bad input. */
  onHandlerError(session: Session, err: unknown): void;
  /**
   * The policy's gate for every inbound frame (the command rate limit), run
   * before the protocol sees the frame: the refusal, or null to handle it.
   */
  admitFrame(session: Session): HeraldError | null;
  /** The transport is gone: called once, with the code the server sent (if it closed) or the peer's. */
  onClosed(session: Session, code: number, reason: string, by: 'server' | 'client'): void;
}

/** Who the connection is, beyond its uid: replaced as a whole when its identity changes (connect, login). */
export interface SessionIdentity {
  /** What the connection's token or the connect hook granted. */
  readonly grants: Grants;
  /** Public information about the user (token `info` claim or connect hook). */
  readonly info: unknown;
  /** Logged in with the push-centre seed's `{"uid":...}` frame: the seed's `/send` reaches it as the raw message, as in the seed. */
  readonly rawPush: boolean;
  /** When the identity's token expires (ms since the epoch). */
  readonly expiresAt: number | undefined;
}

/** A subscribe token's grant, kept for the subscription it made (see `Session.keepSubscribeGrant`). */
export interface SubscribeGrant {
  /** The topic or `prefix*` the token granted. */
  readonly grant: string;
  /** The uid the token was issued to, if it names one. */
  readonly uid: string | undefined;
  /** When the token expires (ms since the epoch). */
  readonly expiresAt: number | undefined;
}

const ANONYMOUS: SessionIdentity = Object.freeze({ grants: NO_GRANTS, info: undefined, rawPush: false, expiresAt: undefined });

/** Frames held back while an earlier command is still being handled. */
const INBOX_PAUSE_AT = 64;

interface Inbound {
  data: Buffer;
  isBinary: boolean;
}

/**
 * One client connection, whatever its transport and protocol. States:
 * connecting (identity being settled; frames wait in the inbox) → open →
 * closing → closed. Frames from the peer are handled one at a time in order
 * (an ordered inbox; a command that answers later holds the next ones, and
 * the transport is paused past 64 waiting frames). Frames to the peer go
 * through a bounded `Writer`. The session owns its subscriptions, its
 * identity, its recovery holds and its counters.
 *
 * A close from the server side of an open connection answers what the
 * peer already sent before the close frame: publishes in progress (`owe`)
 * get their answers (they come within publishTimeout; the close waits at
 * most `closeTimeout`), and the frames waiting in the inbox, or arriving
 * meanwhile, are refused in the protocol's terms (`unavailable`), not run.
 * So a publish sent before the close frame is answered, or was not run.
 * Other commands in progress (an application's handler may never settle)
 * do not hold the close frame back.
 */
export class Session {
  readonly topics = new Set<string>();
  readonly connectedAt = Date.now();
  /** Identity, when the connection is authenticated (set only through Hub.setUser). */
  uid: string | undefined;
  /** Liveness, kept by the heartbeat: what arrived from the peer, the outstanding ping, outbound progress. */
  readonly liveness = new Liveness(this.connectedAt);

  private stateNow: SessionState = 'connecting';
  private closeCodeNow: number | undefined;
  private closeReasonNow: string | undefined;
  private framesInNow = 0;
  /**
   * Grants from subscribe tokens, by the topic they were used for: the
   * token's grant (a topic or `prefix*`), the uid it was issued to and its
   * expiry. A later `login` keeps a subscription its grant still covers.
   * Null until the connection uses a subscribe token.
   */
  private subscribeGrants: Map<string, SubscribeGrant> | null = null;
  /** Commands the connection may still send, and new subscriptions it may still make (see Policy); unset: no limit. */
  private buckets: { commands: TokenBucket; subscriptions: TokenBucket } | undefined;
  private identityNow: SessionIdentity = ANONYMOUS;
  /**
   * The request headers the backend proxies forward (`proxy.*.forwardHeaders`),
   * kept from the connection's HTTP request as it connected: only those names,
   * never the request. Undefined when none is configured or none was sent.
   */
  private headersNow: Readonly<Record<string, string>> | undefined;
  /** Presence info a subscribe proxy gave for one topic, by topic (null until one does). */
  private topicInfos: Map<string, unknown> | null = null;
  /** The uid presence shows for one topic, by topic (a Pusher presence channel's `user_id`; null until one is set). */
  private topicUids: Map<string, string> | null = null;
  private identityTimer: NodeJS.Timeout | undefined;
  /** Topics whose live publications are held back while a recovery reads the history store. */
  private held: Map<string, Publication[]> | null = null;
  private readonly writer: Writer;
  private inbox: Inbound[] | null = [];
  private paused = false;
  private terminateTimer: NodeJS.Timeout | undefined;
  private readonly closeWaiters: Array<() => void> = [];
  /** Answers owed before the close frame (publishes in progress). */
  private owed: Set<Promise<unknown>> | null = null;
  /** Set once the close frame went to the transport: nothing more is written. */
  private closeSent = false;
  private closeSentWaiters: Array<() => void> | null = null;
  /** The server closed an open connection: what the peer sent before the close frame is answered. */
  private answersBeforeClose = false;

  constructor(
    readonly id: string,
    readonly transport: Transport,
    readonly codec: Codec,
    readonly handler: FrameHandler,
    readonly ip: string,
    private readonly host: SessionHost,
  ) {
    this.writer = new Writer(transport, host.flusher, host.maxQueueBytes, (queued) => host.onSlowConsumer(this, queued));
  }

  get identity(): SessionIdentity {
    return this.identityNow;
  }

  /** What the connection's token or the connect hook granted. */
  get grants(): Grants {
    return this.identityNow.grants;
  }

  get info(): unknown {
    return this.identityNow.info;
  }

  /** What presence shows of the connection on `topic`: the info a subscribe proxy gave for it, else the connection's. */
  infoFor(topic: string): unknown {
    return this.topicInfos?.has(topic) ? this.topicInfos.get(topic) : this.identityNow.info;
  }

  /** Sets the presence info of the connection on one topic (a subscribe proxy's `info`), before it subscribes. */
  setTopicInfo(topic: string, info: unknown): void {
    (this.topicInfos ??= new Map()).set(topic, info);
  }

  /** Forgets the topic's own info and uid (the subscription ended). */
  dropTopicInfo(topic: string): void {
    this.topicInfos?.delete(topic);
    if (this.topicInfos?.size === 0) this.topicInfos = null;
    this.topicUids?.delete(topic);
    if (this.topicUids?.size === 0) this.topicUids = null;
  }

  /** The uid presence shows for the connection on `topic`: the one set for that topic, else the connection's. */
  uidFor(topic: string): string | undefined {
    return this.topicUids?.get(topic) ?? this.uid;
  }

  /**
   * Sets the uid presence shows for the connection on one topic, before it
   * subscribes (a Pusher presence channel's member id, from the channel
   * data its authorisation signed). The connection's own uid is unchanged.
   */
  setTopicUid(topic: string, uid: string): void {
    (this.topicUids ??= new Map()).set(topic, uid);
  }

  /** The headers of its HTTP request the connection keeps for the backend proxies (see `keepHeaders`). */
  get requestHeaders(): Readonly<Record<string, string>> | undefined {
    return this.headersNow;
  }

  /** Keeps these headers of the connection's HTTP request for the backend proxies (set once, as it is accepted). */
  keepHeaders(headers: Readonly<Record<string, string>> | undefined): void {
    this.headersNow = headers;
  }

  /** Where the session is in its life: connecting → open → closing → closed. */
  get state(): SessionState {
    return this.stateNow;
  }

  /** Set when the server closes the connection (or the transport failed): the code and reason it sent. */
  get closeCode(): number | undefined {
    return this.closeCodeNow;
  }

  get closeReason(): string | undefined {
    return this.closeReasonNow;
  }

  /** Frames received from the peer. */
  get framesIn(): number {
    return this.framesInNow;
  }

  // ---- limits and grants (the policy's) -------------------------------------

  /** The connection's rate limits, set by the policy when it opens: commands, and new subscriptions. */
  setBuckets(commands: TokenBucket, subscriptions: TokenBucket): void {
    this.buckets = { commands, subscriptions };
  }

  /** Takes one command from the rate limit: false when over it (true when the connection has no limit). */
  takeCommand(): boolean {
    return this.buckets ? this.buckets.commands.take() : true;
  }

  /** Takes `count` new subscriptions from the churn limit: false (and nothing taken) when over it. */
  takeSubscriptions(count: number): boolean {
    return this.buckets ? this.buckets.subscriptions.takeMany(count) : true;
  }

  /** The subscribe token's grant the subscription to `topic` was made with, if any. */
  subscribeGrant(topic: string): SubscribeGrant | undefined {
    return this.subscribeGrants?.get(topic);
  }

  /** Keeps the subscribe token's grant the subscription to `topic` was made with (a later `login` keeps what it covers). */
  keepSubscribeGrant(topic: string, grant: SubscribeGrant): void {
    (this.subscribeGrants ??= new Map()).set(topic, grant);
  }

  /** Forgets the grant of `topic` (the subscription ended). */
  dropSubscribeGrant(topic: string): void {
    this.subscribeGrants?.delete(topic);
  }

  /** Replaces the identity (the uid is the hub's, see Hub.setUser), with the timer that guards it (token expiry, login deadline). */
  setIdentity(identity: SessionIdentity): void {
    this.identityNow = identity;
  }

  /** Runs `fn` after `ms` as the identity's one timer (a later call replaces it); cleared when the connection closes. */
  setIdentityTimer(timer: NodeJS.Timeout | undefined): void {
    if (this.identityTimer) clearTimeout(this.identityTimer);
    this.identityTimer = timer;
  }

  /** Frames written to the peer. */
  get framesOut(): number {
    return this.writer.frames;
  }

  /**
   * Queues a complete frame for the peer. Returns false when the session is
   * not open or the frame would overflow its queue (the session is then
   * being closed with 1013).
   */
  write(frame: Buffer): boolean {
    if (!this.writable) return false;
    return this.writer.write(frame);
  }

  /** Queues one message of the connection's protocol (a command's reply, an error answer), framed by its codec. */
  sendText(text: string): boolean {
    if (!this.writable) return false;
    return this.writer.write(this.codec.frame(text));
  }

  /** Open, or closing with the close frame not sent yet (the answers to what the peer sent before it). */
  private get writable(): boolean {
    return this.stateNow === 'open' || (this.stateNow === 'closing' && !this.closeSent);
  }

  /** Bytes waiting to be sent: written but not yet accepted by the kernel. */
  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }

  // ---- recovery holds ------------------------------------------------------

  /**
   * From now on, live publications of `topic` are kept in the returned list
   * instead of being written (a recovery is reading history); `release`
   * ends it. The hub asks `hold` for every publication it delivers.
   */
  holdLive(topic: string): Publication[] {
    const held: Publication[] = [];
    (this.held ??= new Map()).set(topic, held);
    return held;
  }

  /** Ends a hold started by `holdLive` (if it is still that one). */
  releaseLive(topic: string, held: Publication[]): void {
    if (this.held?.get(topic) === held) this.held.delete(topic);
    if (this.held?.size === 0) this.held = null;
  }

  /** Keeps the publication if its topic is held; false when it is to be written now. */
  hold(publication: Publication): boolean {
    if (this.held === null) return false;
    const held = this.held.get(publication.topic);
    if (!held) return false;
    held.push(publication);
    return true;
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Marks the session open and handles the frames that arrived while it was connecting. */
  open(): void {
    if (this.stateNow !== 'connecting') return;
    this.stateNow = 'open';
    if (this.handler.onOpened) {
      try {
        this.handler.onOpened(this);
      } catch (err) {
        this.host.onHandlerError(this, err);
      }
    }
    this.drain();
  }

  /** Entry point for every frame from the peer (the transport calls it). */
  receive(data: Buffer, isBinary: boolean): void {
    this.liveness.seen(Date.now());
    this.framesInNow++;
    if (this.state === 'closing' && !this.closeSent && this.answersBeforeClose) return this.refuseClosing(data, isBinary);
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.inbox) {
      this.inbox.push({ data, isBinary });
      if (this.inbox.length >= INBOX_PAUSE_AT && !this.paused) {
        this.paused = true;
        this.transport.pause();
      }
      return;
    }
    this.handle(data, isBinary);
  }

  /** A sign of life that is not a frame (a pong). */
  alive(): void {
    this.liveness.seen(Date.now());
  }

  /** The transport failed (the peer broke the protocol): the code and reason to report, unless the server closed first. */
  transportFailed(code: number, reason: string): void {
    if (this.closeCodeNow) return;
    this.closeCodeNow = code;
    this.closeReasonNow = reason;
  }

  /**
   * Closes the connection from the server side with `code` and `reason`,
   * after what is queued: the frames waiting in the inbox are refused, the
   * command being handled is answered (waited for up to `closeTimeout`),
   * then the close frame goes (see the class).
   */
  close(code: number, reason: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    // A connection that never opened ran nothing and is answered nothing: its waiting frames are dropped.
    this.answersBeforeClose = this.stateNow === 'open';
    this.stateNow = 'closing';
    if (this.handler.onServerClose) {
      // Writable (an opened connection) until the close frame is sent: the protocol's own farewell goes first.
      try {
        code = this.handler.onServerClose(this, code, reason) ?? code;
      } catch (err) {
        this.host.onHandlerError(this, err);
      }
    }
    this.closeCodeNow = code;
    this.closeReasonNow = reason;
    const waiting = this.answersBeforeClose ? (this.inbox ?? []) : [];
    this.inbox = null;
    for (const frame of waiting) this.refuseClosing(frame.data, frame.isBinary);
    const owed = this.answersBeforeClose && this.owed ? [...this.owed] : [];
    if (owed.length === 0) this.sendClose();
    // Nothing waits in the inbox any more: read again, or the peer's close frame is never read.
    if (this.paused) {
      this.paused = false;
      this.transport.resume();
    }
    if (owed.length === 0) return;
    const timer = setTimeout(() => this.sendClose(), this.host.closeTimeout);
    timer.unref();
    // Settled after the protocol wrote its answers (their reactions were registered when the publishes began).
    void Promise.allSettled(owed).then(() => {
      clearTimeout(timer);
      this.sendClose();
    });
  }

  /**
   * The answer to a command in progress is owed to the peer before any
   * close frame (a publish: the broker may make it, the peer must learn
   * whether it did). A server close waits for it, at most `closeTimeout`.
   */
  owe(answer: Promise<unknown>): void {
    const owed = (this.owed ??= new Set());
    owed.add(answer);
    const settled = () => {
      owed.delete(answer);
    };
    answer.then(settled, settled);
  }

  /** Resolves once the close frame went to the transport (or the transport is gone). */
  whenCloseSent(): Promise<void> {
    if (this.closeSent || this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => (this.closeSentWaiters ??= []).push(resolve));
  }

  /** A frame the peer sent before it could see the close: refused in the protocol's terms, not run. */
  private refuseClosing(data: Buffer, isBinary: boolean): void {
    try {
      this.handler.refuse(this, new HeraldError('unavailable', `not handled: the connection is closing (${this.closeReasonNow ?? 'closed'})`), data, isBinary);
    } catch (err) {
      this.host.onHandlerError(this, err);
    }
  }

  /** The close frame, behind everything already queued; a peer that never completes the handshake is cut after closeTimeout. */
  private sendClose(): void {
    if (this.closeSent) return;
    this.closeSent = true;
    for (const resolve of this.closeSentWaiters?.splice(0) ?? []) resolve();
    if (this.stateNow !== 'closing') return;
    this.writer.flushPending();
    this.transport.close(this.closeCodeNow ?? 1000, truncateCloseReason(this.closeReasonNow ?? ''));
    this.terminateTimer = setTimeout(() => this.transport.terminate(), this.host.closeTimeout);
    this.terminateTimer.unref();
  }

  /** Cuts the connection without a close handshake. */
  terminate(code: number, reason: string): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') {
      this.closeCodeNow = code;
      this.closeReasonNow = reason;
    }
    this.stateNow = 'closing';
    this.closeSent = true;
    this.inbox = null;
    this.transport.terminate();
  }

  /** The transport is gone (the transport calls it once): `code`/`reason` are the peer's unless the server closed. */
  transportClosed(code: number, reason: string): void {
    this.stateNow = 'closed';
    this.inbox = null;
    this.writer.open = false;
    if (this.terminateTimer) clearTimeout(this.terminateTimer);
    this.setIdentityTimer(undefined);
    const by = this.closeCodeNow ? 'server' : 'client';
    this.host.onClosed(this, this.closeCodeNow ?? code, this.closeReasonNow ?? reason, by);
    for (const resolve of this.closeWaiters.splice(0)) resolve();
    for (const resolve of this.closeSentWaiters?.splice(0) ?? []) resolve();
  }

  /** Resolves once the transport is gone. */
  whenClosed(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  // ---- inbound -------------------------------------------------------------

  /** One frame through the policy's gate, then to the protocol (or the protocol's answer to the refusal). */
  private dispatch(data: Buffer, isBinary: boolean): void | Promise<void> {
    const refused = this.host.admitFrame(this);
    if (refused) return this.handler.refuse(this, refused, data, isBinary);
    return this.handler.onFrame(this, data, isBinary);
  }

  private handle(data: Buffer, isBinary: boolean): void {
    let pending: void | Promise<void>;
    try {
      pending = this.dispatch(data, isBinary);
    } catch (err) {
      this.host.onHandlerError(this, err);
      return;
    }
    if (pending) {
      this.inbox = [];
      pending.then(this.drain, this.rejected);
    }
  }

  private readonly rejected = (err: unknown): void => {
    this.host.onHandlerError(this, err);
    this.drain();
  };

  private readonly drain = (): void => {
    const inbox = this.inbox;
    if (!inbox) return;
    while (inbox.length > 0 && this.state === 'open') {
      const next = inbox.shift()!;
      let pending: void | Promise<void>;
      try {
        pending = this.dispatch(next.data, next.isBinary);
      } catch (err) {
        this.host.onHandlerError(this, err);
        continue;
      }
      if (pending) {
        pending.then(this.drain, this.rejected);
        return;
      }
    }
    if (this.state !== 'open') return;
    this.inbox = null;
    if (this.paused) {
      this.paused = false;
      this.transport.resume();
    }
  };
}
