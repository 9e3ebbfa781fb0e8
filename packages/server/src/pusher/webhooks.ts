import { WEBHOOK_DELIVERY } from '../config.js';
import { createHmac } from 'node:crypto';
import type { EventSinks } from '../events/sinks.js';
import type { LifecycleEvent, LifecycleEvents } from '../events/events.js';
import type { WebhookFormat, WebhookSender } from '../events/webhooks.js';
import { PUSHER_CHANNEL, PusherApps, type PusherApp } from './apps.js';

/** The events a Pusher webhook may carry (Pusher Channels' webhook names). */
export type PusherWebhookName = 'channel_occupied' | 'channel_vacated' | 'member_added' | 'member_removed' | 'client_event' | 'cache_miss';

/**
 * One event of a Pusher webhook's `events` list, as Pusher Channels writes
 * it: `{name, channel}` for occupancy and `cache_miss`, plus `user_id` for
 * members, plus `event`, `data` (a string), `socket_id` and, on presence
 * channels, `user_id` for client events.
 */
export interface PusherWebhookEvent {
  readonly name: PusherWebhookName;
  readonly channel: string;
  readonly user_id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly socket_id?: string;
}

/**
 * Pusher's webhook request: body `{"time_ms":<ms>,"events":[...]}`, headers
 * `X-Pusher-Key` (the app key) and `X-Pusher-Signature` (hex HMAC-SHA256 of
 * the body with the app secret), which the Pusher server libraries'
 * `webhook(...).isValid()` checks.
 */
export function pusherFormat(app: PusherApp): WebhookFormat<PusherWebhookEvent> {
  return {
    encode(batch, { now, secret }) {
      const body = JSON.stringify({ time_ms: now, events: batch });
      return { body, headers: { 'X-Pusher-Key': app.key, 'X-Pusher-Signature': createHmac('sha256', secret).update(body).digest('hex') } };
    },
  };
}

/** How the lifecycle events map to Pusher's (the others have no Pusher counterpart). */
const FROM_LIFECYCLE: Partial<Record<LifecycleEvent['kind'], PusherWebhookName>> = {
  topic_occupied: 'channel_occupied',
  topic_vacated: 'channel_vacated',
  member_added: 'member_added',
  member_removed: 'member_removed',
};

interface AppHooks {
  readonly app: PusherApp;
  readonly senders: Array<{ sender: WebhookSender<PusherWebhookEvent>; names: ReadonlySet<PusherWebhookName> | null }>;
}

/**
 * The Pusher apps' webhooks (`pusher.apps[].webhooks`), on Herald's
 * lifecycle-event machinery: channel occupancy and presence members come
 * from the lifecycle events (computed on every node, emitted by exactly one:
 * events/events.ts), so each fires once per cluster; `client_event` and
 * `cache_miss` come from the Pusher protocol on the node where they happen.
 * Each webhook endpoint has its own WebhookSender: batched, signed the
 * Pusher way, retried with backoff until acknowledged.
 */
export class PusherWebhooks {
  private readonly byApp = new Map<string, AppHooks>();

  /** `sinks` makes each endpoint's sender (metrics, shutdown flush: EventSinks.webhook). */
  constructor(apps: PusherApps, events: LifecycleEvents, sinks: EventSinks) {
    for (const app of apps) {
      if (app.webhooks.length === 0) continue;
      const hooks: AppHooks = { app, senders: [] };
      app.webhooks.forEach((webhook, index) => {
        const sender = sinks.webhook<PusherWebhookEvent>({ ...WEBHOOK_DELIVERY, name: `pusher-${app.id}-${index}`, url: webhook.url, secret: app.secret, format: pusherFormat(app) });
        hooks.senders.push({ sender, names: webhook.events ? new Set(webhook.events) : null });
      });
      this.byApp.set(app.id, hooks);
      if (this.wants(hooks, 'channel_occupied') || this.wants(hooks, 'channel_vacated') || this.wants(hooks, 'member_added') || this.wants(hooks, 'member_removed')) {
        events.track(`${app.topicPrefix}*`);
      }
    }
    if (this.byApp.size === 0) return;
    events.on((event) => {
      const name = FROM_LIFECYCLE[event.kind];
      if (!name || event.topic === undefined) return;
      const found = apps.appOfTopic(event.topic);
      // A Herald client may hold a topic of the app's namespace whose name is no Pusher channel (the HTTP API's channel
      // list leaves it out too), and a user's own channel is no channel to report: neither makes a webhook.
      if (!found || !PUSHER_CHANNEL.test(found.channel)) return;
      const hooks = this.byApp.get(found.app.id);
      if (!hooks) return;
      if (name === 'member_added' || name === 'member_removed') {
        const userId = event.uid === undefined ? null : PusherApps.userIdOf(found.app, event.uid);
        // A Herald client on a presence topic is no Pusher member: nothing to say.
        if (userId === null) return;
        this.send(hooks, { name, channel: found.channel, user_id: userId });
      } else {
        this.send(hooks, { name, channel: found.channel });
      }
    });
  }

  /** Whether `app` has a webhook that takes `name` (the protocol skips work for events nobody takes). */
  takes(app: PusherApp, name: PusherWebhookName): boolean {
    const hooks = this.byApp.get(app.id);
    return hooks !== undefined && this.wants(hooks, name);
  }

  /** A client sent `event` on `channel` (and it was published): `data` as its JSON text, `userId` on presence channels. */
  clientEvent(app: PusherApp, channel: string, event: string, data: string, socketId: string, userId: string | undefined): void {
    const hooks = this.byApp.get(app.id);
    if (hooks) this.send(hooks, { name: 'client_event', channel, event, data, socket_id: socketId, ...(userId !== undefined ? { user_id: userId } : {}) });
  }

  /** A client subscribed to a cache channel that had no event yet. */
  cacheMiss(app: PusherApp, channel: string): void {
    const hooks = this.byApp.get(app.id);
    if (hooks) this.send(hooks, { name: 'cache_miss', channel });
  }

  private wants(hooks: AppHooks, name: PusherWebhookName): boolean {
    return hooks.senders.some((entry) => entry.names === null || entry.names.has(name));
  }

  private send(hooks: AppHooks, event: PusherWebhookEvent): void {
    for (const { sender, names } of hooks.senders) if (names === null || names.has(event.name)) sender.send(event);
  }
}
