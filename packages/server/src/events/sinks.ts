import type { PublishResult } from '../broker/broker.js';
import type { HeraldConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { topicMatches } from '../topics.js';
import type { DeliveryReport } from './delivery.js';
import type { LifecycleEvent, LifecycleEvents } from './events.js';
import { EventsTopic } from './events-topic.js';
import { standardWebhooks, WebhookSender, type WebhookSenderOptions } from './webhooks.js';

/** A DeliveryReport that counts into the Prometheus metrics under `sink`. */
export function metricsReport(metrics: Metrics | undefined, sink: string): DeliveryReport {
  return {
    delivered: (count) => metrics?.eventDeliveries.inc({ sink }, count),
    retried: () => metrics?.eventRetries.inc({ sink }),
    failed: (reason, count) => metrics?.eventFailures.inc({ sink, reason }, count),
  };
}

/**
 * The configured destinations of this node's events (`events.webhooks`,
 * `events.topic`), listening to the events unit: each webhook gets the
 * events its `kinds` and `topics` select, the events topic every event.
 */
export class EventSinks {
  private readonly closers: Array<(timeout: number) => Promise<void>> = [];

  constructor(
    events: LifecycleEvents,
    config: HeraldConfig['events'],
    publish: (topic: string, message: unknown, idempotencyKey: string) => Promise<PublishResult>,
    private readonly metrics: Metrics | undefined,
    private readonly log: Logger,
  ) {
    for (const [index, webhook] of config.webhooks.entries()) {
      const sender = this.webhook<LifecycleEvent>({ ...webhook, name: `webhook${index}`, format: standardWebhooks });
      const kinds = webhook.kinds ? new Set<string>(webhook.kinds) : null;
      const topics = webhook.topics ?? null;
      events.on((event) => {
        if (kinds && !kinds.has(event.kind)) return;
        if (topics && (event.topic === undefined || !topicMatches(topics, event.topic))) return;
        sender.send(event);
      });
    }
    if (config.topic.name !== undefined) {
      const topic = new EventsTopic(config.topic.name, publish, metricsReport(metrics, 'topic'), log);
      events.on((event) => topic.send(event));
      this.closers.push((timeout) => topic.close(timeout));
    }
  }

  /**
   * A webhook endpoint's sender, counted in the metrics under its `name`
   * (deliveries, retries, failures, the queue gauge) and flushed with the
   * others on shutdown, before the node says goodbye to the cluster: the
   * configured webhooks' and another unit's (the Pusher apps').
   */
  webhook<E>(options: Omit<WebhookSenderOptions<E>, 'report' | 'log'>): WebhookSender<E> {
    const sender = new WebhookSender<E>({ ...options, report: metricsReport(this.metrics, options.name), log: this.log });
    this.metrics?.eventQueues.set(options.name, () => sender.queued);
    this.closers.push((timeout) => sender.close(timeout));
    return sender;
  }

  /** Delivers what is queued within `timeout` ms (shutdown.timeout), giving up the rest. */
  async close(timeout: number): Promise<void> {
    await Promise.all(this.closers.map((close) => close(timeout)));
  }
}
