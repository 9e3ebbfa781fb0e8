import { createHmac } from 'node:crypto';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { DeliveryQueue, type AttemptOutcome, type Batch, type DeliveryOptions, type DeliveryReport } from './delivery.js';
import type { LifecycleEvent } from './events.js';

/** One request as a format writes it. */
export interface WebhookRequest {
  /** The exact bytes that are sent (and signed). */
  readonly body: string;
  /** Headers besides content-type and user-agent (the signature's among them). */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * How a batch of events becomes a signed request: the body and the
 * signature scheme, the part a receiver's verification depends on. Called
 * for every attempt (a retry is signed again, with a fresh timestamp);
 * `batchId` stays the same over a batch's attempts, `now` is the attempt's
 * time (ms epoch), `secret` the endpoint's configured secret.
 */
export interface WebhookFormat<E> {
  encode(batch: readonly E[], context: { readonly batchId: string; readonly now: number; readonly secret: string }): WebhookRequest;
}

/**
 * A Retry-After header's wait, ms from `now` (RFC 9110 §10.2.3): a number of
 * seconds, or an HTTP-date (a date in the past: no wait). Undefined when
 * absent or unreadable.
 */
export function retryAfter(header: string | null, now: number): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

/** A text (an error message) with any URL's credentials masked: `//user:pw@host` -> `//***@host`. */
export function withoutCredentials(text: string): string {
  return text.replace(/\/\/[^/@\s]*@/g, '//***@');
}

/** The HMAC key of a secret: Standard Webhooks' `whsec_<base64>` is the decoded bytes, any other string its UTF-8 bytes. */
export function webhookKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

/**
 * Herald's own format, Standard Webhooks (https://www.standardwebhooks.com):
 * body `{"events":[...]}` (LifecycleEvent objects); headers `webhook-id`
 * (the batch's id, the same on every retry), `webhook-timestamp` (seconds
 * since the epoch, of this attempt) and `webhook-signature`:
 * `v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>`, the
 * key as `webhookKey` reads the secret. Any Standard Webhooks library
 * verifies it (with a `whsec_` secret).
 */
export const standardWebhooks: WebhookFormat<LifecycleEvent> = {
  encode(batch, { batchId, now, secret }) {
    const body = JSON.stringify({ events: batch });
    const timestamp = String(Math.floor(now / 1000));
    const signature = createHmac('sha256', webhookKey(secret)).update(`${batchId}.${timestamp}.${body}`).digest('base64');
    return { body, headers: { 'webhook-id': batchId, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` } };
  },
};

export interface WebhookSenderOptions<E> extends DeliveryOptions {
  /** Names the sender in logs and metrics (`sink` label): e.g. `webhook`, `pusher`. */
  readonly name: string;
  readonly url: string;
  readonly secret: string;
  readonly format: WebhookFormat<E>;
  /** How long one request may take, ms; past it the attempt failed (and is retried). */
  readonly timeout: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly report: DeliveryReport;
  readonly log: Logger;
}

/**
 * POSTs events to one endpoint: queued, batched (per window and size),
 * signed by a format, retried with exponential backoff and full jitter on a
 * network error, a timeout, a 5xx, 408 or 429 (after Retry-After when the
 * receiver gives one, seconds or an HTTP-date, honoured up to the batch's
 * maxAge) until a 2xx acknowledges them; any other status is a
 * refusal and the batch is given up (logged, counted). At least once while
 * the process runs; `close` flushes within its timeout.
 */
export class WebhookSender<E> {
  private readonly queue: DeliveryQueue<E>;

  constructor(private readonly options: WebhookSenderOptions<E>) {
    this.queue = new DeliveryQueue(options.name, options, (batch) => this.post(batch), options.report, options.log);
  }

  send(event: E): void {
    this.queue.push(event);
  }

  /** Events waiting, the batch being attempted included. */
  get queued(): number {
    return this.queue.size;
  }

  close(timeout: number): Promise<void> {
    return this.queue.close(timeout);
  }

  private async post(batch: Batch<E>): Promise<AttemptOutcome> {
    const { url, secret, format, timeout, headers } = this.options;
    const request = format.encode(batch.items, { batchId: batch.id, now: Date.now(), secret });
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        body: request.body,
        headers: { 'content-type': 'application/json', 'user-agent': `Herald/${VERSION}`, ...headers, ...request.headers },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeout),
      });
      // The answer's body is not used; reading it frees the connection.
      await response.arrayBuffer().catch(() => undefined);
    } catch (err) {
      const name = (err as Error).name;
      return { ok: false, retry: true, reason: name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeout} ms` : withoutCredentials((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message) };
    }
    const status = response.status;
    if (status >= 200 && status < 300) return { ok: true };
    if (status >= 500 || status === 408 || status === 429) {
      const after = retryAfter(response.headers.get('retry-after'), Date.now());
      return { ok: false, retry: true, reason: `status ${status}`, ...(after !== undefined ? { after } : {}) };
    }
    return { ok: false, retry: false, reason: `status ${status}` };
  }
}
