import type { Broker, LhttpPublication, Publication, PublishResult } from '../broker/broker.js';
import { eventProblem, tagsProblem, type Tags } from '../publication.js';
import { exclusionProblem } from '../broker/envelope.js';
import type { HeraldConfig } from '../config.js';
import { HeraldError, InDoubtError } from '../errors.js';
import type { HistoryStore, Position } from '../history/history.js';
import type { LatestValues } from '../history/latest.js';
import { ruleFor } from '../topics.js';
import type { Hub } from '../hub/hub.js';
import type { Metrics, PublicationSource } from '../metrics/metrics.js';
import { IdempotencyCache } from '../util/idempotency.js';
import { failureFor } from '../util/in-doubt.js';
import { toJson } from '../util/json.js';
import type { BatchItem, PublishOptions } from '../herald.js';

/** What a publication may carry beyond its topic and message: an exclusion, tags, an event name. */
interface Meta {
  exclude?: string | undefined;
  tags?: Tags | undefined;
  event?: string | undefined;
}

/** The metadata fields that are set, and only those (a Publication holds no undefined field). */
function metaOf(meta: Meta): { exclude?: string; tags?: Tags; event?: string } {
  const set: { exclude?: string; tags?: Tags; event?: string } = {};
  if (meta.exclude !== undefined) set.exclude = meta.exclude;
  // A copy: the caller's object may change after the publish; history keeps this one.
  if (meta.tags !== undefined) set.tags = Object.freeze({ ...meta.tags });
  if (meta.event !== undefined) set.event = meta.event;
  return set;
}

export interface PublisherOptions {
  readonly config: HeraldConfig;
  readonly broker: Broker;
  readonly history: HistoryStore;
  readonly hub: Hub;
  readonly metrics: Metrics;
  /** The latest publication of each cache-mode topic seen here, kept when the history store is not shared (history/latest.ts). */
  readonly latest: LatestValues;
  /** Herald's topic rule plus the broker's namespace: why a topic is refused, or null. */
  topicProblem(topic: string): string | null;
  /** True once the node is shutting down: publications to `topic` are refused with `unavailable` (all but the lifecycle events topic, which takes the shutdown's events). */
  closing(topic: string): boolean;
}

/**
 * The publication path, the one every publication takes whatever its source
 * (client command, HTTP API, CLI, library, LHTTP, raw endpoint):
 *
 *   check the topic and the message (JSON text, size), encode it once
 *   → idempotency window (a retry with the same key answers the first result;
 *     one whose first attempt is in doubt joins it, see IdempotencyCache)
 *   → history append, when the topic keeps history
 *   → a shared store (Redis) appends and delivers to every node itself, in
 *     offset order; otherwise this node's subscribers get it first (local
 *     delivery keeps working while the broker is down) and then the broker
 *     carries it to the other nodes.
 *
 * A publication from another node comes back in through `receive`. The
 * answer tells the truth: `unavailable` when the broker did not take it,
 * saying how many connections of this node got it anyway.
 */
export class Publisher {
  /** Publish results by topic and idempotency key, bounded by idempotencyWindow, idempotencyMaxKeys and idempotencyMaxBytes. */
  readonly idempotency: IdempotencyCache<PublishResult>;
  /** Publications made on this node. */
  publications = 0;
  /** Whether any history rule is in cache mode (else nothing is kept as a topic's latest value). */
  private readonly cacheRules: boolean;

  constructor(private readonly options: PublisherOptions) {
    const { config } = options;
    this.cacheRules = config.history.some((rule) => rule.cache);
    this.idempotency = new IdempotencyCache({ window: config.idempotencyWindow, maxKeys: config.idempotencyMaxKeys, maxBytes: config.idempotencyMaxBytes, wait: config.publishTimeout });
  }

  /** One publication of any JSON value; see `Herald.publish`. */
  publish(topic: string, message: unknown, source: PublicationSource = 'library', options: PublishOptions = {}): Promise<PublishResult> {
    const key = options.idempotencyKey;
    if (key === undefined) return this.publishNow(topic, message, source, undefined, options);
    return this.idempotency.remember(topic, key, () => this.publishNow(topic, message, source, key, options), this.keepsDoubt(topic));
  }

  /**
   * Whether this node must keep the key of a publish in doubt on `topic`:
   * not when the shared store keeps the key itself (topics with Redis
   * history), whose script answers a retry with the first result whenever
   * it ran, on any node; a retry there runs the script again.
   */
  private keepsDoubt(topic: string): boolean {
    return !(this.options.history.appendPublishes && ruleFor(this.options.config.history, topic));
  }

