import { compileFilter } from '../../util/filter.js';
import { CloseCode } from '@herald/protocol';
import { HTTP_STATUS, type HeraldError } from '../../errors.js';
import type { FrameHandler, Session } from '../../hub/session.js';
import type { Policy, SubscribeOutcome } from '../../policy/policy.js';
import type { Refusal } from '../../transport/transport.js';
import { toJson } from '../../util/json.js';
import type { Protocol } from '../protocol.js';
import { retryFrame, sseCodec, sseEvent, SseStreamCodec } from './codec.js';
import { decodeEventId, encodePosition, StreamPositions, type EventPosition } from './event-id.js';

/** How long an `EventSource` waits before it reconnects (the `retry:` line every stream starts with), in ms. */
export const SSE_RETRY_MS = 2000;

/** What a subscribe reply holds (Recovery.subscribe's answer): a position, a recovery's outcome, or nothing. */
type SubscribeResult = { offset?: number; epoch?: string; recovered?: boolean; reason?: string; data?: unknown } | undefined;

/** What the SSE streams need from the services: subscriptions go through the policy, positions through the recovery. */
export interface SseStreamsHost {
  readonly policy: Policy;
  /** Most topics one stream may name (`limits.maxTopicsPerConnection`). */
  readonly maxTopicsPerConnection: number;
  /**
   * True when a connection may hold topics the stream did not name (the connect hook subscribes it to its
   * own): every stream's ids then name their topics, as a multi-topic stream's do.
   */
  readonly extraTopics: boolean;
  /** Herald's topic rule plus the broker's: why a topic is refused, or null. */
  topicProblem(topic: string): string | null;
  /** The reply to a subscribe to one topic and the frames that follow it (Recovery.subscribe). */
  recover(session: Session, topic: string, since: EventPosition | undefined, respond: (result: object | undefined, frames: Buffer[]) => void): void | Promise<void>;
  closeSession(session: Session, code: number, reason: string): void;
  reportError(session: Session, err: unknown): void;
}

/** A stream asked for: the protocol its connection speaks (its codec may be its own) and the frame that starts it. */
export interface SseStreamRequest {
  readonly protocol: Protocol;
  /** Handed to `Session.receive` once: the topics and the positions to subscribe from. */
  readonly start: Buffer;
}

/** The start frame: the stream's topics and the positions its event id gave them. */
interface Start {
  topics: string[];
  since: Array<[string, EventPosition]>;
  /** The filters by topic (their JSON, checked by `open`), for the topics that have one. */
  filters?: Array<[string, unknown]>;
}

/**
 * The stream's filters from its query: `filter=<JSON>` for every topic,
 * `filter.<topic>=<JSON>` for one (it wins); each compiled once here to be
 * checked. A refusal names the parameter (`filter.s1.eq: needs [tag,
 * value]`, `filter.s1: not JSON`); a parameter given twice, or a
 * `filter.<topic>` for a topic the stream does not name, is refused too.
 */
function filtersOf(query: URLSearchParams, topics: readonly string[]): Array<[string, unknown]> | Refusal {
  const filters: Array<[string, unknown]> = [];
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (name !== 'filter' && !name.startsWith('filter.')) continue;
    if (seen.has(name)) return badRequest('bad_request', `${name} is given more than once: one filter per topic (combine them with {"and":[...]} or {"or":[...]})`);
    seen.add(name);
    const topic = name.slice('filter.'.length);
    if (name !== 'filter' && !topics.includes(topic)) return badRequest('bad_request', `${name.slice(0, 200)} names a topic the stream does not subscribe (add topic=${topic.slice(0, 200)}, or drop the filter)`);
  }
  for (const topic of topics) {
    const name = query.has(`filter.${topic}`) ? `filter.${topic}` : 'filter';
    const text = query.get(name);
    if (text === null) continue;
    let spec: unknown;
    try {
      spec = JSON.parse(text);
      compileFilter(spec, name);
    } catch (err) {
      // The compiler's message names the parameter already (`filter.eq: ...`).
      return badRequest('bad_request', err instanceof SyntaxError ? `${name}: not JSON` : (err as Error).message);
    }
    filters.push([topic, spec]);
  }
  return filters;
}

function badRequest(code: 'bad_request' | 'invalid_topic' | 'too_many_topics', message: string): Refusal {
  return { status: 400, code, message };
}

/** The close code that ends a stream refused before it started (for logs and the `disconnect` event; the client sees the HTTP answer). */
function closeCodeOf(error: HeraldError): number {
  if (error.code === 'unauthorized') return CloseCode.UNAUTHORIZED;
  if (error.code === 'forbidden') return CloseCode.FORBIDDEN;
  if (error.code === 'rate_limited') return CloseCode.TOO_MANY_CONNECTIONS;
  return CloseCode.POLICY_VIOLATION;
}

/**
 * SSE streams (`GET /sse?topic=a&topic=b`, docs/transports.md): a one-way
 * connection that carries the JSON protocol's server frames as events. The
 * request is the stream's only command: `open` reads it (topics, and the
 * positions of `Last-Event-ID` or `?lastEventId=`) into a start frame, which
 * the session hands to `onFrame` once the connection's identity is settled.
 * There the topics are subscribed through the policy, all or none; a refusal
 * is answered with its HTTP status before the stream starts. Then the
 * stream starts (`retry:`) and each topic gets its `event: subscribe`, from
 * the recovery, in the JSON protocol's words, with the missed publications
 * after it. A stream of one topic speaks the shared `sseCodec`; a stream of
 * several gets an `SseStreamCodec` of its own, whose ids hold every topic.
 */
