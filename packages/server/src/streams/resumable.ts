import { HeraldError } from '../errors.js';
import type { Herald, StreamPosition } from '../herald.js';
import { ruleFor } from '../topics.js';

/**
 * Resumable streams: a long answer (an LLM's tokens, a report being built)
 * streamed to one reader or many, each of whom may reload, change network or
 * open a second tab and continue at the exact chunk. The stream is nothing
 * but publications on a topic with history, so readers need no library (a
 * bare `EventSource` on `/sse`) and a backend in any language can write one
 * with `POST /api/publish`; this module is the small server-side writer.
 * Wire format and pattern: docs/transports.md, "Resumable streams".
 *
 * Each publication of a stream is one JSON message:
 *
 * ```
 * {"seq":1,"text":"Once"}                               a chunk: its text, and its place in the stream (1, 2, ...)
 * {"seq":3,"end":"done"}                                the end: seq - 1 chunks came before it
 * {"seq":3,"end":"error","reason":"model timed out"}    the end of a stream that failed
 * ```
 *
 * with `"stream":"<id>"` first in every message of a stream opened with an
 * `id` (several streams on one shared topic). A reader resumes from the
 * publication offset of the last message it handled (SSE `lastEventId`, the
 * SDK's `since`): the offsets, not `seq`, are the resume positions; `seq`
 * lets a reader check that it has every chunk.
 */

/** A chunk of a resumable stream, as published. */
export interface StreamChunk {
  /** Present when the stream was opened with an `id` (a shared topic). */
  stream?: string;
  /** 1 for the first chunk, then 2, 3, ...: no gap within a stream. */
  seq: number;
  text: string;
}

/** The last message of a resumable stream, as published. */
export interface StreamEnd {
  stream?: string;
  /** One more than the number of chunks before it. */
  seq: number;
  end: 'done' | 'error';
  /** Why the stream failed (with `end: "error"`). */
  reason?: string;
}

export interface ResumableStreamOptions {
  /**
   * For a topic shared by several streams (e.g. `answers:<user>`): this
   * stream's id, put in every message as `stream` so that readers pick
   * theirs. Without it the topic must be one stream's own (`answer:<id>`)
   * and must not have been published to before.
   */
  id?: string;
}

/**
 * The writer of one stream. Chunks are published in the order `append` is
 * called, whether or not each call is awaited; `end` and `fail` resolve once
 * everything before them is published.
 */
export interface ResumableStream {
  readonly topic: string;
  /** The `id` it was opened with, if any. */
  readonly id: string | undefined;
  /**
   * Where a reader starts to read the whole stream: the topic's position
   * before the stream's first message. Give it to the page: as SSE
   * `?lastEventId=<offset>.<epoch>`, or the SDK's `subscribe(topic, { since })`.
   * `{offset: 0, epoch: ""}` (SSE `0.`) on a topic nothing was published to.
   */
  readonly from: StreamPosition;
  /**
   * The most chunks this stream may carry: its history rule's `size` less
   * one for the end, so that a reader can always read it from its start.
   */
  readonly capacity: number;
  /** Chunks appended so far (the last `seq` given). */
  readonly chunks: number;
  /** True once `end` or `fail` was called (and `end` did not fail). */
  readonly ended: boolean;
  /**
   * Publishes the next chunk. Resolves with its position (offset, epoch).
   * Rejects with `too_large` past `capacity` chunks (nothing published) or
   * for a chunk over `limits.maxMessageBytes`, `bad_request` for a text that
   * is not a string, `unavailable` when the broker or the history store
   * failed; `bad_request` after `end` or `fail`. Once a chunk is lost so,
   * the stream cannot go on without a hole: later `append` and `end` calls
   * reject with the same code, and `fail` is what is left, to tell the
   * readers. It need not be awaited: a rejection nobody awaits is not an
   * unhandled one, and shows in `end`'s.
   */
  append(text: string): Promise<StreamPosition>;
  /**
   * Publishes the end marker `{"seq":n,"end":"done"}` after every chunk.
   * Rejects as `append` does; an end that was refused or failed leaves the
   * stream open for `fail`.
   */
  end(): Promise<StreamPosition>;
  /**
   * Publishes `{"seq":n,"end":"error","reason":...}` (the reason cut to 500
   * characters) after whatever is still being published, even when a chunk
   * failed. Rejects with `bad_request` after `end`, or when the publish fails.
   */
  fail(reason: string): Promise<StreamPosition>;
}

/** The longest `reason` an error end carries. */
const MAX_REASON = 500;

/**
 * Opens a resumable stream on `topic`, which must be covered by a history
 * rule (`history: [{ pattern: "answer:*", size: 2000, ttl: "10m" }]`): its
 * `size` bounds the chunks of one stream (`capacity`), its `ttl` how long a
 * reader may come back. Reads the topic's position once (`from`).
 *
 * Rejects with `invalid_topic` for a name Herald refuses, `bad_request` for a
 * topic without history, or, without `options.id`, a topic already
 * published to (a per-answer topic carries one stream: a reader from its
 * start would read the old one too), and `unavailable` when the history
 * store cannot be read.
 */
