import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { topicMatches } from './topics.js';
import { pathPatternProblem } from './util/paths.js';
import proxyAddr from '@fastify/proxy-addr';
import { FORWARDING_HEADERS } from './util/client-address.js';
import { closest, parseDuration, parseSize } from './util/units.js';

/**
 * The configuration schema: the single source of every option, its default
 * and its validation. Sources are merged flags > environment > file >
 * defaults, then validated once at start-up; a bad option is reported by its
 * dotted name, never discovered later.
 */

const duration = z.union([z.number().int().min(0), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const ms = parseDuration(value);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a duration (use e.g. 500, "500ms", "25s", "2m")` });
    return z.NEVER;
  }
  return ms;
});

const size = z.union([z.number().int().min(1), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const bytes = parseSize(value);
  if (bytes === null || bytes < 1) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a size (use e.g. 65536, "64KiB", "1MiB")` });
    return z.NEVER;
  }
  return bytes;
});

/** Accepts a list, or a comma-separated string (handy in environment variables). */
function listOf<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (value) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
    z.array(item),
  );
}

/** A URL path, exact or a prefix ending in `*` (see util/paths.ts). */
const pathPattern = z.string().superRefine((value, ctx) => {
  const problem = pathPatternProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A backend URL Herald calls (a proxy): http or https. */
/** Whether a URL carries credentials (`user:password@`), which fetch refuses on every request (and which logs would show). */
function hasCredentials(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

const NO_CREDENTIALS = 'a URL with credentials (user:password@) is refused (no request could be made with it): give them as a header instead, e.g. headers: {authorization: "Basic ..."}, or let the network restrict who reaches the endpoint';

const backendUrl = z
  .string()
  .url()
  .refine((value) => /^https?:\/\//i.test(value), 'a proxy URL is http:// or https://')
  .refine((value) => !hasCredentials(value), NO_CREDENTIALS);

/** A topic pattern: an exact topic, or a prefix ending in `*` (the only place a `*` may be). */
const topicPattern = z
  .string()
  .min(1)
  .refine((value) => !value.slice(0, -1).includes('*'), "a topic pattern is an exact topic or a prefix ending in '*' ('*' only at the end)");

/** Request headers Herald sets on every webhook request, which `headers` may not replace. */
const RESERVED_WEBHOOK_HEADERS = ['content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature'];

/** What every proxy endpoint has besides its URL (docs/backend.md). */
const proxyCall = {
  /** How long one call may take, retries included; past it the client's command is answered `unavailable`. */
  timeout: duration.refine((ms) => ms >= 1, 'a proxy timeout is at least 1 ms').default(3_000),
  /** Headers of the connection's HTTP request (WebSocket upgrade, SSE or stream request) sent to the backend; a connection keeps only these. */
  forwardHeaders: listOf(z.string().min(1).transform((name) => name.toLowerCase())).default([]),
  /** Further attempts after a failure, only where a retry is safe (docs/backend.md), within `timeout`. */
  retries: z.number().int().min(0).max(5).default(1),
};

/** A subscribe or publish proxy: the topics it is asked about (exact, or a prefix ending in `*`) and its endpoint. */
const topicProxy = z.strictObject({ pattern: z.string().min(1), url: backendUrl, ...proxyCall });

/** The kinds of lifecycle events (docs/backend.md, "Lifecycle events"). */
export const EVENT_KINDS = ['topic_occupied', 'topic_vacated', 'join', 'leave', 'member_added', 'member_removed', 'user_online', 'user_offline', 'connection_closed'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/**
 * A webhook secret: Standard Webhooks' `whsec_<base64>` (the key is the
 * decoded bytes, at least 16), or any other string of at least 24
 * characters (the key is its UTF-8 bytes).
 */
const webhookSecret = z.string().superRefine((value, ctx) => {
  if (value.startsWith('whsec_')) {
    const key = value.slice(6);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length < 16) ctx.addIssue({ code: 'custom', message: 'a whsec_ secret is whsec_ followed by the base64 of at least 16 bytes' });
  } else if (value.length < 24) {
    ctx.addIssue({ code: 'custom', message: 'a webhook secret is at least 24 characters long (or whsec_<base64>)' });
  }
});

const eventKinds = listOf(z.enum(EVENT_KINDS));

/**
 * How webhooks are delivered unless configured: `events.webhooks[]`'s
 * defaults, and the settings of the Pusher apps' webhooks (not configurable,
 * as Pusher's are not). Times in ms.
 */
export const WEBHOOK_DELIVERY = { batchWindow: 200, maxBatch: 100, timeout: 5_000, retryDelay: 1_000, maxRetryDelay: 60_000, maxAge: 3_600_000, maxQueue: 10_000 } as const;

export const configSchema = z.strictObject({
  /** TCP port for HTTP and WebSocket. 0 picks a free port. */
  port: z.number().int().min(0).max(65535).default(8080),
  /** Interface to listen on. */
  host: z.string().min(1).default('0.0.0.0'),
  /** Path of the WebSocket endpoint. */
  wsPath: z.string().startsWith('/').default('/ws'),
  sse: z
    .strictObject({
      /** Serve SSE streams (`GET <path>?topic=...`): the JSON protocol's server frames as server-sent events. */
      enabled: z.boolean().default(true),
      /** Path of the SSE endpoint. */
      path: z.string().startsWith('/').default('/sse'),
    })
    .prefault({}),
  /** Identifier of this node (shown in status; used by brokers). Random when unset. */
  nodeId: z.string().min(1).max(64).optional(),
  /** API keys accepted as `Authorization: Bearer <key>`. Without any, the HTTP API answers loopback callers only. */
  apiKeys: listOf(z.string().min(12, 'an API key must be at least 12 characters long')).default([]),
  /**
   * Host names (without port) the key-less HTTP API answers besides loopback ones (`localhost`, `*.localhost`,
   * 127.0.0.0/8, `[::1]`). Requests with any other `Host` are refused (DNS rebinding). Unused with apiKeys.
   */
  allowedHosts: listOf(z.string().min(1).transform((host) => host.toLowerCase())).default([]),
  /** Which broker carries publications between nodes: `memory` (one node), `redis` or `nats`. */
  broker: z.enum(['memory', 'redis', 'nats']).default('memory'),
  /**
   * Longest wait for the broker to confirm a publication (Redis: the reply to
   * PUBLISH or to the history script; NATS: the answer to a flush). Past it,
   * or when the connection drops first, the publish fails with `unavailable`
   * (HTTP 503); it is never sent again by Herald.
   */
  publishTimeout: duration.refine((ms) => ms >= 1, 'publishTimeout must be at least 1 ms').default(5_000),
  redis: z
    .strictObject({
      /** Redis URL (redis://, rediss://, with user and password if needed). */
      url: z.string().url().default('redis://127.0.0.1:6379'),
      /** Herald's namespace on Redis: prepended to every topic to make its channel (and to Herald's own channels and keys). Not empty. */
      prefix: z.string().min(1, 'must not be empty: it is Herald\'s namespace on Redis (use redis.rawTopics for bare channels)').default('herald:'),
      /** Topics (exact or `prefix*`) whose Redis channel is the bare topic name, for raw publishers (`PUBLISH bookings ...`). Opens them to every Redis client. */
      rawTopics: listOf(z.string().min(1)).default([]),
      /** Redis Sentinel addresses (`host:port`); when set, Herald asks them for the master instead of using `url`'s host. */
      sentinels: listOf(z.string().regex(/^[^:\s]+:\d+$/, 'a sentinel is host:port')).default([]),
      /** The master's name as the sentinels know it. */
      sentinelName: z.string().min(1).default('mymaster'),
    })
    .prefault({}),
  nats: z
    .strictObject({
      /** NATS server URL, or several separated by commas. */
      url: z.string().min(1).default('nats://127.0.0.1:4222'),
      /** Herald's namespace on NATS: prepended to every topic to make its subject (and to Herald's own subjects). Not empty. */
      prefix: z.string().min(1, 'must not be empty: it is Herald\'s namespace on NATS (use nats.rawTopics for bare subjects)').default('herald.'),
      /** Topics (exact or `prefix*`) whose NATS subject is the bare topic name, for raw publishers and Lhttp nodes. Opens them to every NATS client. */
      rawTopics: listOf(z.string().min(1)).default([]),
    })
    .prefault({}),
  lhttp: z
    .strictObject({
      /**
       * Paths (besides wsPath and the raw endpoints) where a WebSocket speaks LHTTP even without the `lhttp`
       * subprotocol: the original's by default. A path is exact, or a prefix ending in `*` (`/*`: every path).
       */
      paths: listOf(pathPattern).default(['/', '/echo']),
      upstream: z
        .strictObject({
          /** URL prefixes `upstream:` may call (e.g. "https://api.example.com/hooks/"). Empty: upstream is off. */
          allow: listOf(z.string().url()).default([]),
          /** How long an upstream call may take. */
          timeout: duration.default(5_000),
          /** Send the upstream's answer back to the client as `LHTTP/1.0 upstream` with a `status` header. */
          reply: z.boolean().default(false),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Raw endpoints, for clients that speak no protocol (the Redis-fed seed's page): a WebSocket on one of
   * these paths is subscribed by the server to `topics` and gets each message as its plain text; the text
   * it sends is published to `publish`, after `prefix`. First matching endpoint wins; raw paths come
   * before `lhttp.paths`.
   */
  raw: z
    .array(
      z.strictObject({
        /** Path, exact or a prefix ending in `*`. */
        path: pathPattern,
        /** Topics every connection on this path is subscribed to as it opens. */
        topics: listOf(z.string().min(1)).default([]),
        /** Topic the text a connection sends is published to; false: sending is refused. */
        publish: z.union([z.string().min(1), z.literal(false)]).default(false),
        /** Prepended to the text a connection sends before it is published (the seed's `RECEIVED: `). */
        prefix: z.string().default(''),
      }),
    )
    .default([]),
  /** Topics with history: first matching rule wins; a pattern is an exact topic or a prefix ending in `*`. */
  history: z
    .array(
      z.strictObject({
        pattern: z.string().min(1),
        /** Publications kept per topic. */
        size: z.number().int().min(1).max(1_000_000).default(100),
        /** How long a publication is kept. */
        ttl: duration.default(300_000),
        /**
         * Cache mode, for topics that carry a state (a price, a score, a task's progress): a new subscriber is
         * sent the latest publication right after its subscribe reply, and a recovery sends only the latest
         * one rather than every missed publication (docs/backend.md#cache-mode).
         */
        cache: z.boolean().default(false),
      }),
    )
    .default([]),
  /** Where history is kept: `redis` (shared by every node; needs the redis broker), `memory` (this process), `auto`: redis with the redis broker, else memory. */
  historyStore: z.enum(['auto', 'memory', 'redis']).default('auto'),
  /** Bytes of history kept over all topics on this node (memory history); the oldest entries go first. */
  historyMaxBytes: size.default(64 * 1024 * 1024),
  /** Topics with presence: who is subscribed. */
  presence: z
    .array(
      z.strictObject({
        pattern: z.string().min(1),
        /** Send `join` and `leave` events to the topic's subscribers. */
        joinLeave: z.boolean().default(false),
        /** Most entries a presence list returns (counts are always exact). */
        maxList: z.number().int().min(1).default(1000),
      }),
    )
    .default([]),
  /** How long a publish's idempotencyKey is remembered. */
  idempotencyWindow: duration.default(300_000),
  /** Most idempotency keys a node remembers at once; past it the oldest are forgotten first. */
  idempotencyMaxKeys: z.number().int().min(1).default(100_000),
  /** Most memory the remembered keys may take (estimated: 256 bytes per key plus 2 per character of topic and key); past it the oldest go first. */
  idempotencyMaxBytes: size.default(32 * 1024 * 1024),
  cluster: z
    .strictObject({
      /** How often a node tells the others it is alive (a node silent for three intervals is forgotten). */
      heartbeatInterval: duration.default(5_000),
      /** How long a server API call on a user's connections (subscribe, unsubscribe, disconnect, list) waits for the other nodes that hold the user. */
      requestTimeout: duration.refine((ms) => ms >= 1, 'cluster.requestTimeout must be at least 1 ms').default(5_000),
    })
    .prefault({}),
  /** Lifecycle events (docs/backend.md, "Lifecycle events"): delivered as signed webhooks and/or on a topic with history. */
  events: z
    .strictObject({
      /** Topics (exact or `prefix*`) whose occupancy (topic_occupied/vacated) and presence (join/leave, member_added/removed) make events. None by default. */
      topics: listOf(topicPattern).default([]),
      /** The kinds of events this node emits at all (default: every kind). */
      kinds: eventKinds.default([...EVENT_KINDS]),
      topic: z
        .strictObject({
          /** A Herald topic each event is published to (with history, by the node that emits it), for backends that subscribe. Unset: none. */
          name: z.string().min(1).optional(),
          /** Events the topic's history keeps (10,000 when unset: server.ts; unset without a name, as neither means anything then). */
          size: z.number().int().min(1).max(1_000_000).optional(),
          /** How long the topic's history keeps an event (24 h when unset). */
          ttl: duration.optional(),
        })
        .prefault({}),
      /** Endpoints events are POSTed to, signed (Standard Webhooks), batched, retried until acknowledged. */
      webhooks: z
        .array(
          z.strictObject({
            url: z
              .string()
              .url()
              .refine((value) => /^https?:\/\//i.test(value), 'a webhook URL is http:// or https://')
              .refine((value) => !hasCredentials(value), NO_CREDENTIALS),
            /** The signing key: `whsec_<base64>` (Standard Webhooks) or a string of at least 24 characters. */
            secret: webhookSecret,
            /** Only these kinds (default: every kind the node emits). */
            kinds: eventKinds.optional(),
            /** Only events about these topics (exact or `prefix*`); events without a topic (user_*, connection_closed) are then left out. */
            topics: listOf(topicPattern).optional(),
            /** How long events wait to be sent together in one request. */
            batchWindow: duration.default(WEBHOOK_DELIVERY.batchWindow),
            /** Most events in one request. */
            maxBatch: z.number().int().min(1).max(10_000).default(WEBHOOK_DELIVERY.maxBatch),
            /** How long one request may take before it counts as failed (and is retried). */
            timeout: duration.refine((ms) => ms >= 1, 'a webhook timeout is at least 1 ms').default(WEBHOOK_DELIVERY.timeout),
            /** The first retry's ceiling; each further retry doubles it (full jitter: a random wait up to the ceiling). */
            retryDelay: duration.refine((ms) => ms >= 1, 'retryDelay is at least 1 ms').default(WEBHOOK_DELIVERY.retryDelay),
            /** The ceiling's ceiling. */
            maxRetryDelay: duration.default(WEBHOOK_DELIVERY.maxRetryDelay),
            /** A request not acknowledged this long after its first attempt is given up (logged, counted). */
            maxAge: duration.default(WEBHOOK_DELIVERY.maxAge),
            /** Most events waiting for this endpoint; past it the oldest are dropped (logged, counted). */
            maxQueue: z.number().int().min(1).default(WEBHOOK_DELIVERY.maxQueue),
            /** Extra request headers (an `authorization` for the receiver, say); content-type and the signature's headers are Herald's. */
            headers: z
              .record(z.string(), z.string())
              .refine((headers) => !Object.keys(headers).some((name) => RESERVED_WEBHOOK_HEADERS.includes(name.toLowerCase())), `headers may not set ${RESERVED_WEBHOOK_HEADERS.join(', ')}: Herald sets them (the body's type and its signature)`)
              .default({}),
          }),
        )
        .default([]),
    })
    .prefault({}),
  /** Who may publish from a WebSocket connection; a token's `publish` claim grants more. */
  clientPublish: z.enum(['all', 'authenticated', 'none']).default('all'),
  /** Origins browsers may connect from (exact, e.g. "https://app.example.com"). Empty: any origin. */
  allowedOrigins: listOf(z.string().min(1)).default([]),
  /**
   * Which proxies in front of Herald to believe about the client address (the `trust proxy` convention of
   * Express and Fastify): `false` none; a number N: the N nearest hops (`true` is 1: one proxy); a list of
   * addresses, CIDRs or `loopback`, `linklocal`, `uniquelocal`. The client is the right-most untrusted hop of `proxyHeader`.
   */
  trustProxy: z
    .union([
      z.boolean(),
      z.number().int().min(0),
      listOf(z.string().min(1)).superRefine((list, ctx) => {
        try {
          proxyAddr.compile(list);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `not an address, CIDR or loopback/linklocal/uniquelocal: ${(err as Error).message}` });
        }
      }),
    ])
    .default(false),
  /** The header the trusted proxies write the client address in; the other forwarding headers are ignored. */
  proxyHeader: z.enum(FORWARDING_HEADERS).default('x-forwarded-for'),
  http: z
    .strictObject({
      /** How long a client has to send a request's headers (WebSocket upgrades too); past it: 408 and the socket is closed. */
      headersTimeout: duration.default(10_000),
      /** How long a client has to send a whole request, headers and body; past it: 408 and the socket is closed. 0: no limit. */
      requestTimeout: duration.default(30_000),
      /** How long an idle keep-alive connection is kept open between requests. */
      keepAliveTimeout: duration.default(5_000),
      /** A socket with no traffic at all for this long is closed (not WebSocket connections: they have the heartbeat). 0: no limit. */
      idleTimeout: duration.default(60_000),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Allow connections with no identity. */
      anonymous: z.boolean().default(true),
      /** Accept the push-centre seed's `{"uid":"123"}` login, with no proof of identity. Unsafe: for trusted networks. */
      insecureUidLogin: z.boolean().default(false),
      /** Without anonymous connections: how long a connection has to log in. */
      loginTimeout: duration.default(10_000),
      /** After a token expires: how long the client has to send a fresh one before it is closed with 4001. */
      expiryGrace: duration.default(30_000),
      /** Topics whose name starts with this need a permission (token `topics` claim or a subscribe token). */
      privatePrefix: z.string().min(1).default('private:'),
      /** `<userPrefix><uid>` topics may be subscribed only by that uid. */
      userPrefix: z.string().min(1).default('user:'),
      jwt: z
        .strictObject({
          /** Shared secret for HS256/HS384/HS512. */
          secret: z.string().min(32, 'a JWT secret must be at least 32 characters long').optional(),
          /** PEM public key for RS*, PS*, ES* or EdDSA tokens. */
          publicKey: z.string().min(1).optional(),
          /** URL of a JSON Web Key Set (cached; fetched again on an unknown `kid`). */
          jwksUrl: z.string().url().optional(),
          /** After fetching the JWKS, how long before a token with an unknown `kid` may make Herald fetch it again. */
          jwksCooldown: duration.default(30_000),
          /** Accepted algorithms. Default: the HMAC ones with a secret, the asymmetric ones with a key or JWKS. */
          algorithms: listOf(z.string()).optional(),
          issuer: z.string().optional(),
          audience: z.string().optional(),
          /** Allowed clock skew when checking exp and nbf. */
          clockTolerance: duration.default(5_000),
        })
        .prefault({}),
      connectHook: z
        .strictObject({
          /** Backend endpoint Herald POSTs to for every new connection; it answers the uid and topics. */
          url: z
            .string()
            .url()
            .refine((value) => !hasCredentials(value), NO_CREDENTIALS)
            .optional(),
          /** How long the backend has to answer; past it the connection is refused with 4000. */
          timeout: duration.default(3_000),
          /** Request headers of the WebSocket upgrade forwarded to the backend. */
          forwardHeaders: listOf(z.string().min(1)).default(['cookie', 'authorization']),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Proxies to the application's backend over HTTP (docs/backend.md): a client's subscribe and publish on
   * matching topics, its `rpc` commands, and a periodic refresh of connections the connect hook identified.
   * The first rule whose pattern matches wins.
   */
  proxy: z
    .strictObject({
      /** Asked before a client subscribes to a matching topic: allow (with presence info, a payload to deliver first), refuse, or let Herald's rules decide. */
      subscribe: z.array(topicProxy).default([]),
      /** Asked before a client's publication on a matching topic is published: allow, refuse, or replace the message. */
      publish: z.array(topicProxy).default([]),
      /** `{"action":"rpc","method":...}` commands whose method matches (exact, or a prefix ending in `*`) go to this endpoint; its answer is the reply. */
      rpc: z.array(z.strictObject({ method: z.string().min(1), url: backendUrl, ...proxyCall })).default([]),
      refresh: z
        .strictObject({
          /** Asked periodically whether a connection the connect hook identified (no JWT) is still valid and what it may hold. */
          url: backendUrl.optional(),
          /** How often each such connection is checked (spread: up to 10% earlier). */
          interval: duration.refine((ms) => ms >= 10, 'proxy.refresh.interval is at least 10 ms').default(60_000),
          ...proxyCall,
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * The Pusher Channels protocol (docs/pusher.md): off unless `enabled`. Each
   * app is isolated from the others: its channels are the Herald topics under
   * its `topicPrefix`, its clients connect at `/app/{key}`, its HTTP API is at
   * `/apps/{id}/...`, signed with its secret.
   */
  pusher: z
    .strictObject({
      enabled: z.boolean().default(false),
      apps: z
        .array(
          z.strictObject({
            /** The app id (`/apps/{id}/...` on the HTTP API, the `appId` of the server libraries). */
            id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'an app id is 1 to 64 letters, digits, - or _'),
            /** The public key clients connect with (`/app/{key}`), and that signs `key:signature` channel authorisations. */
            key: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'an app key is 1 to 128 letters, digits, - or _'),
            /** The shared secret: HMAC-SHA256 key of channel authorisations, HTTP API signatures and webhooks. */
            secret: z.string().min(12, 'an app secret must be at least 12 characters long'),
            /**
             * Secrets still accepted while a new `secret` rolls out (docs/pusher.md,
             * "Rotating a secret"): channel authorisations, sign-ins and HTTP API
             * requests signed with one of these verify; Herald signs (webhooks) with `secret` only.
             */
            previousSecrets: z.array(z.string().min(12, 'an app secret must be at least 12 characters long')).max(4).default([]),
            /**
             * The Herald topic a channel of this app is: `topicPrefix + channel`.
             * Default `pusher:{id}:`. Herald clients reach an app's channels under
             * these names (when permissions allow); prefixes of two apps may not overlap.
             */
            topicPrefix: z.string().optional(),
            /** Whether clients may send `client-*` events on private and presence channels. */
            clientEvents: z.boolean().default(false),
            /** Most `client-*` events one connection may send per second. */
            clientEventRate: z.number().int().min(1).default(10),
            /** Most connections this app may hold on this node; 0: no limit but the node's. */
            maxConnections: z.number().int().min(0).default(0),
            /** Most members of one presence channel (Pusher's documented convention is 100). */
            maxPresenceMembers: z.number().int().min(1).default(100),
            /** Largest `user_info` of a presence member (its JSON text), in bytes: every member's goes to each new subscriber (Pusher: 1 KB). */
            maxPresenceInfoBytes: size.default(1024),
            /** Largest `data` of one event, in bytes (Pusher's limit is 10 KB). */
            maxEventBytes: size.default(10 * 1024),
            /** Most channels one HTTP trigger may name (Pusher: 100). */
            maxEventChannels: z.number().int().min(1).default(100),
            /** Most events one HTTP batch may hold (Pusher: 10). */
            maxBatchEvents: z.number().int().min(1).default(10),
            /** Seconds of silence after which a client should ping (`activity_timeout` of `pusher:connection_established`). */
            activityTimeout: z.number().int().min(1).max(3600).default(120),
            /** Pusher webhooks of this app: where they go and which events (default: all). */
            webhooks: z
              .array(
                z.strictObject({
                  url: backendUrl,
                  events: z.array(z.enum(['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss'])).optional(),
                }),
              )
              .default([]),
          }),
        )
        .default([]),
      /** How far an HTTP API request's `auth_timestamp` may be from this node's clock, in seconds (Pusher: 600). */
      timestampWindow: z.number().int().min(1).default(600),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Largest WebSocket frame accepted from a client; a larger one closes the connection with 1009. */
      maxFrameBytes: size.default(64 * 1024),
      /** Largest message (its JSON text) accepted for publication from any source. */
      maxMessageBytes: size.default(64 * 1024),
      /** Topics one connection may be subscribed to at once. */
      maxTopicsPerConnection: z.number().int().min(1).default(128),
      /** Longest topic name. */
      maxTopicLength: z.number().int().min(1).max(4096).default(255),
      /** Outbound bytes a connection may have queued (ours plus the socket's); over it the connection is closed with 1013. */
      maxQueueBytes: size.default(1024 * 1024),
      /** Largest HTTP request body. */
      maxHttpBodyBytes: size.default(1024 * 1024),
      /** Most publications in one HTTP batch. */
      maxBatchSize: z.number().int().min(1).default(1000),
      /** Commands a connection may send per second on average (token bucket); over it: `rate_limited`. */
      commandsPerSecond: z.number().min(0.1).default(100),
      /** Burst of commands a connection may send at once. */
      commandBurst: z.number().int().min(1).default(200),
      /** New subscriptions a connection may make per second on average (token bucket), whatever the protocol; over it: `rate_limited`. Bounds subscribe/unsubscribe churn and the presence join/leave events one connection causes. */
      subscriptionsPerSecond: z.number().min(0.1).default(20),
      /** New subscriptions a connection may make at once (a page subscribing to its topics, a client resubscribing after a reconnection). */
      subscriptionBurst: z.number().int().min(1).default(200),
      /** Connections one uid may hold on this node; over it the new one is closed with 4029. */
      maxConnectionsPerUser: z.number().int().min(1).default(100),
      /** Connections one client address may hold; over it the upgrade is answered 429. */
      maxConnectionsPerIp: z.number().int().min(1).default(1000),
      /** New connections per second on this node (token bucket, burst twice that); over it the upgrade is answered 503. */
      connectionsPerSecond: z.number().min(1).default(1000),
      /** New connections per second from one client address (token bucket, burst twice that), checked before the node's; over it the upgrade is answered 429. */
      connectionsPerSecondPerIp: z.number().min(0.1).default(100),
      /** Frames one WebSocket message may be split into; a message in more fragments closes the connection with 1008 (bounds the memory an unfinished message holds). */
      maxMessageFragments: z.number().int().min(1).default(128),
    })
    .prefault({}),
  heartbeat: z
    .strictObject({
      /** How often the server pings an idle connection. */
      interval: duration.default(25_000),
      /** How long a pinged connection has to show a sign of life before it is terminated. */
      timeout: duration.default(10_000),
      /** Also send `{"action":"ping"}` text frames, for clients that cannot see WebSocket pings. */
      appPing: z.boolean().default(false),
      /**
       * The slowest reading (bytes per second) for which a pinged connection whose bytes all left for the
       * kernel is given time to read them before its timeout starts (see hub/liveness.ts); 0: no such time.
       */
      minReadRate: z.union([z.literal(0), size]).default(16 * 1024),
    })
    .prefault({}),
  /** HTTP streaming (docs/transports.md): a long POST response carrying the JSON protocol's frames, commands as short POSTs to any node. */
  stream: z
    .strictObject({
      /** Serve `POST <path>` (open a stream) and `POST <path>/send` (commands for a stream). */
      enabled: z.boolean().default(true),
      /** Where a stream is opened; commands go to `<path>/send`. */
      path: z
        .string()
        .regex(/^\/[^?#]*[^/?#]$/, 'a path such as /stream: starts with /, does not end with /, no ? or #')
        .default('/stream'),
      /** How long a node waits for the node holding a stream to take a relayed `send`; past it: 504. */
      relayTimeout: duration.refine((ms) => ms >= 1, 'stream.relayTimeout must be at least 1 ms').default(5_000),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** Connections are closed spread evenly over this window, so that they do not all reconnect at once. */
      drainWindow: duration.default(2_000),
      /** After the window: how long shutdown waits for connections to close and queues to drain before cutting them. */
      timeout: duration.default(5_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default('info'),
      /** Human-readable logs. Default: on when stdout is a terminal. */
      pretty: z.boolean().optional(),
    })
    .prefault({}),
  demo: z
    .strictObject({
      /** Serve the demo pages at `/` (`npm start` turns them on in demo/herald.yaml; most need demo.backend). */
      enabled: z.boolean().default(false),
      /** Folder holding the demo pages. Default: the `demo/` folder of the Herald checkout. */
      dir: z.string().optional(),
      /** The demos' stand-in backend at /demo/* (token minting, fake tasks and bookings), for callers on this machine. Never in production. */
      backend: z.boolean().default(false),
    })
    .prefault({}),
});

/** The configuration as written by a user: every field optional. */
export type HeraldConfigInput = z.input<typeof configSchema>;
/** The validated configuration with every default filled in. */
export type HeraldConfig = z.output<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

type Plain = Record<string, unknown>;

function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function setPath(target: Plain, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Plain;
  }
  node[path[path.length - 1]!] = value;
}

/** Environment variables read by the CLI client commands, not by the server. */
const CLIENT_ENV = new Set(['HERALD_URL', 'HERALD_API_KEY', 'HERALD_CONFIG', 'HERALD_WORKER_CONFIG__INTERNAL']);

function snakeToCamel(word: string): string {
  return word.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Parses an option value given as text (env or `--set`): JSON when it parses, otherwise the string. */
export function parseOptionValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function camelToSnake(word: string): string {
  return word.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

/** The `HERALD_*` variable that sets the option at `path`. */
function envName(path: string[]): string {
  return `HERALD_${path.map(camelToSnake).join('__')}`;
}

/**
 * `HERALD_LIMITS__MAX_FRAME_BYTES=1024` becomes `{limits: {maxFrameBytes: 1024}}`.
 * A `HERALD_*` variable that names no option is not an error (environments
 * carry unrelated variables such as `HERALD_DIR`): it is left out and
 * reported through `warn`, with the closest variable when there is one.
 */
export function configFromEnv(env: NodeJS.ProcessEnv, warn: (message: string) => void = () => {}): Plain {
  const out: Plain = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('HERALD_') || CLIENT_ENV.has(name) || value === undefined) continue;
    const path = name.slice('HERALD_'.length).split('__').map(snakeToCamel);
    const known = objectShapeAt(path.slice(0, -1));
    const key = path[path.length - 1]!;
    if (!known || !Object.hasOwn(known, key)) {
      const hint = known ? closest(key, Object.keys(known)) : undefined;
      warn(`${name} is not a Herald option: ignored${hint ? ` (did you mean ${envName([...path.slice(0, -1), hint])}?)` : ''}`);
      continue;
    }
    setPath(out, path, parseOptionValue(value));
  }
  return out;
}

/** `limits.maxFrameBytes=1024` (from `--set`) becomes `{limits: {maxFrameBytes: 1024}}`. */
export function configFromAssignments(assignments: string[]): Plain {
  const out: Plain = {};
  for (const assignment of assignments) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new ConfigError([`--set ${assignment}: expected name=value, e.g. --set limits.maxFrameBytes=1024`]);
    setPath(out, assignment.slice(0, eq).split('.'), parseOptionValue(assignment.slice(eq + 1)));
  }
  return out;
}

export function readConfigFile(file: string): Plain {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read config file ${file}: ${(err as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([`config file ${file} does not parse: ${(err as Error).message}`]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) throw new ConfigError([`config file ${file} must hold a mapping of options`]);
  return parsed;
}

type SchemaNode = { def?: { innerType?: unknown }; shape?: Record<string, unknown> };

/** The object schema at a path, with default/optional wrappers taken off. */
function objectShapeAt(path: PropertyKey[]): Record<string, unknown> | undefined {
  let shape: Record<string, unknown> | undefined = configSchema.shape;
  for (const key of path) {
    let node = shape?.[key as string] as SchemaNode | undefined;
    while (node?.def?.innerType) node = node.def.innerType as SchemaNode;
    shape = node?.shape;
  }
  return shape;
}

/** Dotted names of every option, in schema order. */
export function optionNames(path: string[] = []): string[] {
  const names: string[] = [];
  for (const key of Object.keys(objectShapeAt(path) ?? {})) {
    const nested = objectShapeAt([...path, key]);
    names.push(...(nested ? optionNames([...path, key]) : [[...path, key].join('.')]));
  }
  return names;
}

/** Validates a merged configuration object; throws ConfigError naming every bad option. */
export function validateConfig(input: unknown): HeraldConfig {
  const result = configSchema.safeParse(input);
  if (result.success) {
    const crossed = crossProblems(result.data);
    if (crossed.length > 0) throw new ConfigError(crossed);
    return result.data;
  }
  const problems: string[] = [];
  for (const issue of result.error.issues) {
    const where = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const name = where ? `${where}.${key}` : key;
        const hint = closest(key, Object.keys(objectShapeAt(issue.path) ?? {}));
        problems.push(`${name}: unknown option${hint ? ` (did you mean ${where ? `${where}.` : ''}${hint}?)` : ''}`);
      }
    } else {
      problems.push(`${where || '(root)'}: ${issue.message}`);
    }
  }
  throw new ConfigError(problems);
}

/** What no single option's schema sees: options that contradict each other (the lifecycle events' mostly). */
function crossProblems(config: HeraldConfig): string[] {
  const problems: string[] = [];
  const events = config.events;
  if (events.topic.name === undefined && (events.topic.size !== undefined || events.topic.ttl !== undefined)) {
    problems.push('events.topic: size or ttl given without a name: no events topic is published (set events.topic.name, or remove them)');
  }
  for (const [index, webhook] of events.webhooks.entries()) {
    if (webhook.retryDelay > webhook.maxRetryDelay) problems.push(`events.webhooks.${index}.retryDelay: ${webhook.retryDelay} ms is more than maxRetryDelay (${webhook.maxRetryDelay} ms)`);
  }
  const name = events.topic.name;
  if (name !== undefined) {
    // The events topic's own occupancy tracked would feed back: its subscribers' comings and goings make events published to it.
    const covering = events.topics.filter((pattern) => topicMatches([pattern], name));
    if (covering.length > 0) problems.push(`events.topics: ${covering.map((p) => JSON.stringify(p)).join(', ')} covers the events topic ${JSON.stringify(name)}: its own subscribers would make events published to it (narrow the pattern)`);
    for (const [index, endpoint] of config.raw.entries()) {
      // A raw endpoint subscribes its connections without a token: the events topic would be open to anyone on that path.
      if (endpoint.topics.some((topic) => topicMatches([topic], name) || topicMatches([name], topic))) problems.push(`raw.${index}.topics: the events topic ${JSON.stringify(name)} may not be a raw endpoint's topic (it carries user ids; it is read with a token that grants it)`);
      if (endpoint.publish === name) problems.push(`raw.${index}.publish: the events topic ${JSON.stringify(name)} is published to by Herald only`);
    }
    if (config.pusher.enabled) {
      for (const [index, app] of config.pusher.apps.entries()) {
        const prefix = app.topicPrefix ?? `pusher:${app.id}:`;
        if (name.startsWith(prefix)) problems.push(`pusher.apps.${index}.topicPrefix: ${JSON.stringify(prefix)} makes the events topic ${JSON.stringify(name)} a channel of app ${app.id} (choose another name or prefix)`);
      }
    }
  }
  return problems;
}

export interface ConfigSources {
  /** Path of a YAML or JSON config file. */
  file?: string;
  /** Environment to read `HERALD_*` variables from. */
  env?: NodeJS.ProcessEnv;
  /** Options from flags; they beat every other source. */
  flags?: Plain;
  /** Told about each `HERALD_*` variable that is not an option (ignored, not an error). */
  warn?: (message: string) => void;
}

/** Merges the sources (flags > env > file > defaults) and validates the result. */
export function loadConfig(sources: ConfigSources = {}): HeraldConfig {
  let merged: Plain = {};
  if (sources.file) merged = deepMerge(merged, readConfigFile(sources.file));
  if (sources.env) merged = deepMerge(merged, configFromEnv(sources.env, sources.warn));
  if (sources.flags) merged = deepMerge(merged, sources.flags);
  return validateConfig(merged);
}

export { deepMerge as mergeConfig };

/** A copy of the configuration safe to print: keys, secrets and URL passwords masked. */
export function maskSecrets(config: HeraldConfig): HeraldConfig {
  const mask = (value: string): string => (value.length <= 8 ? '***' : `${value.slice(0, 4)}***`);
  const maskUrl = (value: string): string => {
    try {
      const url = new URL(value);
      if (url.password) url.password = '***';
      return url.toString();
    } catch {
      return value;
    }
  };
  const copy = structuredClone(config);
  copy.apiKeys = copy.apiKeys.map(mask);
  if (copy.auth.jwt.secret !== undefined) copy.auth.jwt.secret = '***';
  copy.redis.url = maskUrl(copy.redis.url);
  copy.nats.url = copy.nats.url.split(',').map(maskUrl).join(',');
  // A proxy URL is printed as written unless it holds a password.
  const maskPassword = (value: string): string => (/\/\/[^/@]*:[^/@]*@/.test(value) ? maskUrl(value) : value);
  for (const rule of [...copy.proxy.subscribe, ...copy.proxy.publish, ...copy.proxy.rpc]) rule.url = maskPassword(rule.url);
  if (copy.proxy.refresh.url !== undefined) copy.proxy.refresh.url = maskPassword(copy.proxy.refresh.url);
  for (const webhook of copy.events.webhooks) {
    webhook.secret = '***';
    webhook.url = maskPassword(webhook.url);
  }
  return copy;
}

/** What start-up warnings need to know beyond the configuration: what the broker turned out to be. */
export interface StartupFacts {
  /** The history store is shared by the cluster (Redis). */
  historyShared: boolean;
  brokerName: string;
  /** The brokers' namespaces that open bare topics (`redis.rawTopics`, `nats.rawTopics`). */
  rawNamespaces: ReadonlyArray<{ kind: 'redis' | 'nats'; prefix: string; rawTopics: readonly string[] }>;
  /** API keys, a JWT key or a connect hook were configured by the operator (the demo backend's own secret does not count). */
  credentialsConfigured: boolean;
}

/** The warnings a server logs as it starts: settings that are legal but open something or lose something. Pure. */
export function startupWarnings(config: HeraldConfig, facts: StartupFacts): Array<{ message: string; detail?: object }> {
  const warnings: Array<{ message: string; detail?: object }> = [];
  if (config.apiKeys.length === 0) {
    warnings.push({ message: 'no apiKeys configured: the HTTP API answers loopback callers only (configure apiKeys to open it to other hosts)' });
  }
  if (config.history.length > 0 && !facts.historyShared && facts.brokerName !== 'memory') {
    warnings.push({ message: "history is kept in each process's memory: with several nodes or workers, offsets are per node (use the redis broker for a shared history)" });
  }
  if (config.demo.enabled && config.demo.backend) {
    warnings.push({ message: 'demo.backend is on: /demo/* mints tokens for any uid to callers on this machine; turn it off in production' });
  }
  for (const namespace of facts.rawNamespaces) {
    if (namespace.rawTopics.length === 0) continue;
    const names = namespace.kind === 'redis' ? 'channels' : 'subjects';
    warnings.push({
      detail: { rawTopics: namespace.rawTopics },
      message: `${namespace.kind}.rawTopics: these topics are bare ${namespace.kind} ${names}, outside Herald's namespace ${JSON.stringify(namespace.prefix)}: any ${namespace.kind} client can publish to them and read them`,
    });
  }
  if (config.auth.insecureUidLogin) {
    warnings.push({ message: 'auth.insecureUidLogin is on: any client can claim any uid with {"uid":...}; use it only on a trusted network' });
  }
  if (config.proxy.refresh.url !== undefined && config.auth.connectHook.url === undefined) {
    warnings.push({ message: 'proxy.refresh.url is set but auth.connectHook.url is not: only connections the connect hook identified are refreshed, so none will be' });
  }
  if (facts.credentialsConfigured && config.allowedOrigins.length === 0) {
    warnings.push({ message: 'credentials are configured but allowedOrigins is empty: browsers on any origin may connect' });
  }
  return warnings;
}
