import { HeraldError } from '../errors.js';
import type { Refusal } from '../transport/transport.js';
import type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from './broker.js';

const ACCEPTED: PublishResult = Object.freeze({});

/** A message between a worker and the primary (`herald serve --workers`). */
export type IpcMessage =
  | { herald: 'hello'; node: string }
  | { herald: 'pub'; node: string; publication: Publication }
  | { herald: 'control'; node: string; to: string | null; message: string }
  /** A worker asks the primary to admit a connection from `ip` (see transport/admission.ts). */
  | { herald: 'admit'; node: string; id: number; ip: string }
  /** The primary's answer to `admit`, to worker `node`: null admits (the slot is held until `release`). */
  | { herald: 'admitted'; node: string; id: number; ip: string; refusal: Refusal | null }
  | { herald: 'release'; node: string; ip: string };

export function isIpcMessage(value: unknown): value is IpcMessage {
  return typeof value === 'object' && value !== null && typeof (value as { herald?: unknown }).herald === 'string';
}

/**
 * The broker of a worker process when several workers share one machine on
 * the memory broker: publications and control messages go to the primary
 * over the IPC channel, and the primary relays them to the other workers
 * (see cli/workers.ts). Order is kept per worker (one IPC channel, in order).
 */
export class IpcBroker implements Broker {
  readonly name = 'ipc';
  private sink: BrokerSink | null = null;
  private currentState: BrokerState = 'connecting';

  constructor(private readonly nodeId: string) {}

  get state(): BrokerState {
    return this.currentState;
  }

  topicProblem(): string | null {
    return null;
  }

  async start(sink: BrokerSink): Promise<void> {
    if (!process.send) throw new Error('the ipc broker runs only in a worker process');
    this.sink = sink;
    process.on('message', this.receive);
    process.on('disconnect', () => this.setState('down', 'primary gone'));
    this.send({ herald: 'hello', node: this.nodeId });
    this.setState('ready');
  }

  private readonly receive = (message: unknown): void => {
    if (!isIpcMessage(message) || message.node === this.nodeId) return;
    if (message.herald === 'pub') this.sink?.deliver(message.publication);
    else if (message.herald === 'control') this.sink?.onControl(message.message);
  };

  private setState(state: BrokerState, detail?: string): void {
    if (this.currentState === state || this.currentState === 'closed') return;
    this.currentState = state;
    this.sink?.onStateChange(state, detail);
  }

  /** Best effort: false when the primary is gone. A channel that closes meanwhile drops the message (the callback takes the error, nothing is thrown). */
  private send(message: IpcMessage): boolean {
    if (!process.connected || !process.send) return false;
    process.send(message, undefined, undefined, ignoreClosedChannel);
    return true;
  }

  publish(publication: Publication): Promise<PublishResult> {
    if (this.currentState !== 'ready' || !this.send({ herald: 'pub', node: this.nodeId, publication })) {
      return Promise.reject(new HeraldError('unavailable', 'the primary process is gone'));
    }
    return Promise.resolve(ACCEPTED);
  }

  subscribe(): void {}

  unsubscribe(): void {}

  async broadcast(message: string): Promise<void> {
    if (!this.send({ herald: 'control', node: this.nodeId, to: null, message })) throw new HeraldError('unavailable', 'the primary process is gone');
  }

  async sendToNode(nodeId: string, message: string): Promise<void> {
    if (!this.send({ herald: 'control', node: this.nodeId, to: nodeId, message })) throw new HeraldError('unavailable', 'the primary process is gone');
  }

  async close(): Promise<void> {
    this.currentState = 'closed';
    process.off('message', this.receive);
  }
}

/** A send on an IPC channel that closed meanwhile fails through its callback; without one, the process would get an unhandled 'error'. */
function ignoreClosedChannel(): void {}