export async function openResumableStream(herald: Herald, topic: string, options: ResumableStreamOptions = {}): Promise<ResumableStream> {
  const problem = herald.topicProblem(topic);
  if (problem) throw new HeraldError('invalid_topic', problem);
  const { id } = options;
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 200)) throw new HeraldError('bad_request', 'a stream id is a string of 1 to 200 characters');
  const rule = ruleFor(herald.config.history, topic);
  if (!rule) {
    const pattern = topic.includes(':') ? `${topic.slice(0, topic.indexOf(':') + 1)}*` : topic;
    throw new HeraldError(
      'bad_request',
      `topic ${topic} keeps no history, so a reader could not resume a stream on it: add a history rule that covers it (e.g. history: [{ pattern: "${pattern}", size: 2000, ttl: 10m }])`,
    );
  }
  if (rule.size < 2) throw new HeraldError('bad_request', `topic ${topic} keeps ${rule.size} publication (history rule ${rule.pattern}): a stream needs room for a chunk and its end`);
  const page = await herald.historyOf(topic, { limit: 0 });
  if (id === undefined && page.offset > 0) {
    throw new HeraldError(
      'bad_request',
      `topic ${topic} was already published to (offset ${page.offset}): a stream without an id needs a topic of its own (a new answer:<id>), or pass an id to share the topic`,
    );
  }
  return new Writer(herald, topic, id, { offset: page.offset, epoch: page.epoch }, rule.size - 1, `${rule.pattern} keeps ${rule.size} publications per topic`);
}

class Writer implements ResumableStream {
  chunks = 0;
  ended = false;
  /** The first chunk lost (refused, or its publish failed): the stream has a hole from there on. */
  private broken: HeraldError | null = null;
  /** The last publish in flight: each waits for the one before it. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly herald: Herald,
    readonly topic: string,
    readonly id: string | undefined,
    readonly from: StreamPosition,
    readonly capacity: number,
    private readonly ruleText: string,
  ) {}

  append(text: string): Promise<StreamPosition> {
    if (this.ended) return refused(this.over());
    if (typeof text !== 'string') return this.lose(new HeraldError('bad_request', `a chunk is a string, not ${text === null ? 'null' : typeof text}`));
    if (this.chunks >= this.capacity) {
      return this.lose(
        new HeraldError(
          'too_large',
          `the stream on ${this.topic} is full: ${this.capacity} chunks (its history rule ${this.ruleText}, one kept for the end); a longer stream could not be read from its start: raise the rule's size, or send longer chunks`,
        ),
      );
    }
    const seq = ++this.chunks;
    return this.publish({ ...this.tag(), seq, text }, false);
  }

  end(): Promise<StreamPosition> {
    if (this.ended) return refused(this.over());
    this.ended = true;
    const ended = this.publish({ ...this.tag(), seq: this.chunks + 1, end: 'done' }, false);
    // An end that was not published leaves fail() to tell the readers.
    ended.catch(() => (this.ended = false));
    return ended;
  }

  fail(reason: string): Promise<StreamPosition> {
    if (this.ended) return refused(this.over());
    this.ended = true;
    const text = String(reason).slice(0, MAX_REASON);
    return this.publish({ ...this.tag(), seq: this.chunks + 1, end: 'error', reason: text }, true);
  }

  private tag(): { stream?: string } {
    return this.id === undefined ? {} : { stream: this.id };
  }

  /**
   * A chunk refused before its publish is lost as surely as one the broker
   * refused: the stream breaks there, after the chunks appended before it.
   */
  private lose(err: HeraldError): Promise<never> {
    this.tail = this.tail.then(() => {
      this.broken ??= err;
    });
    return refused(err);
  }

  private over(): HeraldError {
    return new HeraldError('bad_request', `the stream on ${this.topic} has ended: nothing more can be published to it`);
  }

  /** Publishes after everything before it; after a failed one, only an error end (`evenBroken`) still goes out. */
  private publish(message: StreamChunk | StreamEnd, evenBroken: boolean): Promise<StreamPosition> {
    const published = this.tail.then(async () => {
      if (this.broken && !evenBroken) throw new HeraldError(this.broken.code, `the stream on ${this.topic} lost a chunk (${this.broken.message}): only fail() can follow`);
      try {
        const result = await this.herald.publish(this.topic, message, 'library');
        return { offset: result.offset!, epoch: result.epoch! };
      } catch (err) {
        this.broken ??= err instanceof HeraldError ? err : new HeraldError('unavailable', (err as Error).message);
        throw err;
      }
    });
    // Also marks `published` handled: an append nobody awaits does not end the process when it fails.
    this.tail = published.catch(() => {});
    return published;
  }
}

/**
 * A rejected promise that counts as handled: `append` may be called without
 * awaiting it (a token loop), and its failure then shows in `end`'s.
 */
function refused(err: HeraldError): Promise<never> {
  const rejected = Promise.reject(err);
  rejected.catch(() => {});
  return rejected;
}
