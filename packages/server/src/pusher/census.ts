import type { Broker } from '../broker/broker.js';
import type { Logger } from '../log.js';

/**
 * The census's control messages, on the broker's node channels
 * (`sendToNode`, dispatched by `ClusterRegistry.route`); `node` is the
 * sender. A question names either a topic prefix (every topic of this node
 * under it) or a list of topics; the answer has the subscriber count of
 * each topic asked about that has subscribers on the answering node.
 */
export type CensusMessage =
  | { t: 'pusher-census?'; node: string; id: number; prefix?: string; topics?: string[] }
  /** `more`: a part of an answer that has further parts (a node with many topics answers in several messages, in order). */
  | { t: 'pusher-census'; node: string; id: number; counts: Array<[string, number]>; more?: boolean };

/** What the census is asked: every topic under `prefix`, or the given `topics`. */
export type CensusQuery = { readonly prefix: string } | { readonly topics: readonly string[] };

/** Subscribers per topic, cluster-wide, and the nodes that did not answer in time (their subscribers are not counted). */
export interface CensusResult {
  readonly counts: Map<string, number>;
  readonly missing: string[];
}

export interface CensusHost {
  /** This node's topics with at least one subscriber (the hub's). */
  topicNames(): Iterable<string>;
  /** This node's subscribers of a topic (the hub's). */
  subscriberCount(topic: string): number;
  /** The other live nodes of the cluster (the registry's view), asked for their counts. */
  peers(): string[];
}

export interface CensusOptions {
  /** How long to wait for the other nodes' answers, in ms (`cluster.requestTimeout`). */
  readonly timeout: number;
  readonly log: Logger;
}

/** Most topics one answer carries; a node with more answers in several messages. */
const COUNTS_PER_MESSAGE = 5000;

interface Waiting {
  /** Nodes whose last part has not arrived. */
  readonly expected: Set<string>;
  readonly counts: Map<string, number>;
  done(): void;
}

/**
 * Subscriptions per topic across the cluster, for the Pusher HTTP API's
 * channel list and channel info (occupied, `subscription_count`): this
 * node's hub is read at once, every other live node is asked through the
 * broker (a scatter-gather: `pusher-census?` to each node's channel, each
 * answering `pusher-census` to the asker's), and the answers are summed. A
 * node that does not answer within `timeout` is left out of the sums and
 * named in `missing` (and logged at warn level): the answer says what
 * arrived rather than failing.
 */
export class ChannelCensus {
  private seq = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(
    private readonly nodeId: string,
    private readonly broker: Broker,
    private readonly host: CensusHost,
    private readonly options: CensusOptions,
  ) {}

  /** Questions waiting for their answers. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Subscribers of the topics `query` names (only those with at least one), summed over every node that answered in time. */
  count(query: CensusQuery): Promise<CensusResult> {
    const counts = this.local(query);
    const peers = this.host.peers().filter((node) => node !== this.nodeId);
    if (peers.length === 0) return Promise.resolve({ counts, missing: [] });
    const id = ++this.seq;
    const question: CensusMessage = { t: 'pusher-census?', node: this.nodeId, id, ...('prefix' in query ? { prefix: query.prefix } : { topics: [...query.topics] }) };
    return new Promise((resolve) => {
      const finish = (): void => {
        if (!this.waiting.delete(id)) return;
        clearTimeout(timer);
        const missing = [...waiting.expected];
        if (missing.length > 0) {
          this.options.log.warn({ nodes: missing, timeout: this.options.timeout }, 'pusher census: node(s) did not answer in time; their subscriptions are not counted');
        }
        resolve({ counts, missing });
      };
      const timer = setTimeout(finish, this.options.timeout);
      timer.unref();
      const waiting: Waiting = { expected: new Set(peers), counts, done: finish };
      this.waiting.set(id, waiting);
      const text = JSON.stringify(question);
      for (const node of peers) {
        this.broker.sendToNode(node, text).catch((err: unknown) => {
          this.options.log.debug({ node, err: (err as Error).message }, 'pusher census: question not sent');
        });
      }
    });
  }

  /** A census message from another node (the registry checked that it is an object from another node). */
  receive(message: CensusMessage): void {
    if (typeof message.id !== 'number' || typeof message.node !== 'string') return;
    if (message.t === 'pusher-census') {
      const waiting = this.waiting.get(message.id);
      if (!waiting || !waiting.expected.has(message.node) || !Array.isArray(message.counts)) return;
      for (const pair of message.counts) {
        if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'number') continue;
        waiting.counts.set(pair[0], (waiting.counts.get(pair[0]) ?? 0) + pair[1]);
      }
      // An answer in several parts: every part but the last has a `more` mark.
      if (message.more === true) return;
      waiting.expected.delete(message.node);
      if (waiting.expected.size === 0) waiting.done();
      return;
    }
    let query: CensusQuery;
    if (typeof message.prefix === 'string') query = { prefix: message.prefix };
    else if (Array.isArray(message.topics)) query = { topics: message.topics.filter((topic): topic is string => typeof topic === 'string') };
    else return;
    const counts = [...this.local(query)];
    const to = message.node;
    for (let start = 0; start === 0 || start < counts.length; start += COUNTS_PER_MESSAGE) {
      const part = counts.slice(start, start + COUNTS_PER_MESSAGE);
      const more = start + COUNTS_PER_MESSAGE < counts.length;
      const answer: CensusMessage = { t: 'pusher-census', node: this.nodeId, id: message.id, counts: part, ...(more ? { more: true } : {}) };
      this.broker.sendToNode(to, JSON.stringify(answer)).catch((err: unknown) => {
        this.options.log.debug({ node: to, err: (err as Error).message }, 'pusher census: answer not sent');
      });
    }
  }

  /** This node's subscribers of the topics `query` names (topics without any left out). */
  private local(query: CensusQuery): Map<string, number> {
    const counts = new Map<string, number>();
    if ('prefix' in query) {
      for (const topic of this.host.topicNames()) {
        if (!topic.startsWith(query.prefix)) continue;
        const count = this.host.subscriberCount(topic);
        if (count > 0) counts.set(topic, count);
      }
      return counts;
    }
    for (const topic of query.topics) {
      const count = this.host.subscriberCount(topic);
      if (count > 0) counts.set(topic, count);
    }
    return counts;
  }
}
