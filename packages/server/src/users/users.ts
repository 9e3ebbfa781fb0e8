import type { Broker } from '../broker/broker.js';
import { HeraldError } from '../errors.js';
import type { ConnectionView, DisconnectOptions, UserResult, UserSubscribeOptions, UserUnsubscribeOptions } from '../herald.js';
import type { Logger } from '../log.js';
import { PersistentTopics } from './persistent.js';
import { UserSessions, type UserSessionsHost } from './sessions.js';

type Op = 'subscribe' | 'unsubscribe' | 'disconnect' | 'list';

/** The server API's control messages between nodes (`ClusterRegistry.route`); `node` is the sender. */
export type UserMessage =
  /** Do `op` on the user's connections; `answer`: the nodes asked to answer (any node that holds the user answers too). */
  | { t: 'user'; node: string; id: number; op: Op; uid: string; topics?: string[]; persistent?: boolean; reason?: string; code?: number; answer: string[] }
  | { t: 'user-done'; node: string; id: number; count: number; connections?: ConnectionView[] }
  /** A node that (re)joined asks for the persistent topics. */
  | { t: 'user-topics?'; node: string }
  | { t: 'user-topics'; node: string; entries: Array<[string, string[]]> };

export interface UsersOptions extends UserSessionsHost {
  readonly nodeId: string;
  readonly broker: Broker;
  /** Which other nodes hold a user (the cluster registry's replicated view). */
  readonly cluster: { nodesHolding(uid: string): string[] };
  readonly log: Logger;
  /** How long to wait for the other nodes' answers, in ms (`cluster.requestTimeout`). */
  readonly timeout: number;
  topicProblem(topic: string): string | null;
}

interface Waiting {
  expected: Set<string>;
  count: number;
  nodes: number;
  connections: ConnectionView[];
  done(problem: string | null): void;
}

/** Entries per `user-topics` answer. */
const ENTRIES_PER_MESSAGE = 2000;
const REASON_MAX = 100;

/**
 * The server API on users' connections, cluster-wide (docs/backend.md):
 * subscribe them to topics or unsubscribe them (now, and with `persistent`
 * as their new connections arrive), disconnect them, list them. Each call
 * is done here first (users/sessions.ts), then on the other nodes the
 * cluster registry says hold the user, through the broker's control
 * messages: `sendToNode` to each, or a `broadcast` when the call changes
 * the persistent topics every node keeps (users/persistent.ts). Each node
 * answers with what it did; the call resolves once every node asked has
 * answered, or rejects with `unavailable` after `timeout`, saying what was
 * done.
 */
