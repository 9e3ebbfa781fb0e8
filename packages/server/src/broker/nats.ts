import { connect, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { HeraldError, InDoubtError } from '../errors.js';
import type { Broker, BrokerSink, BrokerState, Publication, PublishResult } from './broker.js';
import { metadataProblem, publicationFromWire, wireText } from './envelope.js';
import { BrokerNamespace } from './namespace.js';

const ACCEPTED: PublishResult = Object.freeze({});
const decoder = new TextDecoder();

/** The NATS header naming the Herald node a publication came from. */
const NODE_HEADER = 'Herald-Node';
/** The NATS header naming the connection a publication must not reach (`Publication.exclude`). */
const EXCLUDE_HEADER = 'Herald-Exclude';
/** The NATS header holding a publication's tags as JSON (`Publication.tags`). */
const TAGS_HEADER = 'Herald-Tags';
/** The NATS header naming a publication's event (`Publication.event`). */
const EVENT_HEADER = 'Herald-Event';

export interface NatsBrokerOptions {
  url: string;
  /** Prepended to every topic to make its subject (and to the control subjects): Herald's namespace on NATS. Not empty. */
  prefix: string;
  /** Topics (exact or `prefix*`) whose subject is the bare topic name, for raw publishers and Lhttp nodes (see BrokerNamespace). */
  rawTopics?: readonly string[];
  nodeId: string;
  /** Longest wait (ms) for the server to confirm a turn's publications (the answer to a flush); default 5000. */
  publishTimeout?: number;
  log: Logger;
}

/** The publications of one event-loop turn, confirmed together by one flush. */
interface FlushBatch {
  promise: Promise<PublishResult>;
  resolve: (result: PublishResult) => void;
  reject: (err: HeraldError) => void;
}

/**
 * NATS core pub/sub between nodes (@nats-io/transport-node). Subject = prefix +
 * topic, or the bare topic for `rawTopics` (see BrokerNamespace), so that
 * `nats pub <subject> <data>` from any client reaches the topic's subscribers
 * and Lhttp nodes on the same server share subjects with Herald.
 * The payload is the message itself (its JSON text); the publishing node is
 * named in a `Herald-Node` header, which NATS strips for old clients that do
 * not support headers, so any NATS subscriber sees the plain message.
 * The client reconnects forever with backoff and restores subscriptions
 * itself; while it is disconnected, publish fails at once with `unavailable`
 * rather than buffering.
 *
 * `publish` resolves only once the server has the publication: the
 * publications of one event-loop turn share one flush (a PING after them;
 * NATS answers PONG once it has read everything before it), so throughput
 * holds while an answer never claims more than the server received. When
 * the connection drops before the PONG, or it does not come within
 * `publishTimeout`, every publication of the turn fails with `unavailable`,
 * in doubt (InDoubtError): the server may have read them. A PONG that comes
 * after the timeout settles that doubt (the outcome resolves); a drop makes
 * it final (never known). The client drops what it had not sent when it
 * reconnects: nothing is sent again after a caller was told it failed. Core
 * NATS keeps nothing: a subscriber node disconnected at that moment misses
 * the publication.
 */
export class NatsBroker implements Broker {
  readonly name = 'nats';
  private nc: NatsConnection | null = null;
  private sink: BrokerSink | null = null;
  private currentState: BrokerState = 'connecting';
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly wanted = new Set<string>();
  private readonly controlSubject: string;
  private readonly nodeSubject: string;
  private readonly origin = headers();
  readonly namespace: BrokerNamespace;

  get namespaces(): readonly BrokerNamespace[] {
    return [this.namespace];
  }
  /** The turn's publications waiting for their flush, and the flushes sent and not yet answered. */
  private batch: FlushBatch | null = null;
  private readonly unconfirmed = new Set<FlushBatch>();

  constructor(private readonly options: NatsBrokerOptions) {
    this.namespace = new BrokerNamespace('nats', options.prefix, options.rawTopics ?? []);
    this.controlSubject = `${options.prefix}herald|cluster`;
    this.nodeSubject = `${options.prefix}herald|node|${options.nodeId}`;
    this.origin.set(NODE_HEADER, options.nodeId);
  }

  get state(): BrokerState {
    return this.currentState;
  }

  /** NATS subjects are dot-separated tokens (none may be empty); `$` and `_INBOX` subjects are the server's. */
  topicProblem(topic: string): string | null {
    return this.namespace.topicProblem(topic);
  }

  async start(sink: BrokerSink): Promise<void> {
    this.sink = sink;
    void this.connectLoop();
  }

  private async connectLoop(): Promise<void> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.options.url,
        name: `herald-${this.options.nodeId}`,
        waitOnFirstConnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        pingInterval: 10_000,
      });
    } catch (err) {
      if (this.currentState === 'closed') return;
      this.options.log.warn({ err: (err as Error).message }, 'nats: cannot connect, retrying');
      setTimeout(() => void this.connectLoop(), 1000).unref();
      return;
    }
    if (this.currentState === 'closed') {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.listen(this.controlSubject, (msg) => this.sink?.onControl(decoder.decode(msg.data)));
    this.listen(this.nodeSubject, (msg) => this.sink?.onControl(decoder.decode(msg.data)));
    for (const topic of this.wanted) this.subscribe(topic);
    this.setState('ready');
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnecting') {
          this.setState('down', status.type);
          this.failUnconfirmed(`broker nats: the connection dropped before the server confirmed the publication`);
        } else if (status.type === 'reconnect') {
          // The client re-sent every subscription before reporting the reconnection.
          this.setState('ready');
          this.sink?.onResumed?.(null);
        }
      }
    })();
    void nc.closed().then(() => {
      this.failUnconfirmed('broker nats: the connection closed before the server confirmed the publication');
      if (this.currentState !== 'closed') this.setState('down', 'connection closed');
    });
  }

  private setState(state: BrokerState, detail?: string): void {
    if (this.currentState === 'closed' || this.currentState === state) return;
    this.currentState = state;
    this.sink?.onStateChange(state, detail);
  }

  private listen(subject: string, handle: (msg: Msg) => void): Subscription {
    return this.nc!.subscribe(subject, {
      callback: (err, msg) => {
        if (!err) handle(msg);
      },
    });
  }

  publish(publication: Publication): Promise<PublishResult> {
    const nc = this.nc;
    if (!nc || this.currentState !== 'ready') return Promise.reject(new HeraldError('unavailable', `broker nats is ${this.currentState}`));
    try {
      nc.publish(this.namespace.nameOf(publication.topic), wireText(publication), { headers: publication.exclude === undefined && publication.tags === undefined && publication.event === undefined ? this.origin : this.marked(publication) });
    } catch (err) {
      return Promise.reject(new HeraldError('unavailable', `broker nats refused the publication: ${(err as Error).message}`, { cause: err }));
    }
    return (this.batch ??= this.newBatch(nc)).promise;
  }

  /** The headers of a publication with metadata: the node's, plus its exclusion, tags and event. */
  private marked(publication: Publication) {
    const marked = headers();
    marked.set(NODE_HEADER, this.options.nodeId);
    if (publication.exclude !== undefined) marked.set(EXCLUDE_HEADER, publication.exclude);
    if (publication.tags !== undefined) marked.set(TAGS_HEADER, JSON.stringify(publication.tags));
    if (publication.event !== undefined) marked.set(EVENT_HEADER, publication.event);
    return marked;
  }

  /** A batch for this turn's publications: flushed once the turn ends, answered when the server confirms it. */
  private newBatch(nc: NatsConnection): FlushBatch {
    let resolve!: FlushBatch['resolve'];
    let reject!: FlushBatch['reject'];
    const promise = new Promise<PublishResult>((yes, no) => {
      resolve = yes;
      reject = no;
    });
    const batch: FlushBatch = { promise, resolve, reject };
    setImmediate(() => {
      if (this.batch === batch) this.batch = null;
      this.unconfirmed.add(batch);
      const timeout = this.options.publishTimeout ?? 5_000;
      const flushed = nc.flush();
      // After the timeout the PONG may still come (the server read them) or the connection drop (never known).
      const lost = (err: Error) => new InDoubtError(`broker nats did not confirm the publication: ${err.message}; the server may have read it`, null, { cause: err });
      const outcome = flushed.then(
        () => ACCEPTED,
        (err: Error) => {
          throw lost(err);
        },
      );
      outcome.catch(() => undefined); // followed only when the answer is given in doubt
      const timer = setTimeout(() => batch.reject(new InDoubtError(`broker nats did not confirm the publication within ${timeout} ms (the server may still read it)`, outcome)), timeout);
      const settled = () => {
        clearTimeout(timer);
        this.unconfirmed.delete(batch);
      };
      flushed.then(
        () => {
          settled();
          batch.resolve(ACCEPTED);
        },
        (err: Error) => {
          settled();
          batch.reject(lost(err));
        },
      );
    });
    return batch;
  }

  private failUnconfirmed(message: string): void {
    const batches = [...this.unconfirmed];
    if (this.batch) batches.push(this.batch);
    this.unconfirmed.clear();
    this.batch = null;
    for (const batch of batches) batch.reject(new InDoubtError(`${message}; the server may have read it`, null));
  }

  subscribe(topic: string): Promise<void> | void {
    this.wanted.add(topic);
    if (!this.nc || this.subscriptions.has(topic)) return;
    const sub = this.listen(this.namespace.nameOf(topic), (msg) => {
      const node = msg.headers?.get(NODE_HEADER);
      if (node === this.options.nodeId) return;
      // Herald's own publications are JSON (or LHTTP) already; anything else is a raw payload.
      const publication = publicationFromWire(topic, decoder.decode(msg.data), Boolean(node));
      const refused = node ? readMetadata(msg, publication) : null;
      if (refused) this.options.log.debug({ topic, node, problem: refused }, 'nats: Herald headers with invalid tags or event (dropped them, kept the payload)');
      this.sink?.deliver(publication);
    });
    this.subscriptions.set(topic, sub);
    // The server has the subscription once it has answered a flush sent after it.
    if (this.currentState === 'ready') return this.nc.flush().catch(() => undefined);
  }

  /** A flush: the server answers its PING after every message it sent this connection before. */
  caughtUp(): Promise<void> | undefined {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return undefined;
    return nc.flush().catch(() => undefined);
  }

  unsubscribe(topic: string): void {
    this.wanted.delete(topic);
    this.subscriptions.get(topic)?.unsubscribe();
    this.subscriptions.delete(topic);
  }

  async broadcast(message: string): Promise<void> {
    if (this.currentState !== 'ready' || !this.nc) throw new HeraldError('unavailable', 'broker nats is not ready');
    this.nc.publish(this.controlSubject, message);
  }

  async sendToNode(nodeId: string, message: string): Promise<void> {
    if (this.currentState !== 'ready' || !this.nc) throw new HeraldError('unavailable', 'broker nats is not ready');
    this.nc.publish(`${this.options.prefix}herald|node|${nodeId}`, message);
  }

  async close(): Promise<void> {
    this.currentState = 'closed';
    const nc = this.nc;
    this.nc = null;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

/**
 * A Herald publication's metadata from its NATS headers (exclusion, tags,
 * event), onto the publication. Tags and event are checked as a publish
 * checks them (a message with a Herald-Node header can come from anyone
 * who can publish on the server): when either is invalid, neither goes on
 * the publication, and why is returned; else null.
 */
function readMetadata(msg: Msg, publication: Publication): string | null {
  const exclude = msg.headers?.get(EXCLUDE_HEADER);
  if (exclude) publication.exclude = exclude;
  const eventHeader = msg.headers?.get(EVENT_HEADER);
  const tagsHeader = msg.headers?.get(TAGS_HEADER);
  if (!eventHeader && !tagsHeader) return null;
  let tags: unknown;
  if (tagsHeader) {
    try {
      tags = JSON.parse(tagsHeader);
    } catch {
      return 'tags: the Herald-Tags header is not JSON';
    }
  }
  const event = eventHeader || undefined;
  const problem = metadataProblem(tags, event);
  if (problem) return problem;
  if (tags !== undefined) publication.tags = tags as Publication['tags'];
  if (event !== undefined) publication.event = event;
  return null;
}
