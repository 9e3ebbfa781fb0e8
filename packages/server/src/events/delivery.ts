import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';

/** What one attempt at delivering a batch came to. */
export type AttemptOutcome =
  | { ok: true }
  /** Worth trying again (network error, timeout, 5xx, 408, 429); `after`: the receiver's Retry-After, ms (honoured as long as the batch's maxAge allows). */
  | { ok: false; retry: true; reason: string; after?: number }
  /** Never worth trying again (a 4xx refusal): the batch is given up. */
  | { ok: false; retry: false; reason: string };

/** A batch on its way: its items and an id that stays the same over its attempts (a webhook's `webhook-id`). */
export interface Batch<E> {
  readonly id: string;
  readonly items: readonly E[];
  /** When its first attempt started (ms epoch). */
  readonly firstAt: number;
}

export interface DeliveryOptions {
  /** How long items wait to be sent together, ms. */
  readonly batchWindow: number;
  /** Most items in one batch. */
  readonly maxBatch: number;
  /** Most items held, the batch being attempted included (what `size` and the `herald_event_queue` gauge report); past it the oldest waiting ones are dropped (the batch being attempted is kept). */
  readonly maxQueue: number;
  /**
   * The first retry's ceiling, ms; each retry doubles it, up to `maxRetryDelay` (full jitter: a random wait under the ceiling).
   * A receiver's Retry-After longer than that wait is honoured, whatever `maxRetryDelay`; one that reaches past `maxAge` gives the batch up.
   */
  readonly retryDelay: number;
  readonly maxRetryDelay: number;
  /** A batch not delivered this long after its first attempt is given up, ms. */
  readonly maxAge: number;
}

/** What a queue tells about itself (metrics.ts counts it, by sink). */
export interface DeliveryReport {
  delivered(batch: number): void;
  retried(): void;
  /** Items given up: `refused` (a permanent failure), `expired` (maxAge), `overflow` (maxQueue), `shutdown`. */
  failed(reason: 'refused' | 'expired' | 'overflow' | 'shutdown', items: number): void;
}

/**
 * A bounded queue of items delivered in batches, in order, one batch at a
 * time, each retried with exponential backoff and full jitter until it is
 * acknowledged, refused for good or too old: at-least-once delivery while
 * the process runs. The transport (an HTTP POST, a publication) is the
 * `attempt` function; the queue knows nothing of it.
 */
export class DeliveryQueue<E> {
  private queue: E[] = [];
  private current: Batch<E> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closeDeadline = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly name: string,
    private readonly options: DeliveryOptions,
    private readonly attempt: (batch: Batch<E>, attempt: number) => Promise<AttemptOutcome>,
    private readonly report: DeliveryReport,
    private readonly log: Logger,
  ) {}

  /** Items waiting, the batch being attempted included: at most `maxQueue`. */
  get size(): number {
    return this.queue.length + (this.current?.items.length ?? 0);
  }

  push(item: E): void {
    if (this.closed) {
      this.report.failed('shutdown', 1);
      return;
    }
    this.queue.push(item);
    if (this.size > this.options.maxQueue) {
      // The batch being attempted counts: what is held (and reported) stays within maxQueue.
      const over = Math.min(this.queue.length, this.size - this.options.maxQueue);
      this.queue.splice(0, over);
      this.report.failed('overflow', over);
      this.log.warn({ sink: this.name, dropped: over, maxQueue: this.options.maxQueue }, 'event queue full: oldest events dropped');
    }
    this.schedule();
  }

  /**
   * Sends what is queued at once (no batch window) and keeps retrying until
   * everything is delivered or `timeout` ms have passed; what is left then
   * is given up (logged, counted). Resolves when done either way.
   */
  async close(timeout: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeDeadline = Date.now() + timeout;
    clearTimeout(this.timer);
    this.pump();
    if (this.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => this.idle.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, timeout))))]);
      clearTimeout(timer);
    }
    const left = this.size;
    if (left > 0) {
      this.report.failed('shutdown', left);
      this.log.warn({ sink: this.name, events: left }, 'shutdown: events not delivered in time, given up');
      this.queue = [];
    }
  }

  private schedule(): void {
    if (this.current || this.timer) return;
    if (this.queue.length >= this.options.maxBatch || this.closed) return this.pump();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, this.options.batchWindow);
    this.timer.unref?.();
  }

  private pump(): void {
    if (this.current) return;
    if (this.queue.length === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = { id: randomUUID(), items: this.queue.splice(0, this.options.maxBatch), firstAt: Date.now() };
    void this.run(this.current).finally(() => {
      this.current = null;
      // A full batch goes at once; a smaller rest waits its window (it may have waited already).
      if (this.queue.length >= this.options.maxBatch || this.closed) this.pump();
      else if (this.queue.length > 0) this.schedule();
      else for (const resolve of this.idle.splice(0)) resolve();
    });
  }

  private async run(batch: Batch<E>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let outcome: AttemptOutcome;
      try {
        outcome = await this.attempt(batch, attempt);
      } catch (err) {
        outcome = { ok: false, retry: true, reason: (err as Error).message };
      }
      if (outcome.ok) {
        this.report.delivered(batch.items.length);
        return;
      }
      if (!outcome.retry) {
        this.report.failed('refused', batch.items.length);
        this.log.error({ sink: this.name, batch: batch.id, events: batch.items.length, reason: outcome.reason }, 'events refused by the receiver: given up');
        return;
      }
      const ceiling = Math.min(this.options.maxRetryDelay, this.options.retryDelay * 2 ** Math.min(attempt, 30));
      // The receiver's Retry-After is honoured in full (a wait shorter than asked would only be refused again); past maxAge the batch is given up below.
      const delay = Math.max(Math.random() * ceiling, outcome.after ?? 0);
      const now = Date.now();
      if (now + delay - batch.firstAt > this.options.maxAge) {
        this.report.failed('expired', batch.items.length);
        this.log.error({ sink: this.name, batch: batch.id, events: batch.items.length, reason: outcome.reason, attempts: attempt + 1 }, 'events not acknowledged within maxAge: given up');
        return;
      }
      if (this.closed && now + delay > this.closeDeadline) {
        this.report.failed('shutdown', batch.items.length);
        this.log.warn({ sink: this.name, batch: batch.id, events: batch.items.length, reason: outcome.reason }, 'shutdown: events not delivered in time, given up');
        return;
      }
      this.log.warn({ sink: this.name, batch: batch.id, attempt: attempt + 1, reason: outcome.reason, retryIn: Math.round(delay) }, 'event delivery failed: will retry');
      this.report.retried();
      await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
      if (this.closed && Date.now() >= this.closeDeadline) return;
    }
  }
}