export class Users {
  readonly persistent: PersistentTopics;
  readonly here: UserSessions;
  private seq = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly options: UsersOptions) {
    this.persistent = new PersistentTopics(options.maxTopicsPerConnection, options.timeout);
    this.here = new UserSessions(options);
  }

  async subscribe(uid: string, topics: string | readonly string[], options: UserSubscribeOptions = {}): Promise<UserResult> {
    const list = this.checked(uid, topics);
    const persistent = options.persistent === true;
    if (persistent && this.persistent.countWith(uid, list) > this.options.maxTopicsPerConnection) {
      throw new HeraldError('too_many_topics', `user ${uid} would hold ${this.persistent.countWith(uid, list)} persistent topics, over limits.maxTopicsPerConnection (${this.options.maxTopicsPerConnection})`);
    }
    if (persistent) this.persistent.add(uid, list);
    const count = this.here.subscribe(uid, list);
    return this.ask({ op: 'subscribe', uid, topics: list, ...(persistent ? { persistent } : {}) }, count, persistent, 'subscribed');
  }

  async unsubscribe(uid: string, topics: string | readonly string[], options: UserUnsubscribeOptions = {}): Promise<UserResult> {
    const list = this.checked(uid, topics);
    const reason = this.reason(options.reason, 'server');
    // Persistent topics are kept by every node: their removal goes to every node.
    const everywhere = this.persistent.holdsAny(uid, list);
    this.persistent.remove(uid, list);
    const count = this.here.unsubscribe(uid, list, reason);
    return this.ask({ op: 'unsubscribe', uid, topics: list, reason }, count, everywhere, 'unsubscribed');
  }

  /**
   * Closes the user's connections here at once (`local`, their count) and
   * on the other nodes (`all`, resolving with the count everywhere).
   */
  disconnect(uid: string, options: DisconnectOptions = {}): { local: number; all: Promise<UserResult> } {
    if (typeof uid !== 'string' || uid.length === 0) throw new HeraldError('bad_request', 'uid must be a non-empty string');
    const code = options.code ?? 4504;
    if (!Number.isInteger(code) || code < 4000 || code > 4999) throw new HeraldError('bad_request', `code must be an integer from 4000 to 4999, not ${String(code)}`);
    const reason = this.reason(options.reason, 'disconnected by the server');
    const local = this.here.disconnect(uid, code, reason);
    return { local, all: this.ask({ op: 'disconnect', uid, code, reason }, local, false, 'closed') };
  }

  async list(uid: string): Promise<ConnectionView[]> {
    if (typeof uid !== 'string' || uid.length === 0) throw new HeraldError('bad_request', 'uid must be a non-empty string');
    const connections = this.here.list(uid);
    const answers = await this.request({ op: 'list', uid }, false);
    if (answers.problem) throw new HeraldError('unavailable', `${answers.problem}: the connections of the nodes that answered are ${connections.length + answers.connections.length}`);
    return [...connections, ...answers.connections].sort((a, b) => a.connectedAt - b.connectedAt || a.id.localeCompare(b.id));
  }

  /** A connection of this node got a user's identity (the hub's `onIdentified`): an open one gets the user's persistent topics. */
  identified(session: Parameters<UserSessions['persist']>[0]): void {
    if (session.state === 'open') this.here.persist(session, this.persistent);
  }

  /** A connection of this node opened: it gets its user's persistent topics. */
  opened(session: Parameters<UserSessions['persist']>[0]): void {
    this.here.persist(session, this.persistent);
  }

  /** The broker is ready (again): this node asks the others for the persistent topics it may have missed. */
  announce(): void {
    this.persistent.asking();
    this.send(null, { t: 'user-topics?', node: this.options.nodeId });
  }

  /** A control message of the server API from another node (the registry checked that it is an object from another node). */
  receive(message: UserMessage): void {
    const { nodeId } = this.options;
    if (typeof message.node !== 'string') return;
    switch (message.t) {
      case 'user': {
        if (typeof message.id !== 'number' || typeof message.uid !== 'string' || !Array.isArray(message.answer)) return;
        const topics = Array.isArray(message.topics) ? message.topics.filter((topic) => typeof topic === 'string') : [];
        const { count, connections } = this.apply(message, topics);
        if (message.answer.includes(nodeId) || count > 0 || this.here.holds(message.uid)) {
          this.send(message.node, { t: 'user-done', node: nodeId, id: message.id, count, ...(connections ? { connections } : {}) });
        }
        return;
      }
      case 'user-done': {
        const waiting = this.waiting.get(message.id);
        if (!waiting || typeof message.count !== 'number') return;
        waiting.count += message.count;
        waiting.nodes++;
        if (Array.isArray(message.connections)) waiting.connections.push(...message.connections);
        waiting.expected.delete(message.node);
        if (waiting.expected.size === 0) waiting.done(null);
        return;
      }
      case 'user-topics?': {
        const entries = this.persistent.entries();
        for (let i = 0; i < entries.length; i += ENTRIES_PER_MESSAGE) {
          this.send(message.node, { t: 'user-topics', node: nodeId, entries: entries.slice(i, i + ENTRIES_PER_MESSAGE) });
        }
        return;
      }
      case 'user-topics':
        this.persistent.merge(message.entries);
    }
  }

  /** What a `user` message asks of this node. */
  private apply(message: Extract<UserMessage, { t: 'user' }>, topics: string[]): { count: number; connections?: ConnectionView[] } {
    const reason = typeof message.reason === 'string' ? message.reason.slice(0, REASON_MAX) : '';
    switch (message.op) {
      case 'subscribe':
        if (message.persistent === true) this.persistent.add(message.uid, topics);
        return { count: this.here.subscribe(message.uid, topics) };
      case 'unsubscribe':
        this.persistent.remove(message.uid, topics);
        return { count: this.here.unsubscribe(message.uid, topics, reason || 'server') };
      case 'disconnect': {
        const code = typeof message.code === 'number' && message.code >= 4000 && message.code <= 4999 ? message.code : 4504;
        return { count: this.here.disconnect(message.uid, code, reason || 'disconnected by the server') };
      }
      case 'list': {
        const connections = this.here.list(message.uid);
        return { count: connections.length, connections };
      }
      default:
        return { count: 0 };
    }
  }

  /** The call's outcome: what was done here (`count`) and what the other nodes answered; `unavailable` when one did not. */
  private async ask(fields: Omit<Extract<UserMessage, { t: 'user' }>, 't' | 'node' | 'id' | 'answer'>, count: number, everywhere: boolean, done: string): Promise<UserResult> {
    const answers = await this.request(fields, everywhere);
    const result = { connections: count + answers.count, nodes: answers.nodes };
    if (answers.problem) {
      throw new HeraldError('unavailable', `${answers.problem}: ${done} ${count} connection(s) here and ${answers.count} on the ${answers.nodes} other node(s) that answered`);
    }
    return result;
  }

  /** Sends the call to the nodes holding the user (to every node when `everywhere`) and collects their answers. */
  private request(
    fields: Omit<Extract<UserMessage, { t: 'user' }>, 't' | 'node' | 'id' | 'answer'>,
    everywhere: boolean,
  ): Promise<{ count: number; nodes: number; connections: ConnectionView[]; problem: string | null }> {
    const holders = this.options.cluster.nodesHolding(fields.uid);
    const outcome = { count: 0, nodes: 0, connections: [] as ConnectionView[], problem: null as string | null };
    if (holders.length === 0 && !everywhere) return Promise.resolve(outcome);
    const id = ++this.seq;
    const message: UserMessage = { t: 'user', node: this.options.nodeId, id, ...fields, answer: holders };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const missing = [...waiting.expected].join(', ');
        waiting.done(`node(s) ${missing} did not answer within ${this.options.timeout} ms`);
      }, this.options.timeout);
      timer.unref();
      const waiting: Waiting = {
        expected: new Set(holders),
        count: 0,
        nodes: 0,
        connections: [],
        done: (problem) => {
          if (!this.waiting.delete(id)) return;
          clearTimeout(timer);
          resolve({ count: waiting.count, nodes: waiting.nodes, connections: waiting.connections, problem });
        },
      };
      this.waiting.set(id, waiting);
      const text = JSON.stringify(message);
      const sent = everywhere ? this.options.broker.broadcast(text) : Promise.all(holders.map((node) => this.options.broker.sendToNode(node, text)));
      sent.then(
        () => {
          if (holders.length === 0) waiting.done(null);
        },
        (err: unknown) => waiting.done(`the other nodes could not be reached (${(err as Error).message})`),
      );
    });
  }

  /** A control message to one node, or to every node (`to` null); best effort. */
  private send(to: string | null, message: UserMessage): void {
    const text = JSON.stringify(message);
    const sent = to === null ? this.options.broker.broadcast(text) : this.options.broker.sendToNode(to, text);
    sent.catch((err: unknown) => this.options.log.debug({ to, t: message.t, err: (err as Error).message }, 'server API: control message not sent'));
  }

  /** The uid and the topics of a call, checked: a list of distinct valid topics, at most one connection's worth. */
  private checked(uid: string, topics: string | readonly string[]): string[] {
    if (typeof uid !== 'string' || uid.length === 0) throw new HeraldError('bad_request', 'uid must be a non-empty string');
    const list = typeof topics === 'string' ? [topics] : Array.isArray(topics) ? [...new Set(topics as string[])] : [];
    if (list.length === 0) throw new HeraldError('bad_request', 'name at least one topic');
    const max = this.options.maxTopicsPerConnection;
    if (list.length > max) throw new HeraldError('too_many_topics', `${list.length} topics, over limits.maxTopicsPerConnection (${max})`);
    for (const topic of list) {
      if (typeof topic !== 'string') throw new HeraldError('invalid_topic', 'a topic is a string');
      const problem = this.options.topicProblem(topic);
      if (problem) throw new HeraldError('invalid_topic', problem);
    }
    return list;
  }

  private reason(reason: string | undefined, fallback: string): string {
    if (reason === undefined) return fallback;
    if (typeof reason !== 'string' || reason.length > REASON_MAX) throw new HeraldError('bad_request', `reason must be a string of at most ${REASON_MAX} characters`);
    return reason;
  }
}
