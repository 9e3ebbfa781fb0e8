import type { Publication } from '../broker/broker.js';
import type { GapReason } from '../protocols/codec.js';
import { continuationProblem, type HistoryRead, type Position } from './history.js';

/** Why a topic's subscribers are told that they may have missed publications (the `gap` frame's `reason`). */
export type { GapReason };

/** What a node's live streams need from the gateway. */
export interface LiveStreamsHost {
  /** Hands a publication to this node's subscribers of its topic (the hub). */
  deliver(publication: Publication): void;
  /** Reads the topic's shared history: entries after `after` (all kept ones when undefined). */
  read(topic: string, after: number | undefined): Promise<HistoryRead>;
  /** Resolves once the broker handed this node every publication on `topic` it accepted before the call. */
  caughtUp(topic: string): Promise<void> | undefined;
  /** Tells the topic's subscribers that they may have missed publications. */
  gap(topic: string, reason: GapReason): void;
  warn(detail: object, message: string): void;
}

interface Stream {
  /** The last position handed to the hub; no epoch until the first publication or subscribe read. */
  epoch: string | undefined;
  offset: number;
  /** Live publications held back while the stream catches up from history; null when it does not. */
  held: Publication[] | null;
  /** Another catch-up was asked for while one ran (the subscriber link dropped again). */
  again: boolean;
  /** Called when the running catch-up ends. */
  waiters: Array<() => void>;
}

/** How long a catch-up keeps retrying a history store that does not answer before it gives up with a gap. */
const RETRY_FOR = 10_000;
const RETRY_EVERY = 200;

/**
 * Keeps each topic with shared history (the Redis store) gap-free on this
 * node. Every node receives a topic's publications from Redis in offset order
 * (history/redis-history.ts); this tracks the last offset handed to the hub
 * per topic and, when the live stream skips offsets (its subscriber link
 * dropped) or the broker reports an interruption, holds the topic's live
 * publications back, reads what is missing from the store, waits for the
 * subscriber link to catch up, and hands the hub the missing publications and
 * then the held ones, in order, each once. The work is per publication and
 * topic, never per subscriber.
 */
