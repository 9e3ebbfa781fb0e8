import type { ErrorCode, Json } from '@herald/protocol';
import { z } from 'zod';
import type { TokenVerifier } from '../../auth/jwt.js';
import { HeraldError, toErrorBody } from '../../errors.js';
import type { Tags } from '../../publication.js';
import type { Policy, SubscribeOptions, SubscribeOutcome } from '../../policy/policy.js';
import { describeIssue as describe } from '../../util/zod.js';
import type { FrameHandler, Session } from '../../hub/session.js';
import { toJson } from '../../util/json.js';
import { compileFilter, type TagFilter } from '../../util/filter.js';
import type { CommandHandler } from '../../herald.js';

export type { CommandContext, CommandHandler, ConnectionInfo } from '../../herald.js';

/** What the JSON commands need from the services: subscriptions and publications go through the policy only. */
export interface JsonCommandsHost {
  readonly policy: Policy;
  /** Most topics one connection may hold, also the most one command may name (`limits.maxTopicsPerConnection`). */
  readonly maxTopicsPerConnection: number;
  /** Verifies subscribe tokens. */
  readonly tokens: TokenVerifier;
  /** `login`: verifies the token and makes it the connection's identity (Authenticator). */
  login(session: Session, token: unknown): Promise<Record<string, unknown>>;
  /** The push-centre seed's `{"uid":...}`, only with auth.insecureUidLogin (Authenticator). */
  insecureLogin(session: Session, uid: string): void;
  /** The reply to a subscribe to one topic (its position, the recovery's outcome) and the frames that follow it (Recovery). */
  recover(session: Session, topic: string, since: { offset: number; epoch: string } | undefined, respond: (result: object | undefined, frames: Buffer[]) => void): void | Promise<void>;
  /** Resolves once the broker carries these topics here (TopicSubscriptions). */
  whenSubscribed(topics: readonly string[]): Promise<void> | undefined;
  presence(topic: string): unknown;
  historyOf(topic: string, options: { since?: { offset: number; epoch: string }; limit?: number; reverse?: boolean }): Promise<unknown>;
  /** `rpc`: calls the backend's RPC proxy (docs/backend.md); resolves with its `result`, rejects with its refusal, its failure, or `not_found` for a method no proxy takes. */
  rpc(session: Session, method: string, data: unknown): Promise<{ result: unknown }>;
  reportError(session: Session, err: unknown): void;
}

/** Actions the protocol itself answers: an application cannot take their names. */
const BUILT_IN_ACTIONS = new Set([
  'subscribe', 'unsubscribe', 'publish', 'ping', 'pong', 'login', 'history', 'presence', 'error', 'push', 'join', 'leave', 'gap', 'stream', 'close', 'rpc',
  // Server frames of the server API: a subscription the server made, or ended (docs/backend.md).
  'subscribed', 'unsubscribed',
]);

const since = z.strictObject({ offset: z.number().int().min(0), epoch: z.string() });
const topicFields = { topic: z.string().optional(), topics: z.array(z.string()).min(1).optional() };
const subscribeSchema = z.object({ ...topicFields, since: since.optional(), token: z.string().min(1).optional(), data: z.unknown().optional(), filter: z.unknown().optional() });
const unsubscribeSchema = z.object(topicFields);
const historySchema = z.object({ topic: z.string(), since: since.optional(), limit: z.number().int().min(1).optional(), reverse: z.boolean().optional() });
const publishSchema = z.object({
  topic: z.string(),
  message: z.unknown().optional(),
  // Tags as sent, own properties and all (a record schema would copy them and lose a __proto__ name): the publisher checks them (tagsProblem).
  tags: z.custom<Tags>(() => true).optional(),
  event: z.string().optional(),
});
const rpcSchema = z.object({ method: z.string().min(1).max(255), data: z.unknown().optional() });

type Id = number | string | undefined;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A command's `id`: absent, a finite number, or a string of at most 64 characters. */
function validId(id: unknown): id is Id {
  return id === undefined || (typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length <= 64);
}


/**
 * The native JSON protocol's commands (PROTOCOL.md §2): one JSON command per
 * text frame, or an array of commands handled in order. Every command with
 * an `id` gets exactly one reply; a failed command without one gets an error
 * frame. Bad input never closes the connection. Actions that are not built
 * in go to the application's handlers (`handle`). Its frames are encoded by
 * `jsonCodec` (codec.ts).
 */
export class JsonCommands implements FrameHandler {
  readonly canLogIn = true;
  private readonly handlers = new Map<string, CommandHandler>();

  constructor(private readonly host: JsonCommandsHost) {}

