import type { Server } from 'node:http';
import type { Broker, PublishResult } from '../../src/broker/broker.js';
import type { ClusterRegistry } from '../../src/cluster/registry.js';
import type { Gateway } from '../../src/internal.js';
import type { LiveStreams } from '../../src/history/catch-up.js';
import type { HistoryStore } from '../../src/history/history.js';
import type { Hub } from '../../src/hub/hub.js';
import type { Session } from '../../src/hub/session.js';
import type { Herald } from '../../src/index.js';
import type { IdempotencyCache } from '../../src/util/idempotency.js';

/**
 * What the integration tests reach inside a running Herald, beyond its public
 * API. Tests go through `internals(herald)` and never through the fields
 * themselves, so that when the internals move (issue #16, architecture v2)
 * this file is the only one of the tests that changes.
 */
export interface HeraldInternals {
  /** This node's hub: sessions by id and uid, subscribers by topic. */
  readonly hub: Hub;
  /** The live sessions of this node, by session id (the hub's map). */
  readonly sessions: ReadonlyMap<string, Session>;
  readonly broker: Broker;
  readonly history: HistoryStore;
  readonly cluster: ClusterRegistry;
  /** Publish results remembered by topic and idempotency key. */
  readonly idempotency: IdempotencyCache<PublishResult>;
  /** The HTTP server that also takes the WebSocket upgrades. */
  readonly httpServer: Server;
  /** Where this node's live stream of a topic with shared history stands (LiveStreams.position). */
  liveStream(topic: string): ReturnType<LiveStreams['position']>;
  /** Resolves once the broker carries every one of `topics` to this node; undefined when none is still being subscribed. */
  whenSubscribed(topics: readonly string[]): Promise<void> | undefined;
  /** Closes a session from the server side with this close code and reason, as Herald itself does. */
  closeSession(session: Session, code: number, reason: string): void;
  /** The topics this node keeps as a user's persistent topics (the server API's `persistent` subscriptions). */
  persistentTopics(uid: string): string[];
}

/** The internals of `herald` (read when used, so they are never stale). */
export function internals(herald: Herald): HeraldInternals {
  const gateway = herald as Gateway;
  return {
    get hub() {
      return gateway.hub;
    },
    get sessions() {
      return gateway.hub.sessions;
    },
    get broker() {
      return gateway.broker;
    },
    get history() {
      return gateway.parts.history;
    },
    get cluster() {
      return gateway.parts.cluster;
    },
    get idempotency() {
      return gateway.parts.publisher.idempotency;
    },
    get httpServer() {
      return gateway.server!;
    },
    liveStream: (topic) => gateway.parts.subscriptions.live.position(topic),
    whenSubscribed: (topics) => gateway.parts.subscriptions.whenCarried(topics),
    closeSession: (session, code, reason) => gateway.closeSession(session, code, reason),
    persistentTopics: (uid) => [...gateway.parts.users.persistent.of(uid)],
  };
}
