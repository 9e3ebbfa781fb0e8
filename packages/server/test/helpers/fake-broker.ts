import type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from '../../src/broker/broker.js';

/**
 * A broker with no network, for unit tests: it records what is handed to it
 * (publications, subscriptions, control messages) and delivers nothing by
 * itself. A test plays the other nodes by calling the sink (`sink.onControl`,
 * `sink.deliver`) or the unit under test directly.
 */
export class FakeBroker implements Broker {
  readonly name = 'fake';
  state: BrokerState = 'ready';
  sink: BrokerSink | undefined;
  readonly published: Publication[] = [];
  readonly subscribed = new Set<string>();
  /** Every `broadcast` message, parsed (control messages are JSON). */
  readonly broadcasts: unknown[] = [];
  /** Every `sendToNode` message, parsed, with its node. */
  readonly sent: Array<{ node: string; message: unknown }> = [];
  /** When set, `broadcast` and `sendToNode` reject with it (the broker is down). */
  failWith: Error | undefined;

  topicProblem(): string | null {
    return null;
  }

  async start(sink: BrokerSink): Promise<void> {
    this.sink = sink;
  }

  async publish(publication: Publication): Promise<PublishResult> {
    if (this.failWith) throw this.failWith;
    this.published.push(publication);
    return {};
  }

  subscribe(topic: string): void {
    this.subscribed.add(topic);
  }

  unsubscribe(topic: string): void {
    this.subscribed.delete(topic);
  }

  async broadcast(message: string): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.broadcasts.push(JSON.parse(message));
  }

  async sendToNode(node: string, message: string): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.sent.push({ node, message: JSON.parse(message) });
  }

  async close(): Promise<void> {
    this.state = 'closed';
  }

  /** The broadcasts of type `t` (`hb`, `delta`, `snap`, `want`, `bye`), in order. */
  broadcastsOf<T = Record<string, unknown>>(t: string): T[] {
    return this.broadcasts.filter((message) => (message as { t?: unknown }).t === t) as T[];
  }
}
