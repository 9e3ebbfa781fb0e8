import type { IncomingMessage } from 'node:http';
import { CloseCode } from '@herald/protocol';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { ConnectHook } from '../herald.js';
import type { Hub } from '../hub/hub.js';
import type { Session } from '../hub/session.js';
import { askConnectHook } from './connect-hook.js';
import type { Identity, TokenVerifier } from './jwt.js';
import type { Permissions } from './permissions.js';
import type { Logger } from '../log.js';
import type { RefreshVerdict } from '../proxy/proxies.js';

export interface AuthenticatorOptions {
  readonly config: HeraldConfig;
  readonly tokens: TokenVerifier;
  readonly permissions: Permissions;
  readonly hub: Hub;
  /** The library's own connect hook (`createHerald({ onConnect })`). */
  readonly onConnect: ConnectHook | undefined;
  topicProblem(topic: string): string | null;
  /** Closes a connection from the server side (the gateway's lifecycle). */
  closeSession(session: Session, code: number, reason: string): void;
  /** Header names of a connection's HTTP request the backend proxies forward: the only ones a connection keeps (none by default). */
  readonly proxyHeaders?: readonly string[];
  /** The refresh proxy (docs/backend.md), when `proxy.refresh.url` is set. */
  readonly refresh?: { readonly interval: number; ask(session: Session): Promise<RefreshVerdict> } | undefined;
  readonly log?: Logger;
}


/** Why `connect` gave up: the connection closed while its identity was being settled. */
export const CLOSED_WHILE_CONNECTING = 'the connection closed before its identity was settled';

/** Gives up settling the identity of a connection that closed meanwhile (after each await of `connect`). */
function stillConnecting(session: Session): void {
  if (session.state !== 'connecting') throw new HeraldError('unavailable', CLOSED_WHILE_CONNECTING);
}
/** Longest a timer can wait; longer waits go in steps. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * Who a connection is, and for how long: at connect, the URL's `?token=`,
 * then the backend connect hook, then the library's `onConnect`; later a
 * JSON `login` with a fresh token, or the push-centre seed's bare-uid login
 * (only with `auth.insecureUidLogin`). An identity brings the user index,
 * grants and public info, and drops subscriptions it no longer allows. Two
 * deadlines guard it, one timer per connection: the login deadline (with
 * `auth.anonymous: false`) and the token's expiry (an error frame in the
 * connection's protocol, `auth.expiryGrace` to log in again, then 4001).
 */
export class Authenticator {
  /** Connections whose identity the connect hook gave (no token since): the ones the refresh proxy checks. */
  private readonly hooked = new WeakSet<Session>();

  constructor(private readonly options: AuthenticatorOptions) {}

