import { CloseCode, type ErrorCode } from '@herald/protocol';
import type { Publication } from '../broker/broker.js';
import { HeraldError, toErrorBody } from '../errors.js';
import { webSocketText } from '../hub/frame.js';
import type { FrameHandler, Session } from '../hub/session.js';
import type { Policy, SubscribeOutcome } from '../policy/policy.js';
import { toJson } from '../util/json.js';
import { framedCodec, type TextCodec } from './codec.js';
import { messageText } from './protocol.js';

/** One raw endpoint of the configuration (`raw[]`). */
export interface RawEndpoint {
  /** Path, exact or a prefix ending in `*`. */
  path: string;
  /** Topics every connection is subscribed to as it opens. */
  topics: readonly string[];
  /** Topic what a connection sends is published to; false: sending is refused. */
  publish: string | false;
  /** Prepended to what a connection sends before it is published. */
  prefix: string;
}

/** What the raw protocol needs from the gateway. */
export interface RawProtocolHost {
  /** Every subscription and publication goes through the policy: identity, topic rules, permissions, limits. */
  readonly policy: Policy;
  closeSession(session: Session, code: number, reason: string): void;
  reportError(session: Session, err: unknown): void;
}

/**
 * What a raw connection receives: each publication or push as one text frame
 * holding the message's plain text, and errors as the JSON protocol's error
 * frame. No ping, presence, gap or subscription notice: a raw client would take them for data.
 */
export const rawText = {
  name: 'raw',
  publication: (publication: Publication) => messageText(publication.payload),
  push: (payload: string) => messageText(payload),
  plainPush: () => null,
  error: (code: ErrorCode, message: string) => toJson({ action: 'error', error: { code, message } }),
  ping: () => null,
  presence: () => null,
  gap: () => null,
  subscribed: () => null,
  unsubscribed: () => null,
} satisfies TextCodec;

/** Raw over WebSocket: one text frame per message. */
export const rawCodec = framedCodec(rawText, webSocketText);

/**
 * The raw protocol, for clients that speak none (the Redis-fed seed's page,
 * SEEDS-SPEC §1): a connection on a raw endpoint's path sends no subscribe;
 * as it opens, the server subscribes it to the endpoint's topics through the
 * policy, as a subscribe command would be. Each publication reaches it as one
 * text frame holding the message's plain text: a JSON string as the string
 * itself, any other message as its JSON text (a Redis publisher's
 * `PUBLISH channel "data from PHP"` arrives as `data from PHP`). Each frame it
 * sends (text, or binary read as UTF-8, as the seed reads it) is published as
 * a string to the endpoint's `publish` topic, after its `prefix`, through the
 * policy, as a publish command would be.
 *
 * A frame that is refused or cannot be published (sending off, not allowed,
 * over a limit, broker down) is answered, to the sender only, with the JSON
 * protocol's error frame `{"action":"error","error":{"code","message"}}`; the
 * connection stays. A connection that may not hold the endpoint's topics is
 * closed as it opens: 4503 when forbidden, 4501 without the identity it needs
 * (raw has no login message: `?token=` or the connect hook).
 */
export class RawProtocol implements FrameHandler {
  readonly canLogIn = false;
  readonly codec = rawCodec;

  constructor(
    private readonly host: RawProtocolHost,
    readonly endpoint: RawEndpoint,
  ) {}

  /**
   * Subscribes the connection to the endpoint's topics. When a subscribe
   * proxy covers one, the connection opens while the backend is asked, and
   * is closed if it refuses; a payload it gives is written first.
   */
  onOpen(session: Session): void {
    const outcome = this.host.policy.subscribe(session, this.endpoint.topics, {
      deliverFirst: (_topic, data) => session.sendText(messageText(toJson(data))),
    });
    if (outcome instanceof Promise) {
      outcome.then((settled) => this.opened(session, settled)).catch((err: unknown) => this.host.reportError(session, err));
    } else {
      this.opened(session, outcome);
    }
  }

  private opened(session: Session, outcome: SubscribeOutcome): void {
    const refused = outcome.refused;
    if (!refused || session.state === 'closing' || session.state === 'closed') return;
    const code = refused.code === 'forbidden' ? CloseCode.FORBIDDEN : refused.code === 'unauthorized' ? CloseCode.UNAUTHORIZED : CloseCode.RECONNECT;
    this.host.closeSession(session, code, refused.message);
  }

  onFrame(session: Session, data: Buffer, _isBinary: boolean): void | Promise<void> {
    const topic = this.endpoint.publish;
    if (topic === false) return this.fail(session, 'forbidden', `this endpoint (${this.endpoint.path}) only delivers: what a client sends is not published`);
    return this.host.policy.publish(session, topic, this.endpoint.prefix + data.toString('utf8')).then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof HeraldError)) this.host.reportError(session, err);
        const body = toErrorBody(err);
        this.fail(session, body.code, body.message);
      },
    );
  }

  /** The policy refused the frame (over the command rate): the error frame, to the sender. */
  refuse(session: Session, refusal: HeraldError): void {
    this.fail(session, refusal.code, refusal.message);
  }

  private fail(session: Session, code: ErrorCode, message: string): void {
    session.sendText(rawText.error(code, message));
  }
}
