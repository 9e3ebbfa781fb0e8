import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';

/** What the node holding a stream did with relayed commands (transport/stream-sessions.ts `FeedResult`). */
export type RelayAnswer = 'fed' | 'not_found' | 'busy';

/** What a relayed send came to: the holding node's answer, no answer in time, or the broker could not carry it. */
export type RelayResult = RelayAnswer | 'timeout' | 'unavailable';

/** The relay's control messages, on the broker's node channels (`sendToNode`); `node` is the sender. */
export type RelayMessage =
  | { t: 'relay'; node: string; id: number; session: string; frames: string[] }
  | { t: 'relayed'; node: string; id: number; result: RelayAnswer };

export interface RelayHost {
  /** Feeds commands to a stream of this node; resolves once they were handed to its session in order. */
  feed(session: string, frames: string[]): Promise<RelayAnswer>;
  /** Whether `node` may be a live node of the cluster (false: a send for it is answered `not_found` at once). */
  mayHold(node: string): boolean;
}

export interface RelayOptions {
  /** How long to wait for the holding node's answer, in ms. */
  readonly timeout: number;
  readonly log: Logger;
}

const ANSWERS: ReadonlySet<string> = new Set<RelayAnswer>(['fed', 'not_found', 'busy']);

/**
 * Commands for an HTTP stream held by another node, carried there through
 * the broker (no sticky sessions): a `relay` message with a request id on
 * the holding node's channel (`broker.sendToNode`), which feeds them to the
 * stream and answers `relayed` with the same id on the sender's channel.
 * An answer that does not come within `timeout` is `timeout` (the commands
 * may still be handled after it). Control messages reach `receive` through
 * the cluster registry's dispatch (`ClusterRegistry.route`).
 */
export class Relay {
  private seq = 0;
  private readonly waiting = new Map<number, (result: RelayResult) => void>();

  constructor(
    private readonly nodeId: string,
    private readonly broker: Broker,
    private readonly host: RelayHost,
    private readonly options: RelayOptions,
  ) {}

  /** Requests waiting for their answer. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Hands `frames` to the stream `session` (its token) on `node`, and resolves with what became of them. */
  send(node: string, session: string, frames: string[]): Promise<RelayResult> {
    if (node === this.nodeId || !this.host.mayHold(node)) return Promise.resolve('not_found');
    const id = ++this.seq;
    const message: RelayMessage = { t: 'relay', node: this.nodeId, id, session, frames };
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish('timeout'), this.options.timeout);
      const finish = (result: RelayResult): void => {
        if (!this.waiting.delete(id)) return;
        clearTimeout(timer);
        resolve(result);
      };
      this.waiting.set(id, finish);
      this.broker.sendToNode(node, JSON.stringify(message)).catch((err: unknown) => {
        this.options.log.debug({ node, err: (err as Error).message }, 'stream relay: not sent');
        finish('unavailable');
      });
    });
  }

  /** A relay control message from another node (the registry checked that it is an object from another node). */
  receive(message: RelayMessage): void {
    if (typeof message.id !== 'number' || typeof message.node !== 'string') return;
    if (message.t === 'relayed') {
      if (ANSWERS.has(message.result)) this.waiting.get(message.id)?.(message.result);
      return;
    }
    if (typeof message.session !== 'string' || !Array.isArray(message.frames) || !message.frames.every((frame) => typeof frame === 'string')) return;
    const from = message.node;
    const id = message.id;
    this.host.feed(message.session, message.frames).then(
      (result) => this.answer(from, id, result),
      (err: unknown) => {
        this.options.log.error({ err, node: from }, 'stream relay: feeding failed');
        this.answer(from, id, 'not_found');
      },
    );
  }

  private answer(node: string, id: number, result: RelayAnswer): void {
    const message: RelayMessage = { t: 'relayed', node: this.nodeId, id, result };
    this.broker.sendToNode(node, JSON.stringify(message)).catch((err: unknown) => {
      this.options.log.debug({ node, err: (err as Error).message }, 'stream relay: answer not sent');
    });
  }
}
