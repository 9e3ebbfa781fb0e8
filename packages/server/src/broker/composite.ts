import type { HistoryStore } from '../history/history.js';
import type { Broker, BrokerNamespaceInfo, BrokerSink, BrokerState, Publication, PublishResult } from './broker.js';

/**
 * NATS for everything, with Redis alongside for the topics that keep history
 * (`broker: nats` with `historyStore: redis`): two brokers as one. The history store's script
 * publishes on Redis, which is what orders a topic's publications between
 * nodes (see history/redis-history.ts); so those topics are carried by Redis,
 * every other topic and the cluster's control messages by NATS.
 */
export class CompositeBroker implements Broker {
  readonly name: string;

  /** `history` must keep a shared history (`sharedHistory`); `keepsHistory` says which topics it carries. */
  constructor(
    readonly main: Broker,
    readonly history: Broker & { sharedHistory(): HistoryStore },
    private readonly keepsHistory: (topic: string) => boolean,
  ) {
    this.name = `${main.name}+${history.name}`;
  }

  get namespaces(): readonly BrokerNamespaceInfo[] {
    return [...(this.main.namespaces ?? []), ...(this.history.namespaces ?? [])];
  }

  /** The history part's store: its appends publish on the history part, which carries those topics. */
  sharedHistory(): HistoryStore {
    return this.history.sharedHistory();
  }

  get state(): BrokerState {
    const states = [this.main.state, this.history.state];
    if (states.includes('closed')) return 'closed';
    if (states.every((state) => state === 'ready')) return 'ready';
    return states.includes('down') ? 'down' : 'connecting';
  }

  /** Asks the broker that carries the topic. */
  topicProblem(topic: string): string | null {
    return (this.keepsHistory(topic) ? this.history : this.main).topicProblem(topic);
  }

  async start(sink: BrokerSink): Promise<void> {
    let reported: BrokerState | null = null;
    const report = (detail?: string) => {
      const state = this.state;
      if (state === reported) return;
      reported = state;
      sink.onStateChange(state, detail);
    };
    await Promise.all([
      this.main.start({
        deliver: (publication) => sink.deliver(publication),
        onControl: (message) => sink.onControl(message),
        onStateChange: (_state, detail) => report(detail),
        onResumed: (carries) => sink.onResumed?.((topic) => !this.keepsHistory(topic) && (carries === null || carries(topic))),
      }),
      // Only history publications travel on Redis here; its own control channels stay unused.
      this.history.start({
        deliver: (publication) => sink.deliver(publication),
        onControl: () => {},
        onStateChange: (_state, detail) => report(detail && `redis: ${detail}`),
        onResumed: (carries) => sink.onResumed?.((topic) => this.keepsHistory(topic) && (carries === null || carries(topic))),
      }),
    ]);
  }

  publish(publication: Publication): Promise<PublishResult> {
    return (this.keepsHistory(publication.topic) ? this.history : this.main).publish(publication);
  }

  subscribe(topic: string): void | Promise<void> {
    return (this.keepsHistory(topic) ? this.history : this.main).subscribe(topic);
  }

  unsubscribe(topic: string): void {
    (this.keepsHistory(topic) ? this.history : this.main).unsubscribe(topic);
  }

  caughtUp(topic: string): Promise<void> | undefined {
    return (this.keepsHistory(topic) ? this.history : this.main).caughtUp?.(topic);
  }

  broadcast(message: string): Promise<void> {
    return this.main.broadcast(message);
  }

  sendToNode(nodeId: string, message: string): Promise<void> {
    return this.main.sendToNode(nodeId, message);
  }

  async close(): Promise<void> {
    await Promise.all([this.main.close(), this.history.close()]);
  }
}
