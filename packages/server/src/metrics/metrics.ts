import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type { PublicationSource } from '../herald.js';

/** What the metrics read from the gateway at scrape time. */
export interface MetricsSource {
  connectionsByProtocol(): Map<string, number>;
  topics(): number;
  subscriptions(): number;
  users(): number;
  /** Bytes queued per connection, for the queue gauges. */
  queuedBytes(): Iterable<number>;
  brokerName(): string;
  brokerReady(): boolean;
}

/**
 * Herald's Prometheus metrics, on a registry of its own (several gateways in
 * one process do not mix). Gauges are computed when scraped; the hot path only
 * bumps counters. No label carries a topic or a uid: cardinality stays bounded
 * by protocols, sources, close codes and routes.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connects: Counter<'protocol'>;
  readonly disconnects: Counter<'code' | 'by'>;
  readonly published: Counter<'source'>;
  readonly encoded: Counter;
  readonly delivered: Counter;
  readonly dropped: Counter;
  readonly filtered: Counter;
  readonly pushes: Counter;
  readonly fanoutSeconds: Histogram;
  readonly slowConsumers: Counter;
  readonly brokerReconnects: Counter;
  readonly gaps: Counter<'reason'>;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  /** Calls to the backend proxies, by proxy (subscribe, publish, rpc, refresh): one per call, retries included. */
  readonly proxyCalls: Counter<'proxy'>;
  /** Proxy calls that failed (no usable answer), by proxy and reason (timeout, unreachable, status, malformed). */
  readonly proxyErrors: Counter<'proxy' | 'reason'>;
  /** Retries of proxy calls, by proxy. */
  readonly proxyRetries: Counter<'proxy'>;
  /** How long proxy calls took, answered or failed, by proxy. */
  readonly proxySeconds: Histogram<'proxy'>;
  /** Lifecycle events emitted by this node, by kind. */
  readonly events: Counter<'kind'>;
  /** Events delivered (acknowledged by a webhook receiver, stored on the events topic), by sink. */
  readonly eventDeliveries: Counter<'sink'>;
  /** Delivery attempts of event batches tried again after a failure, by sink. */
  readonly eventRetries: Counter<'sink'>;
  /** Events given up, by sink and reason: refused, expired, overflow, shutdown. */
  readonly eventFailures: Counter<'sink' | 'reason'>;
  /** Each event sink's queue length, read when scraped (sinks register here). */
  readonly eventQueues = new Map<string, () => number>();

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'herald_connections',
      help: 'Open connections (WebSocket, SSE streams), by protocol (json, lhttp, raw, sse).',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        for (const [protocol, count] of source.connectionsByProtocol()) this.set({ protocol }, count);
      },
    });
    new Gauge({ name: 'herald_topics', help: 'Topics with at least one local subscriber.', registers, collect() { this.set(source.topics()); } });
    new Gauge({ name: 'herald_subscriptions', help: 'Local subscriptions (connection × topic).', registers, collect() { this.set(source.subscriptions()); } });
    new Gauge({ name: 'herald_users', help: 'Distinct uids with a connection on this node.', registers, collect() { this.set(source.users()); } });
    new Gauge({
      name: 'herald_writer_queue_bytes_max',
      help: 'Largest outbound queue of any connection (bytes written, not yet taken by the kernel).',
      registers,
      collect() {
        let max = 0;
        for (const bytes of source.queuedBytes()) if (bytes > max) max = bytes;
        this.set(max);
      },
    });
    new Gauge({
      name: 'herald_writer_queue_bytes',
      help: 'Outbound bytes queued over all connections.',
      registers,
      collect() {
        let sum = 0;
        for (const bytes of source.queuedBytes()) sum += bytes;
        this.set(sum);
      },
    });
    new Gauge({
      name: 'herald_broker_up',
      help: '1 when the broker is ready, 0 otherwise.',
      labelNames: ['broker'],
      registers,
      collect() {
        this.reset();
        this.set({ broker: source.brokerName() }, source.brokerReady() ? 1 : 0);
      },
    });
    this.connects = new Counter({ name: 'herald_connects_total', help: 'Connections accepted (WebSocket, SSE streams), by protocol (json, lhttp, raw, sse).', labelNames: ['protocol'], registers });
    this.disconnects = new Counter({ name: 'herald_disconnects_total', help: 'Connections closed, by close code and by whom.', labelNames: ['code', 'by'], registers });
    this.published = new Counter({ name: 'herald_messages_published_total', help: 'Publications received, by source (client, http, library, broker: from other nodes).', labelNames: ['source'], registers });
    this.encoded = new Counter({
      name: 'herald_messages_encoded_total',
      help: 'Messages serialised to JSON text for publication: once per publish, once for a whole multi-topic broadcast.',
      registers,
    });
    this.delivered = new Counter({ name: 'herald_messages_delivered_total', help: 'Publication frames written to connections.', registers });
    this.dropped = new Counter({ name: 'herald_messages_dropped_total', help: 'Publication frames not written: the connection was closing or over its queue limit.', registers });
    this.filtered = new Counter({ name: 'herald_messages_filtered_total', help: "Publication frames not written because the subscription's filter did not pass the publication's tags (live deliveries and recovery replays).", registers });
    this.pushes = new Counter({ name: 'herald_pushes_total', help: 'Pushes to users (/api/send, /send, library).', registers });
    this.fanoutSeconds = new Histogram({
      name: 'herald_publish_fanout_seconds',
      help: 'From a publication reaching this node to its frame handed to every local subscriber socket.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
    this.slowConsumers = new Counter({ name: 'herald_slow_consumer_disconnects_total', help: 'Connections closed with 1013 for going over their queue limit.', registers });
    this.brokerReconnects = new Counter({ name: 'herald_broker_reconnects_total', help: 'Times the broker became ready again after being down.', registers });
    this.gaps = new Counter({
      name: 'herald_gaps_total',
      help: 'Gap frames sent: times a topic\'s subscribers on this node were told they may have missed publications, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.httpRequests = new Counter({ name: 'herald_http_requests_total', help: 'HTTP API requests, by route, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.proxyCalls = new Counter({ name: 'herald_proxy_calls_total', help: 'Calls to the backend proxies (docs/backend.md), by proxy: subscribe, publish, rpc, refresh.', labelNames: ['proxy'], registers });
    this.proxyErrors = new Counter({
      name: 'herald_proxy_errors_total',
      help: 'Proxy calls that got no usable answer, by proxy and reason: timeout, unreachable, status (not 2xx, 401 or 403), malformed.',
      labelNames: ['proxy', 'reason'],
      registers,
    });
    this.proxyRetries = new Counter({ name: 'herald_proxy_retries_total', help: 'Proxy calls tried again after a failure where a retry is safe, by proxy.', labelNames: ['proxy'], registers });
    this.events = new Counter({ name: 'herald_events_total', help: 'Lifecycle events emitted by this node (docs/backend.md), by kind.', labelNames: ['kind'], registers });
    this.eventDeliveries = new Counter({ name: 'herald_event_deliveries_total', help: 'Lifecycle events delivered: acknowledged by a webhook receiver or stored on the events topic, by sink (webhook<N>, topic, ...).', labelNames: ['sink'], registers });
    this.eventRetries = new Counter({ name: 'herald_event_retries_total', help: 'Deliveries of a batch of lifecycle events tried again after a failure (network, timeout, 5xx, 408, 429), by sink.', labelNames: ['sink'], registers });
    this.eventFailures = new Counter({
      name: 'herald_event_failures_total',
      help: 'Lifecycle events given up, by sink and reason: refused (a 4xx), expired (maxAge), overflow (maxQueue), shutdown.',
      labelNames: ['sink', 'reason'],
      registers,
    });
    const queues = this.eventQueues;
    new Gauge({
      name: 'herald_event_queue',
      help: 'Lifecycle events waiting to be delivered, by sink.',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const [sink, size] of queues) this.set({ sink }, size());
      },
    });
    this.proxySeconds = new Histogram({
      name: 'herald_proxy_call_seconds',
      help: 'Duration of proxy calls (answered or failed, retries included), by proxy.',
      labelNames: ['proxy'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }
}
