import type { Broker, Publication } from '../broker/broker.js';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { HistoryOptions, HistoryPage, StreamPosition } from '../herald.js';
import type { Session } from '../hub/session.js';
import type { Logger } from '../log.js';
import type { LiveStreams } from './catch-up.js';
import type { LatestValues } from './latest.js';
import { ruleFor } from '../topics.js';
import { continuationProblem, type HistoryEntry, type HistoryRead, type HistoryRule, type HistoryStore, type Position, type RecoveryFailure } from './history.js';

/** What a recovery answers in the subscribe reply. */
export interface RecoveryResult {
  recovered: boolean;
  reason?: RecoveryFailure | 'unavailable';
  offset?: number;
  epoch?: string;
}

/** A subscribe reply's fields (a recovery's outcome, or the topic's position, or nothing) and the frames that follow it, in order. */
export type SubscribeAnswer = (result: RecoveryResult | StreamPosition | undefined, frames: Buffer[]) => void;

export interface RecoveryOptions {
  readonly config: HeraldConfig;
  readonly history: HistoryStore;
  readonly broker: Broker;
  readonly live: LiveStreams;
  /** The latest value of each cache-mode topic seen on this node, for a store that is not shared. */
  readonly latest: LatestValues;
  readonly log: Logger;
  /** Resolves once the broker carries these topics here (TopicSubscriptions.whenCarried). */
  whenCarried(topics: readonly string[]): Promise<void> | undefined;
  topicProblem(topic: string): string | null;
  /** The filter of the connection's subscription to the topic (Hub.filterOf): what it does not pass is not replayed. */
  filterOf?(session: Session, topic: string): ((tags: Publication['tags']) => boolean) | undefined;
  /** Counts the publications a filtered subscription's replay left out (herald_messages_filtered_total). */
  filteredOut?(count: number): void;
  /**
   * Whether a store that is not shared holds every publication of its
   * topics: false once publications this process did not store can exist
   * (another node, a raw publisher on the broker). A recovery then answers
   * `not_shared` instead of replaying a part as if it were all. Default: true.
   */
  vouches?(): boolean;
}

/**
 * How long a subscribe keeps retrying a history store that does not answer
 * (Redis restarting) before it answers without a position (`unavailable`).
 */
const SUBSCRIBE_READ_RETRY = 5000;

/**
 * What a recovery sends after its reply, given the client's position
 * `since`, what the store read after it, and the live publications held
 * while it read: the recovery's outcome and the publications, in order, each
 * once. Pure: no I/O, no session.
 *
 * - `epoch_changed` (the store's epoch is not the client's, or the client is
 *   ahead of it) and `too_far_behind` (the oldest kept entry is after the
 *   client's next offset): only the held live publications follow.
 * - Otherwise the read entries, then the held ones the read did not include.
 */
export function merge(topic: string, since: Position, read: HistoryRead, held: readonly Publication[]): { result: RecoveryResult; publications: Publication[] } {
  const { position } = read;
  const here = { offset: position.offset, epoch: position.epoch };
  const live = held.filter((publication) => publication.offset === undefined || publication.epoch !== position.epoch || publication.offset > position.offset);
  if (continuationProblem(since, position)) return { result: { recovered: false, reason: 'epoch_changed', ...here }, publications: live };
  if (since.offset + 1 < read.oldest) return { result: { recovered: false, reason: 'too_far_behind', ...here }, publications: live };
  const replay = read.entries.map((entry) => toPublication(topic, entry, position.epoch));
  return { result: { recovered: true, ...here }, publications: [...replay, ...live] };
}

/**
 * What follows a subscribe reply on a topic in cache mode (`history[].cache`):
 * its latest publication (`latest`, at or before the reply's `position`)
 * rather than what was missed, then the held live publications the read did
 * not cover. Without `since`: the latest, then the live ones. With `since`:
 * the latest only if the client does not have it yet (it is newer than
 * `since` in the same epoch, or in another epoch), and the recovery counts as
 * done (`recovered: true`) whenever the client ends up with the current
 * value; `epoch_changed` only when there is no latest value to give it and
 * `since` does not continue the topic's history. When live publications
 * follow, the newest value is among them: the stored one is not sent. Pure.
 */
export function mergeCached(
  since: Position | undefined,
  latest: Publication | undefined,
  position: Position,
  held: readonly Publication[],
): { result: RecoveryResult | StreamPosition; publications: Publication[] } {
  const here = { offset: position.offset, epoch: position.epoch };
  const live = held.filter((publication) => publication.offset === undefined || publication.epoch !== position.epoch || publication.offset > position.offset);
  const has = since !== undefined && latest?.offset !== undefined && latest.epoch === since.epoch && latest.offset <= since.offset;
  const publications = live.length === 0 && latest !== undefined && !has ? [latest, ...live] : live;
  if (!since) return { result: here, publications };
  if (publications.length > 0 || has || !continuationProblem(since, position)) return { result: { recovered: true, ...here }, publications };
  return { result: { recovered: false, reason: 'epoch_changed', ...here }, publications };
}