  /** Registers a handler for a custom action `{"action": name, ...}`. Throws TypeError for a built-in name or a non-function. */
  handle(action: string, handler: CommandHandler): void {
    if (BUILT_IN_ACTIONS.has(action)) throw new TypeError(`"${action}" is a built-in action and cannot be handled by the application`);
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    this.handlers.set(action, handler);
  }

  onFrame(session: Session, data: Buffer, isBinary: boolean): void | Promise<void> {
    if (isBinary) {
      return this.fail(session, undefined, 'error', 'bad_request', 'binary frames are not accepted: send JSON in a text frame');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch {
      return this.fail(session, undefined, 'error', 'bad_request', 'frame is not valid JSON');
    }
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) return this.fail(session, undefined, 'error', 'bad_request', 'a batch must hold at least one command');
      return this.batch(session, parsed, 0);
    }
    return this.command(session, parsed);
  }

  /** The policy refused the whole frame (over the command rate): each command in it with an `id` gets the refusal. */
  refuse(session: Session, refusal: HeraldError, data: Buffer, isBinary: boolean): void {
    let parsed: unknown;
    try {
      parsed = isBinary ? undefined : JSON.parse(data.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (!this.refuseEach(session, refusal, Array.isArray(parsed) ? parsed : [parsed])) this.fail(session, undefined, 'error', refusal.code, refusal.message);
  }

  /** Answers each command with an `id` with the refusal; whether any had one. */
  private refuseEach(session: Session, refusal: HeraldError, commands: unknown[]): boolean {
    let answered = false;
    for (const command of commands) {
      if (!isObject(command) || !validId(command.id)) continue;
      this.fail(session, command.id, typeof command.action === 'string' ? command.action : 'error', refusal.code, refusal.message);
      answered = true;
    }
    return answered;
  }

  private batch(session: Session, commands: unknown[], from: number): void | Promise<void> {
    for (let i = from; i < commands.length; i++) {
      // Closed by the server while an earlier command of the frame ran: the rest are answered, not run.
      if (session.state !== 'open') {
        this.refuseEach(session, new HeraldError('unavailable', `not handled: the connection is closing (${session.closeReason ?? 'closed'})`), commands.slice(i));
        return;
      }
      // The frame paid for its first command; each further one is charged too.
      const pending = this.command(session, commands[i], i > 0);
      if (pending) return pending.then(() => this.batch(session, commands, i + 1));
    }
  }

  private command(session: Session, raw: unknown, charge = false): void | Promise<void> {
    if (session.state !== 'open') return;
    if (!isObject(raw)) return this.fail(session, undefined, 'error', 'bad_request', 'a command must be a JSON object');
    const id = raw.id;
    if (!validId(id)) {
      return this.fail(session, undefined, 'error', 'bad_request', 'field "id" must be a number or a string of at most 64 characters');
    }
    const overRate = charge ? this.host.policy.admitCommand(session) : null;
    if (overRate) return this.failWith(session, id, typeof raw.action === 'string' ? raw.action : 'error', overRate);
    const action = raw.action;
    if (action === undefined && typeof raw.uid === 'string') return this.seedLogin(session, id, raw.uid);
    if (typeof action !== 'string') {
      return this.fail(session, id, 'error', 'bad_request', 'field "action" must be a string');
    }
    const anonymous = this.host.policy.identityProblem(session, action);
    if (anonymous) return this.failWith(session, id, action, anonymous);
    switch (action) {
      case 'subscribe':
        return this.subscribe(session, id, raw);
      case 'unsubscribe':
        return this.unsubscribe(session, id, raw);
      case 'publish':
        return this.publish(session, id, raw);
      case 'login':
        return this.login(session, id, raw);
      case 'history':
        return this.history(session, id, raw);
      case 'presence':
        return this.presence(session, id, raw);
      case 'rpc':
        return this.rpc(session, id, raw);
      case 'ping':
        return this.reply(session, id, 'ping');
      case 'pong':
        return;
      default:
        return this.custom(session, id, action, raw);
    }
  }

  /** Reads `topic` or `topics` and validates every name; answers the error itself and returns null on failure. */
  private topicsOf(session: Session, id: Id, action: string, fields: { topic?: string; topics?: string[] }): string[] | null {
    if ((fields.topic === undefined) === (fields.topics === undefined)) {
      this.fail(session, id, action, 'bad_request', `${action} needs either "topic" or "topics"`);
      return null;
    }
    const topics = fields.topics ?? [fields.topic!];
    if (topics.length > this.host.maxTopicsPerConnection) {
      this.fail(session, id, action, 'too_many_topics', `${topics.length} topics in one command, over the limit of ${this.host.maxTopicsPerConnection}`);
      return null;
    }
    for (const topic of topics) {
      const invalid = this.host.policy.topicProblem(topic);
      if (invalid) {
        this.failWith(session, id, action, invalid);
        return null;
      }
    }
    return topics;
  }

  private subscribe(session: Session, id: Id, raw: Record<string, unknown>): void | Promise<void> {
    const parsed = subscribeSchema.safeParse(raw);
    if (!parsed.success) return this.fail(session, id, 'subscribe', 'bad_request', describe(parsed.error));
    const topics = this.topicsOf(session, id, 'subscribe', parsed.data);
    if (!topics) return;
    const token = parsed.data.token;
    const recovery = parsed.data.since;
    if (recovery && topics.length !== 1) return this.fail(session, id, 'subscribe', 'bad_request', '"since" goes with a single "topic"');
    const data = parsed.data.data;
    // Compiled once, here: delivery calls the closure (util/filter.ts). A subscribe without one sets none.
    let filter: TagFilter | undefined;
    if (parsed.data.filter !== undefined) {
      try {
        filter = compileFilter(parsed.data.filter);
      } catch (err) {
        return this.failWith(session, id, 'subscribe', err);
      }
    }
    if (token === undefined) return this.subscribeTopics(session, id, topics, recovery, { data, filter });
    // A subscribe token grants one topic (or prefix*) to this uid: verify it first.
    return this.host.tokens.subscribeGrant(token, session.uid).then(
      (grant) => {
        // Remembered for the topics it lets this command subscribe to, so that a later login keeps them.
        const granted = { grant: grant.topic, uid: session.uid, expiresAt: grant.expiresAt };
        return this.subscribeTopics(session, id, topics, recovery, { grants: [grant.topic], granted, data, filter });
      },
      (err: unknown) => this.failWith(session, id, 'subscribe', err),
    );
  }

  private subscribeTopics(
    session: Session,
    id: Id,
    topics: string[],
    recovery: { offset: number; epoch: string } | undefined,
    options: SubscribeOptions,
  ): void | Promise<void> {
    if (session.state !== 'open') return;
    const outcome = this.host.policy.subscribe(session, topics, options);
    if (outcome instanceof Promise) return outcome.then((settled) => this.subscribed(session, id, topics, recovery, settled));
    return this.subscribed(session, id, topics, recovery, outcome);
  }

  /**
   * The reply to a subscribe the policy settled. A subscribe proxy's
   * payloads go in it as `data`: the value itself when the command named one
   * topic, else an object by topic.
   */
  private subscribed(session: Session, id: Id, topics: string[], recovery: { offset: number; epoch: string } | undefined, outcome: SubscribeOutcome): void | Promise<void> {
    if (outcome.refused) return this.failWith(session, id, 'subscribe', outcome.refused);
    const data = outcome.data === null ? undefined : topics.length === 1 ? { data: outcome.data.get(topics[0]!) } : { data: Object.fromEntries(outcome.data) };
    // "Subscribed" only once publications from every node reach this one. For one topic with history,
    // the reply says where the topic stands (a client that loses the connection later can recover from
    // there even when nothing was published meanwhile) and, with "since", whether what was missed follows
    // it: then every publication after the reply's offset, once, in order (see Recovery.subscribe).
    if (recovery || topics.length === 1) {
      return this.host.recover(session, topics[0]!, recovery, (result, frames) => {
        this.reply(session, id, 'subscribe', data ? { ...(result as Record<string, unknown> | undefined), ...data } : (result as Record<string, unknown> | undefined));
        for (const frame of frames) session.write(frame);
      });
    }
    const ready = this.host.whenSubscribed(topics);
    if (ready) return ready.then(() => this.reply(session, id, 'subscribe', data));
    this.reply(session, id, 'subscribe', data);
  }

  private unsubscribe(session: Session, id: Id, raw: Record<string, unknown>): void {
    const parsed = unsubscribeSchema.safeParse(raw);
    if (!parsed.success) return this.fail(session, id, 'unsubscribe', 'bad_request', describe(parsed.error));
    const topics = this.topicsOf(session, id, 'unsubscribe', parsed.data);
    if (!topics) return;
    const missing = topics.filter((topic) => !session.topics.has(topic));
    if (missing.length > 0) {
      return this.fail(session, id, 'unsubscribe', 'not_subscribed', `not subscribed to ${missing.join(', ')}`);
    }
    for (const topic of topics) this.host.policy.unsubscribe(session, topic);
    this.reply(session, id, 'unsubscribe');
  }

  private publish(session: Session, id: Id, raw: Record<string, unknown>): void | Promise<void> {
    const parsed = publishSchema.safeParse(raw);
    if (!parsed.success) return this.fail(session, id, 'publish', 'bad_request', describe(parsed.error));
    if (!('message' in raw)) return this.fail(session, id, 'publish', 'bad_request', 'publish needs a "message"');
    const refused = this.host.policy.publishProblem(session, parsed.data.topic);
    if (refused) return this.failWith(session, id, 'publish', refused);
    const { tags, event } = parsed.data;
    const options = tags === undefined && event === undefined ? undefined : { ...(tags !== undefined ? { tags } : {}), ...(event !== undefined ? { event } : {}) };
    return this.host.policy.publish(session, parsed.data.topic, raw.message, options).then(
      (result) => this.reply(session, id, 'publish', result.offset === undefined ? undefined : { offset: result.offset, epoch: result.epoch }),
      (err: unknown) => this.failWith(session, id, 'publish', err),
    );
  }

  /** Reading a topic's history or presence needs a valid name and the right to subscribe; answers the refusal itself. */
  private mayRead(session: Session, id: Id, action: string, topic: string): boolean {
    const refused = this.host.policy.readProblem(session, topic);
    if (refused) this.failWith(session, id, action, refused);
    return refused === null;
  }

  private history(session: Session, id: Id, raw: Record<string, unknown>): void | Promise<void> {
    const parsed = historySchema.safeParse(raw);
    if (!parsed.success) return this.fail(session, id, 'history', 'bad_request', describe(parsed.error));
    const { topic, ...options } = parsed.data;
    if (!this.mayRead(session, id, 'history', topic)) return;
    return this.host.historyOf(topic, options).then(
      (page) => this.reply(session, id, 'history', page as Record<string, unknown>),
      (err: unknown) => this.failWith(session, id, 'history', err),
    );
  }

  private presence(session: Session, id: Id, raw: Record<string, unknown>): void {
    const topic = raw.topic;
    if (typeof topic !== 'string') return this.fail(session, id, 'presence', 'bad_request', 'field "topic" must be a string');
    if (!this.mayRead(session, id, 'presence', topic)) return;
    try {
      this.reply(session, id, 'presence', this.host.presence(topic) as Record<string, unknown>);
    } catch (err) {
      this.failWith(session, id, 'presence', err);
    }
  }

  /** `{"action":"rpc","method":...,"data":...}`: the backend's RPC proxy answers; its `result` is the reply's. */
  private rpc(session: Session, id: Id, raw: Record<string, unknown>): void | Promise<void> {
    const parsed = rpcSchema.safeParse(raw);
    if (!parsed.success) return this.fail(session, id, 'rpc', 'bad_request', describe(parsed.error));
    return this.host.rpc(session, parsed.data.method, parsed.data.data).then(
      ({ result }) => this.reply(session, id, 'rpc', result === undefined ? undefined : { result }),
      (err: unknown) => this.failWith(session, id, 'rpc', err),
    );
  }

  private login(session: Session, id: Id, raw: Record<string, unknown>): Promise<void> {
    return this.host.login(session, raw.token).then(
      // `conn`: the connection's id, which a backend's publish may `exclude` (the sender of a message).
      (result) => this.reply(session, id, 'login', { ...result, conn: session.id }),
      (err: unknown) => this.failWith(session, id, 'login', err),
    );
  }

  /** The push-centre seed's login frame, `{"uid":"123"}`: no action, no reply on success. */
  private seedLogin(session: Session, id: Id, uid: string): void {
    if (uid.length === 0) return this.fail(session, id, 'login', 'bad_request', 'uid must not be empty');
    try {
      this.host.insecureLogin(session, uid);
    } catch (err) {
      return this.failWith(session, id, 'login', err);
    }
    this.reply(session, id, 'login', { uid });
  }

  private custom(session: Session, id: Id, action: string, raw: Record<string, unknown>): void | Promise<void> {
    const handler = this.handlers.get(action);
    if (!handler) return this.fail(session, id, action, 'unknown_action', `unknown action ${JSON.stringify(action)}`);
    let result: unknown;
    try {
      result = handler(raw, { connection: session });
    } catch (err) {
      return this.failWith(session, id, action, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => this.replyResult(session, id, action, value),
        (err: unknown) => this.failWith(session, id, action, err),
      );
    }
    this.replyResult(session, id, action, result);
  }

  private replyResult(session: Session, id: Id, action: string, value: unknown): void {
    this.reply(session, id, action, value === undefined ? undefined : { result: value as Json });
  }

  private reply(session: Session, id: Id, action: string, extra?: Record<string, unknown>): void {
    if (id === undefined) return;
    session.sendText(toJson({ id, action, ok: true, ...extra }));
  }

  private failWith(session: Session, id: Id, action: string, err: unknown): void {
    if (!(err instanceof HeraldError)) this.host.reportError(session, err);
    const body = toErrorBody(err);
    this.fail(session, id, action, body.code, body.message);
  }

  private fail(session: Session, id: Id, action: string, code: ErrorCode, message: string): void {
    const error = { code, message };
    const frame = id === undefined ? { action: 'error', error } : { id, action, ok: false, error };
    session.sendText(toJson(frame));
  }
}
