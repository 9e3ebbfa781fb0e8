import type { PublishResult } from '../broker/broker.js';
import { HeraldError } from '../errors.js';
import type { Logger } from '../log.js';
import { DeliveryQueue, type DeliveryReport } from './delivery.js';
import type { LifecycleEvent } from './events.js';

/**
 * Publishes each event this node emits to the events topic (`events.topic.name`,
 * a topic with history), in order, with the event's id as the idempotency
 * key: a publish retried after a failure (the broker down) is stored once,
 * so a backend subscribed to the topic recovers every event by offset.
 */
export class EventsTopic {
  private readonly queue: DeliveryQueue<LifecycleEvent>;

  constructor(
    readonly topic: string,
    publish: (topic: string, message: unknown, idempotencyKey: string) => Promise<PublishResult>,
    report: DeliveryReport,
    log: Logger,
  ) {
    this.queue = new DeliveryQueue<LifecycleEvent>(
      'topic',
      { batchWindow: 0, maxBatch: 100, maxQueue: 100_000, retryDelay: 200, maxRetryDelay: 5_000, maxAge: 3_600_000 },
      async (batch) => {
        // One at a time, in order; a retry publishes the batch again, and the keys make the ones already stored no-ops.
        try {
          for (const event of batch.items) await publish(this.topic, event, event.id);
        } catch (err) {
          // The broker down, a publish in doubt: worth another try. Anything else (a refused topic) never passes.
          const code = err instanceof HeraldError ? err.code : 'unavailable';
          return { ok: false, retry: code === 'unavailable' || code === 'internal', reason: (err as Error).message };
        }
        return { ok: true };
      },
      report,
      log,
    );
  }

  send(event: LifecycleEvent): void {
    this.queue.push(event);
  }

  close(timeout: number): Promise<void> {
    return this.queue.close(timeout);
  }
}