/**
 * Subscribe positions, recovery and history pages over the history store.
 *
 * The contract a subscribe reply keeps: after a reply that reports position
 * P, the connection receives every publication of that epoch with offset > P
 * exactly once, in order, and none with offset <= P. With a store read
 * synchronously (memory) this holds because subscribing, reading and
 * answering happen in one turn. A shared store is read asynchronously, on
 * another connection than the one that delivers publications: live
 * publications for the topic are held back for this connection from the
 * moment it subscribed (`Session.holdLive`), the store is read, a round trip
 * on the broker's subscriber link makes sure every publication up to the
 * read's position has arrived (and the node's live stream has no hole before
 * it, see LiveStreams.settle), and then the held ones the read already
 * covers are dropped by offset (`merge`).
 */
export class Recovery {
  constructor(private readonly options: RecoveryOptions) {}

  /** A page of a topic's history; see `Herald.historyOf`. */
  async page(topic: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    const problem = this.options.topicProblem(topic);
    if (problem) throw new HeraldError('invalid_topic', problem);
    const rule = ruleFor(this.options.config.history, topic);
    if (!rule) throw new HeraldError('not_found', `no history is kept for topic ${topic}`);
    const limit = Math.min(options.limit ?? rule.size, rule.size);
    const read = await this.options.history.read(topic, rule, { after: options.since?.offset, limit, reverse: options.reverse });
    const refused = options.since ? continuationProblem(options.since, read.position) : null;
    if (refused) throw new HeraldError('bad_request', refused);
    return {
      topic,
      offset: read.position.offset,
      epoch: read.position.epoch,
      publications: read.entries.map((entry) => ({
        offset: entry.offset,
        time: entry.time,
        message: JSON.parse(entry.payload) as unknown,
        ...(entry.lhttp ? { lhttp: { command: entry.lhttp.command, headers: Object.fromEntries(entry.lhttp.headers) } } : {}),
        ...(entry.event !== undefined ? { event: entry.event } : {}),
        ...(entry.tags !== undefined ? { tags: entry.tags } : {}),
      })),
    };
  }

  /**
   * The answer to a subscribe to one topic, with or without `since`: waits
   * until the broker carries the topic here, then answers through `respond`
   * with the reply's fields (for a topic with history: its position, and with
   * `since` whether the missed publications follow) and the frames to send
   * right after the reply, in order, before any newer publication. Nothing
   * is answered once the connection left the topic or closed.
   */
  subscribe(session: Session, topic: string, since: Position | undefined, respond: SubscribeAnswer): void | Promise<void> {
    const { config, history } = this.options;
    const rule = ruleFor(config.history, topic);
    const answering = (): boolean => session.state === 'open' && session.topics.has(topic);
    // A filtered subscription gets the replayed and held publications its filter passes; its reply's position is the topic's all the same.
    const filter = this.options.filterOf?.(session, topic);
    const encode = (publications: readonly Publication[]): Buffer[] => {
      const passed = filter ? publications.filter((publication) => filter(publication.tags)) : publications;
      if (passed.length < publications.length) this.options.filteredOut?.(publications.length - passed.length);
      return passed.map((publication) => session.codec.publication(publication));
    };
    // Cache mode for a filtered subscription: the latest value its filter passes, not the topic's latest, and only held ones it passes stand for it.
    const passing = (publications: readonly Publication[]): Publication[] => (filter ? publications.filter((publication) => filter(publication.tags)) : [...publications]);
    if (!rule || !history.appendPublishes) {
      const ready = this.options.whenCarried([topic]);
      // While the broker confirms the subscription, this node's own publications of the topic may already
      // reach the connection: they are held, and follow the reply only where the read does not cover them.
      const held = ready && rule ? session.holdLive(topic) : null;
      const answer = (): void => {
        if (held) session.releaseLive(topic, held);
        if (!answering()) return;
        if (!rule) return respond(since ? { recovered: false, reason: 'history_off' } : undefined, []);
        // A store holding only this process's part of the topic vouches for no replay: the recovery answers not_shared.
        const partial = since !== undefined && this.options.vouches?.() === false;
        const from = partial ? undefined : since;
        const read = history.read(topic, rule, { after: since?.offset, limit: from && !rule.cache ? rule.size : 0 });
        if (read instanceof Promise) throw new Error('a history store that is not shared must read synchronously');
        const here = { offset: read.position.offset, epoch: read.position.epoch };
        const notShared: RecoveryResult = { recovered: false, reason: 'not_shared', ...here };
        if (rule.cache) {
          // The latest value this process saw, which another node's may have overtaken: not vouched for as the current one.
          const cached = mergeCached(since, this.latestPassing(topic, rule, filter), read.position, passing(held ?? []));
          return respond(partial ? notShared : cached.result, encode(cached.publications));
        }
        // Without a position to recover from, merge from the read position itself: nothing is replayed, the held ones it does not cover follow.
        const merged = merge(topic, from ?? read.position, read, held ?? []);
        respond(partial ? notShared : from ? merged.result : here, encode(merged.publications));
      };
      // Subscribed, read and answered in one turn (memory store): nothing new can come between.
      if (!ready) return answer();
      return ready.then(answer, (err: unknown) => {
        if (held) session.releaseLive(topic, held);
        throw err;
      });
    }
    const held = session.holdLive(topic);
    let read: HistoryRead;
    return Promise.resolve(this.options.whenCarried([topic]))
      // Cache mode reads the newest entry only (the topic's latest value); for a filtered subscription the newest entries the rule keeps, to find the latest its filter passes.
      .then(() => readRetrying(() => history.read(topic, rule, rule.cache ? { limit: filter ? rule.size : 1, reverse: true } : { after: since?.offset, limit: since ? rule.size : 0 }), SUBSCRIBE_READ_RETRY))
      .then((done) => {
        read = done;
        return this.options.broker.caughtUp?.(topic);
      })
      .then(() => this.options.live.settle(topic, read.position))
      .then(() => this.fillHole(topic, rule, read.position, held))
      .then(
        () => {
          session.releaseLive(topic, held);
          if (!answering()) return;
          if (rule.cache) {
            // Newest first: the first entry the filter passes (any, without a filter).
            const newest = filter ? read.entries.find((entry) => filter(entry.tags)) : read.entries[0];
            const latest = newest && toPublication(topic, newest, read.position.epoch);
            const cached = mergeCached(since, latest, read.position, passing(held));
            return respond(cached.result, encode(cached.publications));
          }
          if (!since) {
            const { offset, epoch } = read.position;
            return respond({ offset, epoch }, encode(held.filter((p) => p.epoch !== epoch || p.offset === undefined || p.offset > offset)));
          }
          const merged = merge(topic, since, read, held);
          respond(merged.result, encode(merged.publications));
        },
        (err: unknown) => {
          session.releaseLive(topic, held);
          if (!answering()) return;
          // History unreachable: the subscription stands, nothing can be replayed, no position is promised.
          this.options.log.warn({ topic, err: (err as Error).message }, 'history read for a subscribe failed');
          respond(since ? { recovered: false, reason: 'unavailable' } : undefined, encode(held));
        },
      );
  }

