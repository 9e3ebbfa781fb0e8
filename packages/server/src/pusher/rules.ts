import type { HeraldConfig } from '../config.js';
import type { PusherApps } from './apps.js';

/** How long a cache channel keeps its last event (Pusher: 30 minutes). */
export const CACHE_CHANNEL_TTL = 30 * 60 * 1000;

/** The channel prefixes of Pusher's cache channels: each is in cache mode. */
const CACHE_PREFIXES = ['cache-', 'private-cache-', 'private-encrypted-cache-', 'presence-cache-'];

/**
 * The configuration with what each Pusher app's channels mean in Herald's
 * terms, put before the configured rules (the first matching rule wins):
 * a presence rule (with join/leave events) for its `presence-` channels, and
 * a cache-mode history rule (the last event, 30 minutes) for its cache
 * channels. Unchanged when the protocol is off.
 */
export function withPusherRules(config: HeraldConfig, apps: PusherApps): HeraldConfig {
  if (!config.pusher.enabled || apps.size === 0) return config;
  const presence: HeraldConfig['presence'] = [];
  const history: HeraldConfig['history'] = [];
  for (const app of apps) {
    presence.push({ pattern: `${app.topicPrefix}presence-*`, joinLeave: true, maxList: Math.max(1000, app.maxPresenceMembers) });
    for (const prefix of CACHE_PREFIXES) history.push({ pattern: `${app.topicPrefix}${prefix}*`, size: 1, ttl: CACHE_CHANNEL_TTL, cache: true });
  }
  return { ...config, presence: [...presence, ...config.presence], history: [...history, ...config.history] };
}

/**
 * The topic prefixes of every app's channels that need an authorisation:
 * `private-` (encrypted ones too), `presence-` and `#server-to-user-`. Herald
 * clients reach them only with a grant, as `auth.privatePrefix` topics; a
 * Pusher connection gets one from its protocol once it verified the
 * channel's signature.
 */
export function restrictedPrefixes(config: HeraldConfig, apps: PusherApps): string[] {
  if (!config.pusher.enabled) return [];
  return [...apps].flatMap((app) => [`${app.topicPrefix}private-`, `${app.topicPrefix}presence-`, `${app.topicPrefix}#server-to-user-`]);
}