export class SseStreams implements FrameHandler {
  readonly canLogIn = false;

  constructor(private readonly host: SseStreamsHost) {}

  /**
   * The stream a request asks for, from its query (`topic`, repeatable;
   * `lastEventId`) and its `Last-Event-ID` header (which wins over the
   * query); a 400 refusal for no topic, too many, an invalid one, or an id
   * that cannot be read.
   */
  open(query: URLSearchParams, lastEventIdHeader: string | undefined): SseStreamRequest | Refusal {
    const topics = [...new Set(query.getAll('topic'))];
    if (topics.length === 0) return badRequest('bad_request', 'name at least one topic: ?topic=<name> (repeatable)');
    const limit = this.host.maxTopicsPerConnection;
    if (topics.length > limit) return badRequest('too_many_topics', `${topics.length} topics, over the limit of ${limit}`);
    for (const topic of topics) {
      const problem = this.host.topicProblem(topic);
      if (problem) return badRequest('invalid_topic', problem);
    }
    const fromHeader = Boolean(lastEventIdHeader);
    const id = fromHeader ? lastEventIdHeader! : (query.get('lastEventId') ?? '');
    let since = new Map<string, EventPosition>();
    if (id !== '') {
      const decoded = decodeEventId(id, topics);
      if (typeof decoded === 'string') return badRequest('bad_request', `${fromHeader ? 'Last-Event-ID' : 'lastEventId'} cannot be read: ${decoded}`);
      since = decoded;
    }
    const filters = filtersOf(query, topics);
    if (!Array.isArray(filters)) return filters;
    const named = topics.length > 1 || this.host.extraTopics;
    const codec = named ? new SseStreamCodec(new StreamPositions(since)) : sseCodec;
    const start: Start = { topics, since: [...since], ...(filters.length > 0 ? { filters } : {}) };
    return { protocol: { codec, handler: this }, start: Buffer.from(JSON.stringify(start)) };
  }

  /**
   * The start frame (the only frame a stream gets): subscribes (through the
   * policy, and so the subscribe proxies: the stream waits for them before
   * its first byte), starts the stream, and asks for each topic's position.
   */
  onFrame(session: Session, data: Buffer): void | Promise<void> {
    if (session.framesIn !== 1) return;
    const start = JSON.parse(data.toString('utf8')) as Start;
    // Checked by `open`: compiled again here, once per topic, for the subscriptions.
    const filters = start.filters ? new Map(start.filters.map(([topic, spec]) => [topic, compileFilter(spec)])) : undefined;
    const outcome = this.host.policy.subscribe(session, start.topics, filters ? { filters } : {});
    if (outcome instanceof Promise) return outcome.then((settled) => this.started(session, start, settled));
    this.started(session, start, outcome);
  }

  private started(session: Session, start: Start, outcome: SubscribeOutcome): void {
    if (outcome.refused) return this.refuseStream(session, outcome.refused);
    if (session.state !== 'open') return;
    session.write(retryFrame(SSE_RETRY_MS));
    const since = new Map(start.since);
    for (const topic of start.topics) {
      const from = since.get(topic);
      const first = outcome.data?.has(topic) ? { data: outcome.data.get(topic) } : undefined;
      const pending = this.host.recover(session, topic, from, (result, frames) => this.answer(session, topic, from, first ? { ...(result as SubscribeResult), ...first } : (result as SubscribeResult), frames));
      if (pending) pending.catch((err: unknown) => this.host.reportError(session, err));
    }
  }

  /**
   * A stream whose event ids name their topics (several topics, or topics from the connect hook) may be
   * given more by the server; a stream of one topic may not: its ids hold that topic's position alone.
   */
  acceptsServerTopics(session: Session): boolean {
    return session.codec instanceof SseStreamCodec;
  }

  /** Over the command rate before the stream started (it has one frame): answered with its status. */
  refuse(session: Session, refusal: HeraldError): void {
    this.refuseStream(session, refusal);
  }

  private refuseStream(session: Session, error: HeraldError): void {
    session.transport.refuse?.({ status: HTTP_STATUS[error.code], code: error.code, message: error.message });
    this.host.closeSession(session, closeCodeOf(error), error.message);
  }

  /**
   * A topic's `event: subscribe` (the JSON protocol's reply, with the topic)
   * and the frames after it. The event's id is where the stream stands on
   * the topic at that point, so that a stream cut right after it resumes
   * with what follows: the reply's position; the client's (`since`) before a
   * replay (each replayed publication carries its own id) and when the store
   * did not answer.
   */
  private answer(session: Session, topic: string, since: EventPosition | undefined, result: SubscribeResult, frames: Buffer[]): void {
    const position = result?.offset !== undefined ? { offset: result.offset, epoch: result.epoch ?? '' } : undefined;
    const replays = frames.length > 0 && result?.recovered === true;
    // Undefined for a topic without history: it has no entry.
    const before = replays ? since : (position ?? (result?.reason === 'unavailable' ? since : undefined));
    let id: string | undefined;
    const codec = session.codec;
    if (codec instanceof SseStreamCodec) {
      const { positions } = codec;
      id = positions.eventIdWith(topic, before) || undefined;
      // With frames, encoding them already moved the topic's entry to the last one's position.
      if (frames.length === 0) {
        if (before) positions.set(topic, before);
        else positions.delete(topic);
      }
    } else if (before) {
      id = encodePosition(before);
    }
    session.write(sseEvent('subscribe', toJson({ action: 'subscribe', ok: true, topic, ...result }), id));
    for (const frame of frames) session.write(frame);
  }
}