  /** Several publications, every item checked before any is published; see `Herald.publishMany`. */
  async publishMany(items: ReadonlyArray<BatchItem>, source: PublicationSource = 'library'): Promise<PublishResult[]> {
    const label = (index: number): string => items[index]!.label ?? (items.length > 1 ? `item ${index}` : '');
    // Consecutive items carrying the same message (one HTTP item to several topics) share its encoding.
    let last: { message: unknown; payload: string } | null = null;
    const checked = items.map((item, index) => {
      const where = label(index) ? `${label(index)}: ` : '';
      try {
        this.check(item.topic, item);
        const same = last !== null && last.message === item.message && typeof item.message === 'object' && item.message !== null;
        const payload = same ? last!.payload : this.encodePublication(item.message);
        last = { message: item.message, payload };
        return { topic: item.topic, payload, key: item.idempotencyKey, ...metaOf(item) };
      } catch (err) {
        if (err instanceof HeraldError) throw new HeraldError(err.code, `${where}${err.message}`, { cause: err });
        throw err;
      }
    });
    return this.publishChecked(checked, source, label);
  }

  /**
   * One message to several topics, serialised once: every topic is checked
   * first (nothing is published when one is refused), then each topic gets
   * its own publication (its own offset where it keeps history) carrying
   * the same JSON text; see `Herald.broadcast`.
   */
  async broadcast(topics: readonly string[], message: unknown, source: PublicationSource = 'library', options: PublishOptions = {}): Promise<PublishResult[]> {
    if (topics.length === 0) throw new HeraldError('bad_request', 'a broadcast needs at least one topic');
    const max = this.options.config.limits.maxBatchSize;
    if (topics.length > max) throw new HeraldError('too_large', `a broadcast to ${topics.length} topics is over limits.maxBatchSize (${max})`);
    if (new Set(topics).size !== topics.length) throw new HeraldError('bad_request', 'a broadcast names each topic once');
    for (const topic of topics) {
      try {
        this.check(topic, options);
      } catch (err) {
        if (err instanceof HeraldError && topics.length > 1) throw new HeraldError(err.code, `topic ${topic}: ${err.message}`, { cause: err });
        throw err;
      }
    }
    const payload = this.encodePublication(message);
    const checked = topics.map((topic) => ({ topic, payload, key: options.idempotencyKey, ...metaOf(options) }));
    return this.publishChecked(checked, source, (index) => (topics.length > 1 ? `topic ${topics[index]}` : ''));
  }

  /** Publishes checked items in order; a failure half way says how many were published before it. */
  private async publishChecked(
    checked: ReadonlyArray<{ topic: string; payload: string; key: string | undefined } & Meta>,
    source: PublicationSource,
    label: (index: number) => string,
  ): Promise<PublishResult[]> {
    const results: PublishResult[] = [];
    for (const [index, item] of checked.entries()) {
      try {
        if (this.options.closing(item.topic)) throw new HeraldError('unavailable', 'server is shutting down');
        const publication: Publication = { topic: item.topic, payload: item.payload, ...metaOf(item) };
        const publish = () => this.distribute(publication, source, item.key);
        results.push(await (item.key === undefined ? publish() : this.idempotency.remember(item.topic, item.key, publish, this.keepsDoubt(item.topic))));
      } catch (err) {
        if (!(err instanceof HeraldError) || checked.length === 1) throw err;
        const done = index === 0 ? 'nothing was published' : `the ${index} before it were published, the rest were not`;
        throw new HeraldError(err.code, `${label(index)}: ${err.message} (${done})`, { cause: err });
      }
    }
    return results;
  }

  /** A topic's name (Herald's rule and the broker's), an exclusion's connection id, tags and event: throws `invalid_topic` or `bad_request`. */
  private check(topic: string, meta: Meta): void {
    const problem = this.options.topicProblem(topic);
    if (problem) throw new HeraldError('invalid_topic', problem);
    const { exclude, tags, event } = meta;
    if (exclude !== undefined) {
      const bad = typeof exclude === 'string' ? exclusionProblem(exclude) : 'exclude must be a connection id (a string)';
      if (bad) throw new HeraldError('bad_request', `exclude: ${bad}`);
    }
    if (tags !== undefined) {
      const bad = tagsProblem(tags);
      if (bad) throw new HeraldError('bad_request', `tags: ${bad}`);
    }
    if (event !== undefined) {
      const bad = eventProblem(event);
      if (bad) throw new HeraldError('bad_request', `event: ${bad}`);
    }
  }

  /** An LHTTP message: `message.text` for LHTTP subscribers, `body` (a JSON string) for the others. */
  publishLhttp(topic: string, message: LhttpPublication, body: string, source: PublicationSource = 'client'): Promise<PublishResult> {
    const problem = this.refusal(topic);
    if (problem) return Promise.reject(problem);
    const max = this.options.config.limits.maxMessageBytes;
    const size = Buffer.byteLength(message.text);
    if (size > max) return Promise.reject(new HeraldError('too_large', `message is ${size} bytes, over the limit of ${max}`));
    return this.distribute({ topic, payload: toJson(body), lhttp: message }, source);
  }

  /** A publication from another node (or a raw broker publisher), in order: to this node's subscribers. */
  receive(publication: Publication): void {
    if (this.cacheRules && !this.options.history.appendPublishes) this.keepLatest(publication);
    this.deliverLocally(publication, 'broker');
  }

  /** Keeps the publication as its topic's latest value when the topic is in cache mode (a store that is not shared only). */
  private keepLatest(publication: Publication): void {
    const rule = ruleFor(this.options.config.history, publication.topic);
    if (rule?.cache) this.options.latest.remember(publication);
  }