  /**
   * Keeps, of a new connection's HTTP request, the headers the backend
   * proxies forward (`proxy.*.forwardHeaders`) and nothing else: a
   * connection never holds on to its request.
   */
  keepHeaders(session: Session, request: IncomingMessage): void {
    let kept: Record<string, string> | undefined;
    for (const name of this.options.proxyHeaders ?? []) {
      const value = request.headers[name];
      if (value !== undefined) (kept ??= {})[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    session.keepHeaders(kept);
  }

  /** Whether settling a new connection's identity needs any work (else it opens at once); `bearer` as for `connect`. */
  needed(request: IncomingMessage, bearer?: string): boolean {
    return Boolean(bearer !== undefined || this.options.onConnect || this.options.config.auth.connectHook.url || request.url?.includes('token='));
  }

  /**
   * Establishes who a new connection is, before any of its frames is
   * handled: its token (`bearer`, the `Authorization: Bearer` token of a
   * transport that takes one, HTTP streaming; else the URL's `?token=`),
   * then the connect hook, then `onConnect`. Resolves with the topics the
   * connect hook subscribes it to; rejects with a `HeraldError` that
   * refuses it (see `closeCodeFor`).
   */
  async connect(session: Session, request: IncomingMessage, bearer?: string): Promise<string[]> {
    const url = request.url ?? '/';
    const token = bearer ?? new URL(url, 'http://herald').searchParams.get('token');
    if (token !== null) this.apply(session, await this.options.tokens.identity(token));
    stillConnecting(session);
    let topics: string[] = [];
    const hook = this.options.config.auth.connectHook;
    if (hook.url) {
      const answer = await askConnectHook(hook, { ip: session.ip, url, headers: request.headers });
      stillConnecting(session);
      topics = (answer.topics ?? []).filter((topic) => this.options.topicProblem(topic) === null);
      if (answer.uid !== undefined) {
        this.apply(session, { uid: answer.uid, expiresAt: undefined, topics, publish: answer.publish ?? [], info: answer.info });
      } else {
        session.setIdentity({ ...session.identity, grants: { topics, publish: answer.publish ?? [] } });
      }
      // The identity is the hook's unless a token gave the uid and the hook none.
      if (answer.uid !== undefined || session.uid === undefined) this.hooked.add(session);
    }
    const onConnect = this.options.onConnect;
    // The application hears of a connection only while it is there (checked after each await above): never after its disconnect.
    if (onConnect) {
      await onConnect({ id: session.id, ip: session.ip, uid: session.uid, topics: session.topics, connectedAt: session.connectedAt, url, headers: request.headers });
    }
    return topics;
  }

  /** With `auth.anonymous: false`, a connection that has no identity as it opens gets `auth.loginTimeout` to log in. */
  startLoginDeadline(session: Session): void {
    if (this.options.config.auth.anonymous || session.uid !== undefined) return;
    this.after(this.options.config.auth.loginTimeout, session, () => {
      if (session.uid === undefined) this.options.closeSession(session, CloseCode.UNAUTHORIZED, 'login required');
    });
  }

  /**
   * With a refresh proxy, a connection the connect hook identified (and that
   * has no login deadline running) is checked about every
   * `proxy.refresh.interval` (up to 10% earlier, so that connections made
   * together spread their calls): see `refreshNow`.
   */
  startRefresh(session: Session): void {
    const refresh = this.options.refresh;
    if (!refresh || !this.hooked.has(session) || session.identity.expiresAt !== undefined) return;
    // The login deadline holds the identity timer: the connection must log in (with a token) first.
    if (!this.options.config.auth.anonymous && session.uid === undefined) return;
    this.after(refresh.interval * (1 - Math.random() / 10), session, () => void this.refreshNow(session));
  }

  /**
   * Asks the refresh proxy about the connection. Valid: its info and grants
   * are replaced by those the answer gives (subscriptions they no longer
   * allow are dropped, and the connection is told with a `forbidden` error
   * naming them), and the next check is scheduled. Refused: closed with
   * 4002. A failed call keeps it until the next check (a backend outage
   * must not close every connection at once). Nothing happens to a
   * connection that logged in with a token meanwhile.
   */
  async refreshNow(session: Session): Promise<void> {
    const refresh = this.options.refresh;
    if (!refresh || session.state !== 'open' || !this.hooked.has(session)) return;
    let verdict: RefreshVerdict;
    try {
      verdict = await refresh.ask(session);
    } catch (err) {
      if (!(err instanceof HeraldError)) this.options.log?.error({ conn: session.id, err }, 'refresh proxy failed');
      verdict = { valid: true, info: undefined, topics: undefined, publish: undefined };
    }
    if (session.state !== 'open' || !this.hooked.has(session)) return;
    if (!verdict.valid) return this.options.closeSession(session, CloseCode.IDENTITY_REVOKED, verdict.reason);
    const { identity } = session;
    if (verdict.info !== undefined || verdict.topics !== undefined || verdict.publish !== undefined) {
      const topics = verdict.topics?.filter((topic) => this.options.topicProblem(topic) === null) ?? identity.grants.topics;
      session.setIdentity({ ...identity, info: verdict.info ? verdict.info.value : identity.info, grants: { topics, publish: verdict.publish ?? identity.grants.publish } });
      const dropped = this.dropDisallowed(session);
      if (dropped.length > 0) {
        const frame = session.codec.error('forbidden', `unsubscribed from ${dropped.join(', ')}: the backend's refresh no longer allows them`);
        if (frame) session.write(frame);
      }
    }
    this.startRefresh(session);
  }

  /** Verifies a token sent with `login` and makes it the connection's identity. */
  async login(session: Session, token: unknown): Promise<{ uid: string; expiresAt?: number; unsubscribed?: string[] }> {
    const identity = await this.options.tokens.identity(token);
    if (session.state !== 'open') throw new HeraldError('unavailable', 'connection is closing');
    // From now on the token is the identity: the refresh proxy no longer checks it.
    this.hooked.delete(session);
    const unsubscribed = this.apply(session, identity);
    return {
      uid: identity.uid,
      ...(identity.expiresAt !== undefined ? { expiresAt: identity.expiresAt } : {}),
      ...(unsubscribed.length > 0 ? { unsubscribed } : {}),
    };
  }

  /** The push-centre seed's `{"uid":"123"}` login: no proof, only when auth.insecureUidLogin is on. */
  insecureLogin(session: Session, uid: string): void {
    if (!this.options.config.auth.insecureUidLogin) {
      throw new HeraldError('unauthorized', 'login with a bare uid is disabled: send {"action":"login","token":...} (or enable auth.insecureUidLogin)');
    }
    this.hooked.delete(session);
    this.apply(session, { uid, expiresAt: undefined, topics: [], publish: [], info: undefined });
    session.setIdentity({ ...session.identity, rawPush: true });
  }

  /**
   * Gives a session an identity: user index, grants, expiry. Subscriptions
   * that neither the new identity nor a subscribe token the connection still
   * holds (same uid, not expired) grants are dropped; their topics are returned.
   */
  private apply(session: Session, identity: Identity): string[] {
    const { hub } = this.options;
    const limit = this.options.config.limits.maxConnectionsPerUser;
    if (session.uid !== identity.uid && hub.userSessions(identity.uid).size >= limit) {
      throw new HeraldError('rate_limited', `too many connections for user ${identity.uid} (limit ${limit})`);
    }
    hub.setUser(session, identity.uid);
    session.setIdentity({ grants: { topics: identity.topics, publish: identity.publish }, info: identity.info, rawPush: false, expiresAt: identity.expiresAt });
    const dropped = this.dropDisallowed(session);
    this.scheduleExpiry(session, identity.expiresAt);
    return dropped;
  }

  /** Drops the subscriptions that neither the connection's identity nor a grant it still holds allows; returns their topics. */
  private dropDisallowed(session: Session): string[] {
    const { hub, permissions } = this.options;
    const dropped = [...session.topics].filter((topic) => permissions.subscribeProblem(session, topic, this.heldGrant(session, topic)) !== null);
    for (const topic of dropped) hub.unsubscribe(session, topic);
    return dropped;
  }

  /** The subscribe-token grant the connection still holds for a topic: issued to its current uid and not expired (with clockTolerance). */
  private heldGrant(session: Session, topic: string): string[] {
    const held = session.subscribeGrant(topic);
    if (!held || held.uid !== session.uid) return [];
    if (held.expiresAt !== undefined && held.expiresAt + this.options.tokens.clockTolerance <= Date.now()) return [];
    return [held.grant];
  }

  /** At expiry (the token's `exp` plus `auth.jwt.clockTolerance`): an error frame, then a grace period to log in again, then close 4001. */
  private scheduleExpiry(session: Session, expiresAt: number | undefined): void {
    session.setIdentityTimer(undefined);
    if (expiresAt === undefined) return;
    const grace = this.options.config.auth.expiryGrace;
    // The same tolerance as acceptance: a token accepted within clockTolerance past its `exp` is not answered `token_expired` at once.
    this.after(expiresAt + this.options.tokens.clockTolerance - Date.now(), session, () => {
      if (session.identity.expiresAt !== expiresAt || session.state !== 'open') return;
      // In the connection's own protocol: an LHTTP client gets an LHTTP error message, never a JSON frame.
      const how = session.handler.canLogIn ? `log in with a fresh token within ${grace} ms` : `reconnect with a fresh token within ${grace} ms`;
      const frame = session.codec.error('token_expired', `token expired: ${how}`);
      if (frame) session.write(frame);
      this.after(grace, session, () => {
        if (session.identity.expiresAt === expiresAt) this.options.closeSession(session, CloseCode.TOKEN_EXPIRED, 'token expired');
      });
    });
  }

  /** Runs `fn` after `ms` as the session's identity timer; longer than a timer can wait, it waits in steps. */
  private after(ms: number, session: Session, fn: () => void): void {
    const delay = Math.max(0, ms);
    const timer = setTimeout(() => {
      session.setIdentityTimer(undefined);
      if (delay > MAX_TIMER) this.after(delay - MAX_TIMER, session, fn);
      else fn();
    }, Math.min(delay, MAX_TIMER));
    timer.unref();
    session.setIdentityTimer(timer);
  }
}

/** The close code that refuses a connection for an error of this code. */
export function closeCodeFor(code: string): number {
  if (code === 'unauthorized' || code === 'token_expired') return CloseCode.UNAUTHORIZED;
  if (code === 'forbidden') return CloseCode.FORBIDDEN;
  if (code === 'rate_limited') return CloseCode.TOO_MANY_CONNECTIONS;
  return CloseCode.RECONNECT;
}