  /**
   * The latest value of a cache-mode topic for a subscription on a store
   * that is not shared: the latest seen here (LatestValues) when the
   * subscription's filter passes it (or it has none); otherwise, when the
   * rule keeps more than one entry, the newest entry of the memory history
   * the filter passes (this node's history: what other nodes published is
   * only in LatestValues). A size-1 topic serves a filtered subscription only
   * when its latest value passes.
   */
  private latestPassing(topic: string, rule: HistoryRule, filter: ((tags: Publication['tags']) => boolean) | undefined): Publication | undefined {
    const latest = this.options.latest.get(topic, rule);
    if (!filter || (latest && filter(latest.tags))) return latest;
    if (rule.size <= 1) return undefined;
    const read = this.options.history.read(topic, rule, { limit: rule.size, reverse: true });
    if (read instanceof Promise) throw new Error('a history store that is not shared must read synchronously');
    const entry = read.entries.find((candidate) => filter(candidate.tags));
    return entry && toPublication(topic, entry, read.position.epoch);
  }

  /**
   * The node's live stream of a topic may have started after the position a
   * connection read (the topic opened here while its publications were
   * already under way): what lies between that position and the first held
   * publication is read from the store and put in front of the held ones.
   * A position of {0, ""} (the topic had no publication when it was read)
   * continues the first held publication's epoch from its start.
   */
  private async fillHole(topic: string, rule: HistoryRule, position: Position, held: Publication[]): Promise<void> {
    const unpublished = position.offset === 0 && position.epoch === '';
    const first = held.find((publication) => publication.offset !== undefined && (unpublished || (publication.epoch === position.epoch && publication.offset > position.offset)));
    if (!first) return;
    const epoch = first.epoch!;
    const after = unpublished ? 0 : position.offset;
    if (first.offset! === after + 1) return;
    const read = await readRetrying(() => this.options.history.read(topic, rule, { after, limit: first.offset! - after - 1 }), SUBSCRIBE_READ_RETRY);
    if (read.position.epoch !== epoch) return;
    const missing = read.entries
      .filter((entry) => entry.offset < first.offset!)
      .map((entry) => toPublication(topic, entry, epoch));
    held.splice(held.indexOf(first), 0, ...missing);
  }
}

/** A stored entry of `topic` as the publication it was, in `epoch`. */
function toPublication(topic: string, entry: HistoryEntry, epoch: string): Publication {
  const publication: Publication = { topic, payload: entry.payload, ...(entry.lhttp ? { lhttp: entry.lhttp } : {}), offset: entry.offset, epoch };
  if (entry.tags !== undefined) publication.tags = entry.tags;
  if (entry.event !== undefined) publication.event = entry.event;
  return publication;
}

/** Runs `read` until it succeeds or `within` ms have passed, every 200 ms. */
async function readRetrying<T>(read: () => T | Promise<T>, within: number): Promise<T> {
  const until = Date.now() + within;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      if (Date.now() + 200 > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
