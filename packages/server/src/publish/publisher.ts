import type { Broker, LhttpPublication, Publication, PublishResult } from '../broker/broker.js';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { HistoryStore, Position } from '../history/history.js';
import { ruleFor } from '../topics.js';
import type { Hub } from '../hub/hub.js';
import type { Metrics, PublicationSource } from '../metrics/metrics.js';
import { IdempotencyCache } from '../util/idempotency.js';
import { toJson } from '../util/json.js';
import type { BatchItem, PublishOptions } from '../herald.js';

export interface PublisherOptions {
  readonly config: HeraldConfig;
  readonly broker: Broker;
  readonly history: HistoryStore;
  readonly hub: Hub;
  readonly metrics: Metrics;
  /** Herald's topic rule plus the broker's namespace: why a topic is refused, or null. */
  topicProblem(topic: string): string | null;
  /** True once the node is shutting down: publications are refused with `unavailable`. */
  closing(): boolean;
}

/**
 * The publication path, the one every publication takes whatever its source
 * (client command, HTTP API, CLI, library, LHTTP, raw endpoint):
 *
 *   check the topic and the message (JSON text, size), encode it once
 *   → idempotency window (a retry with the same key answers the first result)
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

  constructor(private readonly options: PublisherOptions) {
    const { config } = options;
    this.idempotency = new IdempotencyCache({ window: config.idempotencyWindow, maxKeys: config.idempotencyMaxKeys, maxBytes: config.idempotencyMaxBytes });
  }

  /** One publication of any JSON value; see `Herald.publish`. */
  publish(topic: string, message: unknown, source: PublicationSource = 'library', options: PublishOptions = {}): Promise<PublishResult> {
    const key = options.idempotencyKey;
    if (key === undefined) return this.publishNow(topic, message, source);
    return this.idempotency.remember(topic, key, () => this.publishNow(topic, message, source, key));
  }

  /** Several publications, every item checked before any is published; see `Herald.publishMany`. */
  async publishMany(items: ReadonlyArray<BatchItem>, source: PublicationSource = 'library'): Promise<PublishResult[]> {
    const label = (index: number): string => items[index]!.label ?? (items.length > 1 ? `item ${index}` : '');
    const checked = items.map((item, index) => {
      const where = label(index) ? `${label(index)}: ` : '';
      const problem = this.options.topicProblem(item.topic);
      if (problem) throw new HeraldError('invalid_topic', `${where}${problem}`);
      try {
        return { topic: item.topic, payload: this.encodeMessage(item.message), key: item.idempotencyKey };
      } catch (err) {
        if (err instanceof HeraldError) throw new HeraldError(err.code, `${where}${err.message}`, { cause: err });
        throw err;
      }
    });
    const results: PublishResult[] = [];
    for (const [index, item] of checked.entries()) {
      try {
        if (this.options.closing()) throw new HeraldError('unavailable', 'server is shutting down');
        const publish = () => this.distribute({ topic: item.topic, payload: item.payload }, source, item.key);
        results.push(await (item.key === undefined ? publish() : this.idempotency.remember(item.topic, item.key, publish)));
      } catch (err) {
        if (!(err instanceof HeraldError) || checked.length === 1) throw err;
        const done = index === 0 ? 'nothing was published' : `the ${index} before it were published, the rest were not`;
        throw new HeraldError(err.code, `${label(index)}: ${err.message} (${done})`, { cause: err });
      }
    }
    return results;
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
    this.deliverLocally(publication, 'broker');
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
    if (this.options.closing()) return new HeraldError('unavailable', 'server is shutting down');
    return null;
  }

  private publishNow(topic: string, message: unknown, source: PublicationSource, idempotencyKey?: string): Promise<PublishResult> {
    const problem = this.refusal(topic);
    if (problem) return Promise.reject(problem);
    let payload: string;
    try {
      payload = this.encodeMessage(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.distribute({ topic, payload }, source, idempotencyKey);
  }

  /** Hands a publication to this node's subscribers, with its metrics. Returns how many connections got it. */
  private deliverLocally(publication: Publication, source: PublicationSource): number {
    const started = process.hrtime.bigint();
    const { hub, metrics } = this.options;
    const attempted = hub.subscriberCount(publication.topic);
    const written = hub.deliver(publication);
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
      return Promise.resolve(history.append(publication.topic, rule, publication.payload, publication.lhttp, idempotency)).then((position) => {
        this.publications++;
        return { offset: position.offset, epoch: position.epoch };
      });
    }
    if (rule) {
      const position = history.append(publication.topic, rule, publication.payload, publication.lhttp);
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
    // Local subscribers first, then the other nodes: local delivery keeps
    // working while the broker is down, and the caller is told the truth.
    const local = this.deliverLocally(publication, source);
    const accepted = this.options.broker.publish(publication);
    const result: PublishResult = position ? { offset: position.offset, epoch: position.epoch } : {};
    return accepted.then(() => result, (err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      throw new HeraldError('unavailable', `${why}: delivered to ${local} connection(s) on this node only, not to other nodes`, { cause: err });
    });
  }
}
