import { HeraldError } from '../errors.js';
import type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from './broker.js';

const ACCEPTED: PublishResult = Object.freeze({});

/**
 * The embedded broker for a single node: a publication is handed straight to
 * the local hub, synchronously, so per-topic order is call order.
 */
export class MemoryBroker implements Broker {
  readonly name = 'memory';
  private sink: BrokerSink | null = null;
  private currentState: BrokerState = 'connecting';

  get state(): BrokerState {
    return this.currentState;
  }

  async start(sink: BrokerSink): Promise<void> {
    this.sink = sink;
    this.currentState = 'ready';
    sink.onStateChange('ready');
  }

  publish(publication: Publication): Promise<PublishResult> {
    const sink = this.sink;
    if (!sink || this.currentState !== 'ready') {
      return Promise.reject(new HeraldError('unavailable', `broker is ${this.currentState}`));
    }
    sink.deliver(publication);
    return Promise.resolve(ACCEPTED);
  }

  subscribe(): void {}

  unsubscribe(): void {}

  async close(): Promise<void> {
    this.currentState = 'closed';
    this.sink = null;
  }
}
