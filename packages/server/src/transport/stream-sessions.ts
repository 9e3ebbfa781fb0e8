import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Session } from '../hub/session.js';
import type { StreamTransport } from './stream.js';

/**
 * What became of commands sent for a stream: `fed` to its session in order
 * (their replies come on the stream), `not_found` (no open stream with this
 * token), `busy` (too many sends of that stream waiting already).
 */
export type FeedResult = 'fed' | 'not_found' | 'busy';

/** Random bytes of a token's secret part: 144 bits, 24 base64url characters. */
const SECRET_BYTES = 18;
/** Random bytes of a token's key (which stream of the node; not secret): 12 base64url characters. */
const KEY_BYTES = 9;
/** Sends of one stream waiting their turn at once; past it a send is refused (`busy`). A client sends one at a time. */
const MAX_WAITING = 4;
const PART = /^[A-Za-z0-9_-]+$/;

/** A session token's parts. */
export interface SessionToken {
  /** The node holding the stream. */
  readonly node: string;
  /** Which stream of that node (a lookup key, not a secret). */
  readonly key: string;
  /** The secret part, compared in constant time. */
  readonly secret: string;
}

/**
 * Reads a session token, `<node>.<key>.<secret>` with the node id in
 * base64url: null when it is not one (it then names no stream anywhere).
 */
export function parseToken(token: string): SessionToken | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => PART.test(part))) return null;
  const [nodePart, key, secret] = parts as [string, string, string];
  const node = Buffer.from(nodePart, 'base64url').toString('utf8');
  // Only the canonical spelling of a node id: one stream, one token.
  if (Buffer.from(node, 'utf8').toString('base64url') !== nodePart) return null;
  return { node, key, secret };
}

interface StreamEntry {
  readonly session: Session;
  readonly transport: StreamTransport;
  readonly secret: Buffer;
  /** The sends of this stream, fed one after the other in the order they arrived. */
  chain: Promise<unknown>;
  waiting: number;
}

/**
 * The streams this node holds, by the key of their session token, and the
 * feeding of commands to them. A token is `<node>.<key>.<secret>`: the node
 * part lets any node route a send to the node holding the stream (through
 * the broker, cluster/relay.ts), the key finds the stream there, and the
 * secret (144 random bits) is what makes it unguessable; it is compared in
 * constant time, so that a wrong secret tells nothing about the right one.
 */
export class StreamSessions {
  private readonly streams = new Map<string, StreamEntry>();
  private readonly nodePart: string;

  constructor(readonly nodeId: string) {
    this.nodePart = Buffer.from(nodeId, 'utf8').toString('base64url');
  }

  /** Streams open on this node. */
  get size(): number {
    return this.streams.size;
  }

  /** A fresh token for a stream of this node, with its key (for `add`). */
  mint(): { token: string; key: string } {
    let key: string;
    do key = randomBytes(KEY_BYTES).toString('base64url');
    while (this.streams.has(key));
    const secret = randomBytes(SECRET_BYTES).toString('base64url');
    return { token: `${this.nodePart}.${key}.${secret}`, key };
  }

  /** Whether `token` names this node (else its sends are relayed to the node it names). */
  isLocal(token: SessionToken): boolean {
    return token.node === this.nodeId;
  }

  /** Holds a stream under the key and secret of `token` (minted here) until `remove`. */
  add(token: string, session: Session, transport: StreamTransport): void {
    const parsed = parseToken(token);
    if (!parsed || !this.isLocal(parsed)) throw new TypeError('not a token of this node');
    this.streams.set(parsed.key, { session, transport, secret: Buffer.from(parsed.secret), chain: Promise.resolve(), waiting: 0 });
  }

  remove(token: string): void {
    const parsed = parseToken(token);
    if (parsed) this.streams.delete(parsed.key);
  }

  /**
   * Feeds `frames` (JSON-protocol command texts) to the stream `token` names
   * on this node, as frames from the peer, in order and after the sends
   * that arrived before (so commands count against the connection's rate
   * limit as WebSocket frames do). While the session's inbox is full, the
   * rest waits until it is read, as a WebSocket's reading is paused.
   * Resolves once every frame was handed to the session.
   */
  async feed(token: string | SessionToken, frames: readonly string[]): Promise<FeedResult> {
    const parsed = typeof token === 'string' ? parseToken(token) : token;
    const entry = parsed && this.isLocal(parsed) ? this.find(parsed) : undefined;
    if (!entry || !isOpen(entry.session)) return 'not_found';
    if (entry.waiting >= MAX_WAITING) return 'busy';
    entry.waiting++;
    const turn = entry.chain.then(() => feedFrames(entry, frames));
    entry.chain = turn.catch(ignore);
    try {
      return await turn;
    } finally {
      entry.waiting--;
    }
  }

  /** The stream of `token`, when its secret is right (compared in constant time). */
  private find(token: SessionToken): StreamEntry | undefined {
    const entry = this.streams.get(token.key);
    if (!entry) return undefined;
    const given = Buffer.from(token.secret);
    if (given.length !== entry.secret.length || !timingSafeEqual(given, entry.secret)) return undefined;
    return entry;
  }
}

async function feedFrames(entry: StreamEntry, frames: readonly string[]): Promise<FeedResult> {
  for (const frame of frames) {
    if (!entry.transport.ready) await entry.transport.whenReady();
    if (!isOpen(entry.session)) return 'not_found';
    entry.session.receive(Buffer.from(frame), false);
  }
  return 'fed';
}

/** Still taking frames: identity being settled, or open. */
function isOpen(session: Session): boolean {
  return session.state === 'connecting' || session.state === 'open';
}

function ignore(): void {}
