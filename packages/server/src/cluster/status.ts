import type { Broker } from '../broker/broker.js';
import type { HeraldStatus } from '../herald.js';
import type { Hub } from '../hub/hub.js';
import { VERSION } from '../version.js';
import type { ClusterRegistry, NodeStats } from './registry.js';

/** What a node's figures are made of. */
export interface StatusSource {
  readonly hub: Hub;
  readonly broker: Broker;
  readonly cluster: ClusterRegistry;
  readonly nodeId: string;
  /** Under `herald serve --workers`: the node this worker is part of. */
  readonly workerOf: string | undefined;
  /** ms since the epoch. */
  readonly startedAt: number;
  /** Figures of connections already closed, and slow-consumer closes. */
  readonly counts: { framesIn: number; framesOut: number; slowConsumers: number };
  /** Publications made on this node. */
  readonly publications: number;
}

/** Frames in and out of this process: closed connections' plus the live ones'. */
function frames(source: StatusSource): { messagesIn: number; messagesOut: number } {
  let messagesIn = source.counts.framesIn;
  let messagesOut = source.counts.framesOut;
  for (const session of source.hub.sessions.values()) {
    messagesIn += session.framesIn;
    messagesOut += session.framesOut;
  }
  return { messagesIn, messagesOut };
}

/** This process's figures, as its cluster heartbeats tell them to the other nodes (a worker's carry more, for its node's status). */
export function nodeStats(source: StatusSource): NodeStats {
  const { hub, workerOf } = source;
  const own: NodeStats = { connections: hub.sessions.size, users: hub.userCount, topics: hub.topicCount, subscriptions: hub.subscriptions };
  if (workerOf === undefined) return own;
  return { ...own, workerOf, ...frames(source), publications: source.publications, deliveries: hub.deliveries, slowConsumerDisconnects: source.counts.slowConsumers };
}

/**
 * The node's status (what `/api/status` answers). A worker of `herald serve
 * --workers` answers for its whole node: its own figures plus its sibling
 * workers' last heartbeats.
 */
export function nodeStatus(source: StatusSource): HeraldStatus {
  const { hub, cluster, workerOf, counts } = source;
  const { messagesIn, messagesOut } = frames(source);
  const own = { connections: hub.sessions.size, users: hub.userCount, topics: hub.topicCount, subscriptions: hub.subscriptions };
  // This node's entry from the figures at hand: `nodeStats` would walk the sessions again under --workers.
  const view = cluster.view(workerOf === undefined ? own : { ...own, workerOf });
  const clusterSum = view.reduce((sum, node) => ({ nodes: sum.nodes + 1, connections: sum.connections + node.connections, users: sum.users + node.users }), { nodes: 0, connections: 0, users: 0 });
  const workers = workerOf === undefined ? [] : view.filter((node) => node.workerOf === workerOf);
  const sum = (pick: (node: NodeStats) => number | undefined, mine: number): number =>
    workers.length === 0 ? mine : workers.reduce((total, node) => total + (node.self ? mine : (pick(node) ?? 0)), 0);
  return {
    node: workerOf ?? source.nodeId,
    version: VERSION,
    uptime: Math.round((Date.now() - source.startedAt) / 1000),
    broker: { name: source.broker.name, state: source.broker.state },
    connections: sum((n) => n.connections, own.connections),
    topics: sum((n) => n.topics, own.topics),
    subscriptions: sum((n) => n.subscriptions, own.subscriptions),
    users: sum((n) => n.users, own.users),
    messagesIn: sum((n) => n.messagesIn, messagesIn),
    messagesOut: sum((n) => n.messagesOut, messagesOut),
    publications: sum((n) => n.publications, source.publications),
    deliveries: sum((n) => n.deliveries, hub.deliveries),
    slowConsumerDisconnects: sum((n) => n.slowConsumerDisconnects, counts.slowConsumers),
    ...(workerOf === undefined ? {} : { workers: { count: Math.max(1, workers.length), id: source.nodeId } }),
    cluster: clusterSum,
  };
}
