/**
 * The broker carries publications between Herald nodes. Everything above it
 * (client publish, HTTP API, library API) goes through `gateway.publish`,
 * which calls `broker.publish`; every node's broker hands what it receives to
 * its hub through the sink. The in-memory broker is the one-node case of the
 * same contract, so swapping in Redis or NATS changes nothing above it.
 *
 * Contract every implementation keeps:
 * - Ordering: publications to one topic, made by one node in one sequence of
 *   `publish` calls, are delivered to every node's sink in that order.
 * - Delivery: at most once per node. A broker never delivers a publication
 *   twice; across nodes a publication may be lost while the broker is down
 *   (history, when configured, is how clients recover what they missed).
 * - `publish` resolves when the broker has accepted the publication for every
 *   node (the memory broker: once it is handed to the local sink). It rejects
 *   with `HeraldError('unavailable')` when the broker cannot take it; it never
 *   resolves for a publication it dropped.
 * - `subscribe(topic)` is called when the first local connection subscribes to
 *   a topic and `unsubscribe(topic)` when the last one leaves. A broker may
 *   deliver topics nobody subscribed to; the hub ignores them.
 * - `state` is `ready` when publish can succeed; every change is reported
 *   through `onStateChange`, which drives `/readyz`.
 */
export type BrokerState = 'connecting' | 'ready' | 'down' | 'closed';

/** One publication as it travels between nodes. */
export interface Publication {
  topic: string;
  /** The message as JSON text, embedded verbatim in every frame that carries it. */
  payload: string;
  /** Position in the topic's history, when history is on for the topic. */
  offset?: number;
  epoch?: string;
}

export interface PublishResult {
  offset?: number;
  epoch?: string;
}

export interface BrokerSink {
  /** Delivers a publication to this node's local subscribers. */
  deliver(publication: Publication): void;
  /** Reports a change of the broker's state. */
  onStateChange(state: BrokerState, detail?: string): void;
}

export interface Broker {
  readonly name: string;
  readonly state: BrokerState;
  start(sink: BrokerSink): Promise<void>;
  publish(publication: Publication): Promise<PublishResult>;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(): Promise<void>;
}
