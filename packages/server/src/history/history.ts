import { createHmac, randomBytes } from 'node:crypto';
import type { LhttpPublication, Tags } from '../publication.js';
import type { HeraldConfig } from '../config.js';

export type HistoryRule = HeraldConfig['history'][number];

export interface Position {
  offset: number;
  epoch: string;
}

/** One stored publication. */
export interface HistoryEntry {
  offset: number;
  payload: string;
  lhttp?: LhttpPublication | undefined;
  time: number;
  /** The publication's tags and event name, when it had them (`Publication.tags`, `Publication.event`). */
  tags?: Tags | undefined;
  event?: string | undefined;
}

/** What a publication carries beyond its message that history keeps with it. */
export interface PublicationMeta {
  tags?: Tags | undefined;
  event?: string | undefined;
}

export interface HistoryRead {
  entries: HistoryEntry[];
  /** The topic's latest position (offset 0: nothing published yet). */
  position: Position;
  /** The oldest offset still kept (position.offset + 1 when nothing is kept). */
  oldest: number;
}

export type RecoveryFailure = 'history_off' | 'epoch_changed' | 'too_far_behind' | 'not_shared';

/**
 * Whether reading after `since` continues the topic's current history
 * (`current`, its latest position) exactly: null when it does, else why not.
 * `{offset: 0, epoch: ""}` (what a topic nobody published to reads as in the
 * Redis store) means "seen nothing" and continues any epoch from its start.
 * An offset ahead of the current one is one this epoch never had: refused
 * like another epoch, never answered with an empty page that would later
 * skip the offsets in between.
 */
export function continuationProblem(since: Position, current: Position): string | null {
  if (since.offset === 0 && since.epoch === '') return null;
  if (since.epoch !== current.epoch) return `epoch ${since.epoch} is not the topic's current epoch (${current.epoch}): history since that position is lost`;
  if (since.offset > current.offset) return `offset ${since.offset} is ahead of the topic's latest offset (${current.offset}) in epoch ${current.epoch}: this epoch never had it`;
  return null;
}

/**
 * Where a topic's publications are kept for recovery. Contract:
 * - `append` gives each publication of a topic the next offset (previous + 1,
 *   starting at 1) atomically, so two publishers never share or skip one;
 * - the epoch changes whenever the stored history is lost (a node restarting
 *   for the memory store, a key evicted for Redis), so a client's old position
 *   is never mistaken for a current one;
 * - `appendPublishes`: when true, the store is shared by the nodes and its
 *   `append` also publishes the publication to every node, this one included,
 *   in offset order (one Redis script appends and publishes): the publisher
 *   then neither delivers locally nor calls the broker, and each node's live
 *   stream of the topic comes back through the broker (history/catch-up.ts).
 *   Its `append` and `read` may answer asynchronously. When false, the store
 *   is this process's own: the publisher delivers locally and then publishes
 *   through the broker, and `append` and `read` answer synchronously (a
 *   recovery relies on subscribing, reading and answering in one turn).
 */
export interface HistoryStore {
  readonly appendPublishes: boolean;
  /**
   * `idempotency`: a shared store remembers the key for `window` ms and answers a repeat with the first position, appending nothing.
   * `exclude`: a connection the publication that a publishing store sends out must not reach (it is not stored).
   * `meta`: the publication's tags and event name, stored with it (and sent out with it by a publishing store).
   */
  append(
    topic: string,
    rule: HistoryRule,
    payload: string,
    lhttp: LhttpPublication | undefined,
    idempotency?: { key: string; window: number },
    exclude?: string,
    meta?: PublicationMeta,
  ): Position | Promise<Position>;
  /** Entries after `after` (oldest first), at most `limit`; or the newest `limit` when reverse. */
  read(topic: string, rule: HistoryRule, options: { after?: number; limit: number; reverse?: boolean }): HistoryRead | Promise<HistoryRead>;
}


