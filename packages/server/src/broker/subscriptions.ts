import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import { LiveStreams, type GapReason } from '../history/catch-up.js';
import type { HistoryStore } from '../history/history.js';
import { ruleFor } from '../topics.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Broker, Publication } from './broker.js';

export interface TopicSubscriptionsOptions {
  readonly config: HeraldConfig;
  readonly broker: Broker;
  readonly history: HistoryStore;
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Hands a publication that arrived through the broker to this node's subscribers (`Publisher.receive`). */
  deliver(publication: Publication): void;
}

/**
 * How long a client's subscribe waits for the broker to confirm a new topic
 * subscription. While the broker is down the confirmation waits for the
 * reconnection: clients are not held that long.
 */
const CONFIRM_WAIT = 2000;

/**
 * The broker's side of the hub's topics: one broker subscription per topic
 * with a local subscriber (opened with the first, closed with the last), the
 * wait for its confirmation (`whenCarried`), and what arrives on it.
 *
 * Topics with shared history (Redis) arrive through `LiveStreams`, which
 * keeps this node's stream of each gap-free: a hole (a link blip, a topic
 * opened mid-stream) is filled from the store before newer publications.
 * Topics without shared history that were interrupted get a `gap` frame,
 * once the resubscription is confirmed.
 */
export class TopicSubscriptions {
  /** Topics with shared history that this node carries, kept gap-free. */
  readonly live: LiveStreams;
  private readonly opening = new Map<string, Promise<void>>();

  constructor(private readonly options: TopicSubscriptionsOptions) {
    const { config, broker, history, log } = options;
    this.live = new LiveStreams({
      deliver: (publication) => options.deliver(publication),
      read: async (topic, after) => {
        const rule = ruleFor(config.history, topic);
        if (!rule) throw new HeraldError('not_found', `no history is kept for topic ${topic}`);
        return history.read(topic, rule, { after, limit: rule.size });
      },
      caughtUp: (topic) => broker.caughtUp?.(topic),
      gap: (topic, reason) => this.announceGap(topic, reason),
      warn: (detail, message) => log.warn(detail, message),
    });
  }

  /** The first local subscriber of a topic: the broker subscribes (and, for shared history, the live stream opens). */
  opened(topic: string): void {
    const { config, broker, history } = this.options;
    if (history.appendPublishes && ruleFor(config.history, topic)) this.live.open(topic);
    const pending = broker.subscribe(topic);
    if (!pending) return;
    let timer: NodeJS.Timeout | undefined;
    const bounded = Promise.race([pending, new Promise<void>((resolve) => (timer = setTimeout(resolve, CONFIRM_WAIT)))]).finally(() => {
      clearTimeout(timer);
      if (this.opening.get(topic) === bounded) this.opening.delete(topic);
    });
    this.opening.set(topic, bounded);
  }

  /** The last local subscriber left. */
  closed(topic: string): void {
    this.live.close(topic);
    this.options.broker.unsubscribe(topic);
  }

  /** Resolves when the broker carries every one of these topics to this node (at most CONFIRM_WAIT); undefined when it already does. */
  whenCarried(topics: readonly string[]): Promise<void> | undefined {
    const waits = topics.map((topic) => this.opening.get(topic)).filter((wait) => wait !== undefined);
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => undefined);
  }

  /** What the broker delivers: shared-history topics through their live stream, the rest straight to the subscribers. */
  received(publication: Publication): void {
    this.live.live(publication);
  }

  /** The broker's subscriber link came back: topics with shared history catch up from it, the others are told of a gap. */
  resumed(carries: ((topic: string) => boolean) | null): void {
    this.live.resumed(carries);
    for (const topic of this.options.hub.topicNames()) {
      if ((carries !== null && !carries(topic)) || this.live.follows(topic)) continue;
      // Once the resubscription is confirmed (a round trip behind it): every publication after the frame arrives.
      const confirmed = this.options.broker.caughtUp?.(topic);
      if (!confirmed) this.announceGap(topic, 'interrupted');
      else void confirmed.then(() => this.announceGap(topic, 'interrupted'), () => this.announceGap(topic, 'interrupted'));
    }
  }

  /** Tells the topic's subscribers on this node that they may have missed publications (each protocol in its terms, if it has any). */
  private announceGap(topic: string, reason: GapReason): void {
    const { hub, metrics, log } = this.options;
    metrics.gaps.inc({ reason });
    log.warn({ topic, reason, subscribers: hub.subscriberCount(topic) }, 'subscribers told they may have missed publications');
    hub.announce(topic, (codec) => codec.gap(topic, reason), null);
  }
}
