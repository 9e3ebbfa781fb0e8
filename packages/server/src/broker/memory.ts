import { HeraldError } from '../errors.js';
import type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from './broker.js';

const ACCEPTED: PublishResult = Object.freeze({});

/**
 * The embedded broker for a single node: there are no other nodes to carry
 * anything to, so a publication is accepted as soon as it is made (the
 * gateway has already delivered it locally).
 */
export class MemoryBroker implements Broker {
  readonly name = 'memory';
  private currentState: BrokerState = 'connecting';

  get state(): BrokerState {
    return this.currentState;
  }

  topicProblem(): string | null {
    return null;
  }

  async start(sink: BrokerSink): Promise<void> {
    this.currentState = 'ready';
    sink.onStateChange('ready');
  }

  publish(_publication: Publication): Promise<PublishResult> {
    if (this.currentState !== 'ready') return Promise.reject(new HeraldError('unavailable', `broker is ${this.currentState}`));
    return Promise.resolve(ACCEPTED);
  }

  subscribe(): void {}

  unsubscribe(): void {}

  async broadcast(): Promise<void> {}

  async sendToNode(): Promise<void> {}

  async close(): Promise<void> {
    this.currentState = 'closed';
  }
}
