import type { HistoryStore } from '../history/history.js';
import type { Publication, PublishResult } from '../publication.js';

/**
 * The broker carries publications and control messages between Herald nodes.
 * Everything above it (client publish, HTTP API, library API) goes through
 * `Herald.publish`, which delivers to this node's subscribers and then hands
 * the publication to `broker.publish` for the other nodes; each node's broker
 * gives what it receives from others to its hub through the sink. The
 * in-memory broker is the one-node case of the same contract, so swapping in
 * Redis or NATS changes nothing above it.
 *
 * Contract every implementation keeps:
 * - Ordering: publications to one topic made by one node, in one sequence of
 *   `publish` calls, reach every other node in that order.
 * - Interruption: when the link that carries publications to this node drops
 *   and comes back, the broker calls the sink's `onResumed` once its
 *   subscriptions are active again, so that Herald can replay what it missed
 *   from history or tell the connections that they may have missed some.
 * - Delivery: at most once per node. A node never gets its own publications
 *   back (the broker drops them), and while the broker is down publications
 *   do not reach other nodes (history, when configured, is how clients
 *   recover what they missed).
 * - `publish` resolves when the broker has accepted the publication for the
 *   other nodes. It rejects with `HeraldError('unavailable')` when it cannot
 *   (broker down): never a silent success.
 * - A payload on a topic's channel that a non-Herald publisher sent (a raw
 *   Redis `PUBLISH`, a `nats pub`) is delivered as the message: its text when
 *   it is valid JSON, otherwise the text as a JSON string.
 * - `subscribe(topic)` is called when the first local connection subscribes to
 *   a topic and `unsubscribe(topic)` when the last one leaves; the broker holds
 *   one subscription per topic per node, and restores them all by itself after
 *   a reconnection. `subscribe` may return a promise that resolves once the
 *   subscription is active, so that a client is told "subscribed" only when
 *   publications from every node will reach it.
 * - `broadcast` and `sendToNode` carry the cluster's control messages (user
 *   registry, heartbeats, pushes); they are best effort and reach the sink's
 *   `onControl` on the other nodes (and, for broadcast, maybe this one).
 * - `state` is `ready` when publish can succeed; every change is reported
 *   through `onStateChange`, which drives `/readyz`.
 */
export type BrokerState = 'connecting' | 'ready' | 'down' | 'closed';

export type { LhttpPublication, Publication, PublishResult } from '../publication.js';

export interface BrokerSink {
  /** Delivers a publication from another node (or a raw publisher) to this node's subscribers. */
  deliver(publication: Publication): void;
  /** A control message from another node. */
  onControl(message: string): void;
  /** Reports a change of the broker's state. */
  onStateChange(state: BrokerState, detail?: string): void;
  /**
   * The broker's subscriptions on this node were interrupted (its subscriber
   * link dropped) and are active again: publications made meanwhile did not
   * reach this node. `carries` names the topics concerned (null: every topic).
   */
  onResumed?(carries: ((topic: string) => boolean) | null): void;
}

/** A broker's topic namespace on its server: Herald's prefix, and the topics mapped to bare names (`rawTopics`). */
export interface BrokerNamespaceInfo {
  readonly kind: 'redis' | 'nats';
  readonly prefix: string;
  readonly rawTopics: readonly string[];
}

export interface Broker {
  readonly name: string;
  readonly state: BrokerState;
  /** The namespaces this broker uses on its servers (none: the memory broker, or a custom one). */
  readonly namespaces?: readonly BrokerNamespaceInfo[];
  /**
   * A history store kept in the broker's own server and shared by every node
   * (Redis), whose `append` also publishes the publication to every node in
   * offset order (`appendPublishes`). Undefined: the broker keeps no history,
   * and history (when configured) is kept in each process's memory.
   */
  sharedHistory?(): HistoryStore;
  /** A topic this broker cannot carry (beyond Herald's own topic rule), or null. */
  topicProblem(topic: string): string | null;
  start(sink: BrokerSink): Promise<void>;
  publish(publication: Publication): Promise<PublishResult>;
  /** Resolves (when it returns a promise) once the broker delivers the topic's publications to this node. */
  subscribe(topic: string): void | Promise<void>;
  unsubscribe(topic: string): void;
  /**
   * Resolves once every publication on `topic` that the broker had accepted
   * before the call has been handed to the sink on this node (a round trip on
   * the subscriber link, which delivers in order). Undefined: delivery is
   * synchronous (memory).
   */
  caughtUp?(topic: string): Promise<void> | undefined;
  /** A control message to every node. */
  broadcast(message: string): Promise<void>;
  /** A control message to one node. */
  sendToNode(nodeId: string, message: string): Promise<void>;
  close(): Promise<void>;
}
