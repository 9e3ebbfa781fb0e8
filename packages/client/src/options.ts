import type { Json } from '@herald/protocol';
import type { TransportMemory } from './choice.js';
import type { FetchLike } from './http-stream.js';
import type { EventSourceConstructor } from './sse.js';
import type { TransportName } from './transport.js';
import type { WebSocketConstructor } from './websocket.js';
import type { Subscription } from './subscription.js';

/** `disconnected` (waiting to reconnect, or not started), `connecting`, `connected`, `closed` (stopped for good until `connect()`). */
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

export interface ClientOptions {
  /** The gateway's WebSocket URL, e.g. `wss://push.example.com/ws`. The HTTP endpoints are derived from it. */
  url: string;
  /** The WebSocket class. Default: the global one (browsers, Node 22+); on Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** `fetch`, for HTTP streaming. Default: the global one (browsers, Node 18+). */
  fetch?: FetchLike;
  /** The EventSource class, for SSE. Default: the global one (browsers); Node 20 has none: pass one to use SSE there. */
  EventSource?: EventSourceConstructor;
  /**
   * The transports to try, in order (default `['websocket', 'http-stream', 'sse']`). Those the platform
   * lacks (no WebSocket, fetch or EventSource class) are left out; at least one must remain.
   * `sse` only receives: commands reject with a ReceiveOnlyError.
   */
  transports?: TransportName[];
  /** How long an attempt may take to open before the client falls back to the next transport (ms, default 5000). */
  fallbackTimeout?: number;
  /**
   * How long the transport that worked is remembered (sessionStorage, or the page's memory) and kept
   * across reconnects, when it is not the first of `transports` (ms, default 600000): after this, a
   * new connection tries the first (WebSocket) again.
   */
  rememberTransportFor?: number;
  /** Where the transport that worked is remembered. Default: `sessionStorage` when the page has one, else memory; `null`: nowhere. */
  transportMemory?: TransportMemory | null;
  /** The HTTP-streaming endpoint. Default: from `url` (`ws:` → `http:`, `wss:` → `https:`, `/ws` → `/stream`); commands go to its `/send`. */
  streamUrl?: string;
  /** The SSE endpoint. Default: from `url` (`/ws` → `/sse`). */
  sseUrl?: string;
  /** A token to log in with on every connection. */
  token?: string;
  /** Called for a token on every connection and shortly before the current one expires. Wins over `token`. */
  getToken?: () => string | Promise<string>;
  /** Smallest ceiling of the reconnect delay (ms, default 500): the first retry waits a random time below it. */
  minReconnectDelay?: number;
  /** Largest reconnect delay (ms, default 20000). */
  maxReconnectDelay?: number;
  /** How long a command waits for its reply (ms, default 10000). */
  requestTimeout?: number;
  /** After this long without a frame from the server, the client pings it (ms, default 25000; not on SSE, which cannot send). */
  pingInterval?: number;
  /** A ping unanswered for this long means the connection is dead: the client reconnects (ms, default 10000). */
  pingTimeout?: number;
  /** Refresh the token this long before it expires (ms, default 30000, at most a fifth of its lifetime). */
  tokenRefreshMargin?: number;
  /** Random source for the backoff (tests). */
  random?: () => number;
}

export interface ClientEvents {
  state: { from: ClientState; to: ClientState };
  /** A connection attempt starts over `transport` (`attempt` 0 is the first since the last success; a fallback keeps the number). */
  connecting: { attempt: number; transport: TransportName };
  /** `client.transport` changed: a fallback (`to` comes after `from` in `transports`), the memory, or a retry of the first transport. */
  transport: { from: TransportName; to: TransportName };
  /** Connected (and logged in, when there is a token); subscriptions are being restored. */
  connected: { reconnected: boolean; attempt: number; uid?: string };
  /** The connection was lost; the client reconnects after `delay` ms. */
  disconnected: { code: number; reason: string; delay: number; attempt: number };
  /** The client stopped: `close()` was called, or the server closed with a code that forbids reconnecting. */
  closed: { code: number; reason: string };
  /** A message pushed to this user (`/api/send`). */
  push: { message: Json };
  /**
   * The server subscribed this connection to a topic (the backend's server
   * API, or a topic it keeps for the user): `subscription` is new, listen
   * to it as to your own. Emitted once per subscription; when the server
   * subscribes a later connection again (a persistent topic) the same
   * subscription is confirmed again (its `subscribed` event).
   */
  serverSubscribed: { topic: string; subscription: Subscription };
  /** Something went wrong that no promise reports: an error frame, a failed token refresh, an unreadable frame, a refused connection. */
  error: { error: Error; context: string };
  /** A frame the client has no use for (e.g. from an application's command handler). */
  frame: { frame: Record<string, unknown> };
}

/** The options with their defaults filled in. */
export type ResolvedOptions = Required<Omit<ClientOptions, 'token' | 'getToken' | 'WebSocket' | 'fetch' | 'EventSource' | 'transportMemory' | 'streamUrl' | 'sseUrl'>> &
  Pick<ClientOptions, 'token' | 'getToken'>;

export const DEFAULTS = {
  transports: ['websocket', 'http-stream', 'sse'] as TransportName[],
  fallbackTimeout: 5000,
  rememberTransportFor: 600_000,
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  requestTimeout: 10_000,
  pingInterval: 25_000,
  pingTimeout: 10_000,
  tokenRefreshMargin: 30_000,
  random: Math.random,
};