  /** The message's JSON text for a publication, counted (`herald_messages_encoded_total`). */
  private encodePublication(message: unknown): string {
    const payload = this.encodeMessage(message);
    this.options.metrics.encoded.inc();
    return payload;
  }

  /** JSON text of a message, checked against `limits.maxMessageBytes`. Throws `bad_request` or `too_large`. */
  encodeMessage(message: unknown): string {
    let payload: string | undefined;
    try {
      payload = toJson(message);
    } catch (err) {
      throw new HeraldError('bad_request', `message is not serialisable as JSON: ${(err as Error).message}`);
    }
    if (payload === undefined) throw new HeraldError('bad_request', 'message must be a JSON value');
    const max = this.options.config.limits.maxMessageBytes;
    if (payload.length > max / 3 && Buffer.byteLength(payload) > max) {
      throw new HeraldError('too_large', `message is ${Buffer.byteLength(payload)} bytes, over the limit of ${max}`);
    }
    return payload;
  }

  private refusal(topic: string): HeraldError | null {
    const problem = this.options.topicProblem(topic);
    if (problem) return new HeraldError('invalid_topic', problem);
    if (this.options.closing(topic)) return new HeraldError('unavailable', 'server is shutting down');
    return null;
  }

  private publishNow(topic: string, message: unknown, source: PublicationSource, idempotencyKey: string | undefined, options: Meta): Promise<PublishResult> {
    let payload: string;
    try {
      this.check(topic, options);
      if (this.options.closing(topic)) throw new HeraldError('unavailable', 'server is shutting down');
      payload = this.encodePublication(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.distribute({ topic, payload, ...metaOf(options) }, source, idempotencyKey);
  }

  /** Hands a publication to this node's subscribers, with its metrics. Returns how many connections got it. */
  private deliverLocally(publication: Publication, source: PublicationSource): number {
    const started = process.hrtime.bigint();
    const { hub, metrics } = this.options;
    let attempted = hub.subscriberCount(publication.topic);
    if (publication.exclude !== undefined && hub.sessions.get(publication.exclude)?.topics.has(publication.topic)) attempted--;
    const written = hub.deliver(publication);
    // Subscribers whose filter the publication did not pass were not meant to get it: neither attempted nor dropped.
    if (hub.lastFiltered > 0) {
      attempted -= hub.lastFiltered;
      metrics.filtered.inc(hub.lastFiltered);
    }
    metrics.published.inc({ source });
    if (attempted > 0) {
      metrics.fanoutSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      metrics.delivered.inc(written);
      if (written < attempted) metrics.dropped.inc(attempted - written);
    }
    return written;
  }

  /** The choice of path, made here and nowhere else: the shared store's append, or here first and then the broker. */
  private distribute(publication: Publication, source: PublicationSource, idempotencyKey?: string): Promise<PublishResult> {
    const { config, history } = this.options;
    const rule = ruleFor(config.history, publication.topic);
    if (rule && history.appendPublishes) {
      // The shared store's append publishes to every node, this one included, in offset order.
      // The key is kept in the shared store too, so that a retry reaching another node is a no-op as well.
      const idempotency = idempotencyKey === undefined ? undefined : { key: idempotencyKey, window: config.idempotencyWindow };
      const counted = (position: Position): PublishResult => {
        this.publications++;
        return { offset: position.offset, epoch: position.epoch };
      };
      const meta = { tags: publication.tags, event: publication.event };
      return Promise.resolve(history.append(publication.topic, rule, publication.payload, publication.lhttp, idempotency, publication.exclude, meta)).then(counted, (err: unknown) => {
        // In doubt, it is counted if it turns out made.
        throw err instanceof InDoubtError ? failureFor(err, err.message, (position) => counted(position as Position)) : err;
      });
    }
    if (rule) {
      const meta = publication.tags === undefined && publication.event === undefined ? undefined : { tags: publication.tags, event: publication.event };
      const position = history.append(publication.topic, rule, publication.payload, publication.lhttp, undefined, undefined, meta);
      if (position instanceof Promise) return position.then((p) => this.distributeAt(publication, source, p));
      return this.distributeAt(publication, source, position);
    }
    return this.distributeAt(publication, source, null);
  }

  private distributeAt(publication: Publication, source: PublicationSource, position: Position | null): Promise<PublishResult> {
    if (position) {
      publication.offset = position.offset;
      publication.epoch = position.epoch;
    }
    this.publications++;
    if (this.cacheRules) this.keepLatest(publication);
    // Local subscribers first, then the other nodes: local delivery keeps
    // working while the broker is down, and the caller is told the truth.
    const local = this.deliverLocally(publication, source);
    const accepted = this.options.broker.publish(publication);
    const result: PublishResult = position ? { offset: position.offset, epoch: position.epoch } : {};
    return accepted.then(() => result, (err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      throw failureFor(err, `${why}: delivered to ${local} connection(s) on this node only, not to other nodes`, () => result);
    });
  }
}