interface TopicHistory {
  epoch: string;
  offset: number;
  entries: HistoryEntry[];
  bytes: number;
}

/**
 * History in this process's memory: a bounded list per topic (the rule's size
 * and TTL) and a bound on all topics' bytes, the oldest entries of the least
 * recently published topics going first. Its epochs are new for every
 * process: after a restart, every client learns that history was lost.
 */
export class MemoryHistory implements HistoryStore {
  readonly appendPublishes = false;
  /** Only topics that were published to: reading a topic creates nothing. */
  private readonly topics = new Map<string, TopicHistory>();
  /** New for every process, so that a restart gives every topic a new epoch. */
  private readonly epochKey = randomBytes(16);
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * A topic's epoch: the same whether it is read before its first publication
   * or after (a reader told offset 0 can recover from there), different in
   * every process. Derived, not stored, so that reading an unknown topic keeps nothing.
   */
  private epochOf(name: string): string {
    return createHmac('sha256', this.epochKey).update(name).digest('hex').slice(0, 12);
  }

  append(name: string, rule: HistoryRule, payload: string, lhttp: LhttpPublication | undefined, _idempotency?: unknown, _exclude?: string, meta?: PublicationMeta): Position {
    const history = this.topics.get(name) ?? { epoch: this.epochOf(name), offset: 0, entries: [], bytes: 0 };
    // Most recently published last: the eviction order.
    this.topics.delete(name);
    this.topics.set(name, history);
    const entry: HistoryEntry = { offset: ++history.offset, payload, lhttp, time: Date.now() };
    if (meta?.tags !== undefined) entry.tags = meta.tags;
    if (meta?.event !== undefined) entry.event = meta.event;
    const size = entrySize(entry);
    history.entries.push(entry);
    history.bytes += size;
    this.bytes += size;
    this.trim(history, rule);
    this.evict();
    return { offset: entry.offset, epoch: history.epoch };
  }

  read(name: string, rule: HistoryRule, options: { after?: number; limit: number; reverse?: boolean }): HistoryRead {
    const history = this.topics.get(name);
    if (!history) return { entries: [], position: { offset: 0, epoch: this.epochOf(name) }, oldest: 1 };
    this.trim(history, rule);
    const position = { offset: history.offset, epoch: history.epoch };
    let entries = history.entries;
    if (options.after !== undefined) {
      const first = entries.findIndex((entry) => entry.offset > options.after!);
      entries = first === -1 ? [] : entries.slice(first);
    }
    entries = options.reverse ? entries.slice(-options.limit).reverse() : entries.slice(0, options.limit);
    return { entries, position, oldest: history.entries[0]?.offset ?? history.offset + 1 };
  }

  private trim(history: TopicHistory, rule: HistoryRule): void {
    const expired = Date.now() - rule.ttl;
    let drop = 0;
    while (drop < history.entries.length && (history.entries.length - drop > rule.size || history.entries[drop]!.time < expired)) drop++;
    if (drop > 0) this.drop(history, drop);
  }

  private drop(history: TopicHistory, count: number): void {
    for (const entry of history.entries.splice(0, count)) {
      const size = entrySize(entry);
      history.bytes -= size;
      this.bytes -= size;
    }
  }

  private evict(): void {
    for (const history of this.topics.values()) {
      if (this.bytes <= this.maxBytes) return;
      while (this.bytes > this.maxBytes && history.entries.length > 0) this.drop(history, 1);
    }
  }
}

/** An entry's bytes as the memory store counts them (payload, LHTTP text, metadata, and 64 for the rest). */
function entrySize(entry: HistoryEntry): number {
  let size = entry.payload.length + (entry.lhttp?.text.length ?? 0) + 64;
  if (entry.event !== undefined) size += entry.event.length;
  if (entry.tags !== undefined) for (const name in entry.tags) size += name.length + entry.tags[name]!.length + 8;
  return size;
}
