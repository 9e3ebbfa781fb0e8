import type { LhttpPublication, Publication } from '../../src/broker/broker.js';
import type { HistoryEntry, HistoryRead, HistoryRule, HistoryStore, Position } from '../../src/history/history.js';

/**
 * A shared history store without Redis, for unit tests: `appendPublishes`
 * is true, `append` and `read` answer asynchronously, and `append` hands the
 * publication to `published` (what the Redis script's PUBLISH would carry to
 * every node). One epoch for every topic. A test can hold reads (`holdReads`,
 * then `releaseReads`), make the next reads fail (`failReads`), and drop old
 * entries (`forget`), as Redis trimming would.
 */
export class FakeSharedStore implements HistoryStore {
  readonly appendPublishes = true;
  epoch = 'E1';
  readonly appends: Array<{ topic: string; payload: string; lhttp: LhttpPublication | undefined; idempotency: { key: string; window: number } | undefined }> = [];
  readonly reads: Array<{ topic: string; after: number | undefined; limit: number; reverse: boolean | undefined }> = [];
  /** Publications the store's append published, in order. */
  readonly published: Publication[] = [];
  /** Reads that fail (with "store unreachable") before one succeeds. */
  failReads = 0;
  private readonly topics = new Map<string, { offset: number; entries: HistoryEntry[] }>();
  private readonly keys = new Map<string, Position>();
  private held: Array<() => void> | null = null;

  private topic(name: string): { offset: number; entries: HistoryEntry[] } {
    let topic = this.topics.get(name);
    if (!topic) this.topics.set(name, (topic = { offset: 0, entries: [] }));
    return topic;
  }

  /** Appends without publishing (what other nodes published before a test looks). */
  seed(name: string, count: number): void {
    const topic = this.topic(name);
    for (let i = 0; i < count; i++) {
      topic.offset++;
      topic.entries.push({ offset: topic.offset, payload: `"${name}#${topic.offset}"`, time: 1000 + topic.offset });
    }
  }

  /** The publication the store holds at `offset` (as it would reach a node). */
  publication(name: string, offset: number): Publication {
    return { topic: name, payload: `"${name}#${offset}"`, offset, epoch: this.epoch };
  }

  /** Drops the entries up to `offset` (trimmed by size or ttl). */
  forget(name: string, offset: number): void {
    const topic = this.topic(name);
    topic.entries = topic.entries.filter((entry) => entry.offset > offset);
  }

  async append(name: string, _rule: HistoryRule, payload: string, lhttp: LhttpPublication | undefined, idempotency?: { key: string; window: number }): Promise<Position> {
    await Promise.resolve();
    this.appends.push({ topic: name, payload, lhttp, idempotency });
    const id = idempotency ? `${name}\n${idempotency.key}` : undefined;
    const known = id === undefined ? undefined : this.keys.get(id);
    if (known) return known;
    const topic = this.topic(name);
    topic.offset++;
    topic.entries.push({ offset: topic.offset, payload, lhttp, time: Date.now() });
    const position = { offset: topic.offset, epoch: this.epoch };
    if (id !== undefined) this.keys.set(id, position);
    this.published.push({ topic: name, payload, ...(lhttp ? { lhttp } : {}), offset: topic.offset, epoch: this.epoch });
    return position;
  }

  async read(name: string, _rule: HistoryRule, options: { after?: number; limit: number; reverse?: boolean }): Promise<HistoryRead> {
    this.reads.push({ topic: name, after: options.after, limit: options.limit, reverse: options.reverse });
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    else await Promise.resolve();
    if (this.failReads > 0) {
      this.failReads--;
      throw new Error('store unreachable');
    }
    const topic = this.topic(name);
    let entries = options.after === undefined ? topic.entries : topic.entries.filter((entry) => entry.offset > options.after!);
    entries = options.reverse ? entries.slice(-options.limit).reverse() : entries.slice(0, options.limit);
    return { entries, position: { offset: topic.offset, epoch: this.epoch }, oldest: topic.entries[0]?.offset ?? topic.offset + 1 };
  }

  /** Reads from now on wait for `releaseReads`. */
  holdReads(): void {
    this.held ??= [];
  }

  /** Lets the waiting reads (and the next ones) through. */
  releaseReads(): void {
    const waiting = this.held ?? [];
    this.held = null;
    for (const resolve of waiting) resolve();
  }
}
