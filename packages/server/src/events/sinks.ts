import type { PublishResult } from '../broker/broker.js';
import type { HeraldConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { topicMatches } from '../topics.js';
import type { DeliveryReport } from './delivery.js';
import type { LifecycleEvent, LifecycleEvents } from './events.js';
import { EventsTopic } from './events-topic.js';
import { standardWebhooks, WebhookSender } from './webhooks.js';

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
    metrics: Metrics | undefined,
    log: Logger,
  ) {
    for (const [index, webhook] of config.webhooks.entries()) {
      const name = `webhook${index}`;
      const sender = new WebhookSender<LifecycleEvent>({ ...webhook, name, format: standardWebhooks, report: metricsReport(metrics, name), log });
      const kinds = webhook.kinds ? new Set<string>(webhook.kinds) : null;
      const topics = webhook.topics ?? null;
      events.on((event) => {
        if (kinds && !kinds.has(event.kind)) return;
        if (topics && (event.topic === undefined || !topicMatches(topics, event.topic))) return;
        sender.send(event);
      });
      metrics?.eventQueues.set(name, () => sender.queued);
      this.closers.push((timeout) => sender.close(timeout));
    }
    if (config.topic.name !== undefined) {
      const topic = new EventsTopic(config.topic.name, publish, metricsReport(metrics, 'topic'), log);
      events.on((event) => topic.send(event));
      this.closers.push((timeout) => topic.close(timeout));
    }
  }

  /**
   * Flushes another unit's sender (the Pusher protocol's webhooks) with the
   * configured ones on shutdown, before the node says goodbye to the cluster.
   */
  adopt(sender: { close(timeout: number): Promise<void> }): void {
    this.closers.push((timeout) => sender.close(timeout));
  }

  /** Delivers what is queued within `timeout` ms (shutdown.timeout), giving up the rest. */
  async close(timeout: number): Promise<void> {
    await Promise.all(this.closers.map((close) => close(timeout)));
  }
}