export class LiveStreams {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly host: LiveStreamsHost) {}

  /** The first local subscriber arrived: the topic is followed from now on. */
  open(topic: string): void {
    if (!this.streams.has(topic)) this.streams.set(topic, { epoch: undefined, offset: 0, held: null, again: false, waiters: [] });
  }

  /** The last local subscriber left. */
  close(topic: string): void {
    const stream = this.streams.get(topic);
    if (!stream) return;
    this.streams.delete(topic);
    for (const wake of stream.waiters.splice(0)) wake();
  }

  /** Whether the topic is followed here (it has shared history and local subscribers). */
  follows(topic: string): boolean {
    return this.streams.has(topic);
  }

  /**
   * Where the topic's stream stands on this node: the last position handed
   * to the hub (no epoch before the first publication or subscribe read), and
   * whether a catch-up is running; undefined when the topic is not followed.
   */
  position(topic: string): { epoch: string | undefined; offset: number; catchingUp: boolean } | undefined {
    const stream = this.streams.get(topic);
    return stream && { epoch: stream.epoch, offset: stream.offset, catchingUp: stream.held !== null };
  }

  /** A live publication from the broker. */
  live(publication: Publication): void {
    const stream = this.streams.get(publication.topic);
    if (!stream || publication.offset === undefined) return this.host.deliver(publication);
    if (stream.held) {
      stream.held.push(publication);
      return;
    }
    this.accept(publication.topic, stream, publication);
  }

  private accept(topic: string, stream: Stream, publication: Publication): void {
    const offset = publication.offset!;
    if (stream.epoch !== undefined) {
      if (publication.epoch === stream.epoch) {
        if (offset <= stream.offset) return; // delivered already (by a catch-up)
        if (offset > stream.offset + 1) return this.catchUp(topic, stream, publication, false);
      } else if (offset > 1) {
        // A new epoch whose first publications did not arrive here.
        return this.catchUp(topic, stream, publication, false);
      }
    }
    stream.epoch = publication.epoch;
    stream.offset = offset;
    this.host.deliver(publication);
  }

  /** The broker's subscriber link was interrupted: catch every followed topic it carries up from history. */
  resumed(carries: ((topic: string) => boolean) | null): void {
    for (const [topic, stream] of this.streams) {
      if (carries === null || carries(topic)) this.catchUp(topic, stream, null, true);
    }
  }

  /**
   * A connection subscribed, read the topic at `position` and waited for the
   * subscriber link to catch up: every publication up to `position` has
   * reached this node's hub unless the stream missed some. Resolves once the
   * stream stands at or past `position` (catching it up first when it is
   * behind), or gave up trying.
   */
  settle(topic: string, position: Position): Promise<void> | undefined {
    const stream = this.streams.get(topic);
    if (!stream) return undefined;
    if (stream.held === null) {
      if (stream.epoch === undefined) {
        // Nothing arrived live since the topic opened here, and nothing up to `position` is still on its way.
        stream.epoch = position.epoch;
        stream.offset = position.offset;
        return undefined;
      }
      if (stream.epoch === position.epoch && stream.offset >= position.offset) return undefined;
      this.catchUp(topic, stream, null, false);
    }
    // A catch-up that ends with the stream still without an epoch (it had none to catch up from, or it gave
    // up) leaves it standing nowhere: then, as above, it stands at `position`, so that the next live
    // publication after a hole is caught up instead of taken as the first one (publications between
    // `position` and the subscriber link's resubscription never arrive live).
    return new Promise<void>((resolve) => stream.waiters.push(resolve)).then(() =>
      this.streams.get(topic) === stream && stream.epoch === undefined ? this.settle(topic, position) : undefined,
    );
  }

  private catchUp(topic: string, stream: Stream, first: Publication | null, resumed: boolean): void {
    if (stream.held) {
      if (first) stream.held.push(first);
      stream.again ||= resumed;
      return;
    }
    stream.held = first ? [first] : [];
    void this.run(topic, stream, resumed);
  }

  private async run(topic: string, stream: Stream, resumed: boolean): Promise<void> {
    let again = resumed;
    do {
      stream.again = false;
      try {
        await this.fill(topic, stream, again);
      } catch (err) {
        this.host.warn({ topic, err: (err as Error).message }, 'catch-up from history failed: subscribers told of a gap');
        this.host.gap(topic, 'unavailable');
        // Start afresh from whatever arrives next.
        stream.epoch = undefined;
      }
      again = stream.again;
    } while (again && this.streams.get(topic) === stream);
    this.release(topic, stream);
  }

  /** Reads what the stream is missing and hands it to the hub, in order. */
  private async fill(topic: string, stream: Stream, resumed: boolean): Promise<void> {
    // After a reconnection, one round trip confirms the resubscription first: what the read misses arrives live.
    if (resumed) await this.host.caughtUp(topic);
    if (stream.epoch === undefined) return;
    let read = await this.readRetrying(topic, stream.offset);
    if (read.position.epoch !== stream.epoch) {
      // A stream at {0, ""} stood where a topic nobody had published to reads: the first epoch continues it
      // from its start (the read above was after 0), as continuationProblem has it. Otherwise the stored history
      // was lost (Redis restarted without persistence, keys evicted): the old epoch's tail is gone.
      if (continuationProblem({ offset: stream.offset, epoch: stream.epoch }, read.position) !== null) {
        this.host.gap(topic, 'epoch_changed');
        read = await this.readRetrying(topic, undefined);
      }
      stream.epoch = read.position.epoch;
      stream.offset = 0;
    }
    // Everything published before the read is on its way on the subscriber link: wait for it (it is held).
    await this.host.caughtUp(topic);
    if (this.streams.get(topic) !== stream) return;
    if (read.oldest > stream.offset + 1) this.host.gap(topic, 'too_far_behind');
    const epoch = read.position.epoch;
    for (const entry of read.entries) {
      if (entry.offset <= stream.offset) continue;
      stream.offset = entry.offset;
      this.host.deliver({ topic, payload: entry.payload, ...(entry.lhttp ? { lhttp: entry.lhttp } : {}), offset: entry.offset, epoch });
    }
    stream.offset = Math.max(stream.offset, read.position.offset);
  }

  private async readRetrying(topic: string, after: number | undefined): Promise<HistoryRead> {
    const until = Date.now() + RETRY_FOR;
    for (;;) {
      try {
        return await this.host.read(topic, after);
      } catch (err) {
        if (Date.now() + RETRY_EVERY > until || !this.streams.has(topic)) throw err;
        await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY));
      }
    }
  }

  /** Hands the held live publications on (each through the gap check again), then wakes the waiters. */
  private release(topic: string, stream: Stream): void {
    const held = stream.held ?? [];
    stream.held = null;
    const followed = this.streams.get(topic) === stream;
    // accept() may start another catch-up (a new gap among the held ones): the rest is held for it.
    const heldAgain = (): Publication[] | null => stream.held;
    // Not followed any more (the last subscriber left meanwhile): whoever subscribes again reads for itself.
    if (!followed) held.length = 0;
    for (const publication of held) {
      const again = heldAgain();
      if (again) again.push(publication);
      else this.accept(topic, stream, publication);
    }
    if (heldAgain()) return; // a new gap among the held ones: its catch-up wakes the waiters
    for (const wake of stream.waiters.splice(0)) wake();
  }
}
