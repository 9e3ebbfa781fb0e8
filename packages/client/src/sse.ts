import type { StreamPosition, TagFilter } from '@herald/protocol';
import type { Transport, TransportListener } from './transport.js';

/** The part of the EventSource API the client uses: the browser's, or any package's with the same shape on Node. */
export interface EventSourceLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  addEventListener(type: string, listener: (event: { data?: unknown }) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => unknown;

/**
 * Server events other than publications whose `data:` is a JSON-protocol frame, handed to the client as
 * is; `subscribe` is the reply to a topic of the URL (with its `topic`, without an `id`).
 */
const FRAME_EVENTS = ['subscribe', 'gap', 'join', 'leave', 'push'];

/** What an SSE connection subscribes to, in its URL. */
export interface SseRequest {
  /** The endpoint, e.g. `https://push.example.com/sse` (a query string on it is kept). */
  url: string;
  /** The topics, with the position to recover each from where there is one. */
  topics: Array<{ topic: string; since?: StreamPosition | undefined; filter?: TagFilter | undefined }>;
  /** The connection token (`?token=`: an EventSource cannot send headers). */
  token?: string | undefined;
}

/**
 * Server-Sent Events through an `EventSource`, for receiving only: the topics
 * are fixed in the URL, with their positions in `lastEventId`. Publications
 * are the default event; `subscribe`, `gap`, `join`, `leave`, `push` and
 * `error` events carry JSON-protocol frames; `close` carries the code and
 * reason the server ends the stream with. The EventSource is never left to
 * retry on its own: a failure ends the connection and the client reconnects
 * (with the positions it has, which may be newer than the last event id).
 */
export class SseTransport implements Transport {
  readonly name = 'sse';
  readonly canSend = false;
  readonly #source: EventSourceLike;
  #ended = false;

  constructor(EventSourceClass: EventSourceConstructor, request: SseRequest, listener: TransportListener) {
    const source = new EventSourceClass(sseUrl(request)) as EventSourceLike;
    this.#source = source;
    const end = (code: number, reason: string) => {
      if (this.#ended) return;
      this.close();
      listener.closed(code, reason);
    };
    const frame = (data: unknown) => {
      if (!this.#ended && typeof data === 'string') listener.frame(data);
    };
    source.onopen = () => {
      if (!this.#ended) listener.open();
    };
    source.onmessage = (event) => frame(event.data);
    for (const name of FRAME_EVENTS) source.addEventListener(name, (event) => frame(event.data));
    source.addEventListener('error', (event) => {
      // A server `event: error` carries a frame; the EventSource's own error (a failed or lost stream) carries nothing.
      if (typeof event.data === 'string') frame(event.data);
      else end(1006, 'the event stream failed');
    });
    source.addEventListener('close', (event) => {
      let body: { code?: unknown; reason?: unknown } = {};
      try {
        body = JSON.parse(String(event.data)) as typeof body;
      } catch {
        // no code: an abnormal end
      }
      end(typeof body.code === 'number' ? body.code : 1006, typeof body.reason === 'string' ? body.reason : 'the server ended the event stream');
    });
  }

  send(): void {
    throw new Error('SSE is receive-only');
  }

  close(): void {
    this.#ended = true;
    this.#source.close();
  }
}

/**
 * SSE with no topic to receive: there is no stream to open (the endpoint
 * needs a topic), so the connection opens on the next turn with nothing
 * behind it; the first subscribe reopens it as a real stream.
 */
export function idleSse(listener: TransportListener): Transport {
  let closed = false;
  queueMicrotask(() => closed || listener.open());
  return {
    name: 'sse',
    canSend: false,
    send() {
      throw new Error('SSE is receive-only');
    },
    close() {
      closed = true;
    },
  };
}

/** The event stream's URL: `topic` once per topic, `filter.<topic>` for a filtered one, `token`, and `lastEventId` with the positions to recover from. */
export function sseUrl(request: SseRequest): string {
  const url = new URL(request.url);
  const query = url.searchParams;
  for (const { topic, filter } of request.topics) {
    query.append('topic', topic);
    if (filter) query.set('filter.' + topic, JSON.stringify(filter));
  }
  if (request.token !== undefined) query.set('token', request.token);
  const lastEventId = eventId(request.topics);
  if (lastEventId !== undefined) query.set('lastEventId', lastEventId);
  return url.href;
}

/**
 * The event id that stands for these positions, as the server writes them
 * (docs/transports.md): `offset.epoch` for a stream of one topic, else
 * `topic|offset.epoch` entries joined by `,`, topics and epochs
 * percent-encoded (the server decodes any percent-encoding; `,`, `|` and `%`
 * must be). Undefined when no topic has a position to recover from.
 */
export function eventId(topics: SseRequest['topics']): string | undefined {
  const position = ({ offset, epoch }: StreamPosition) => `${offset}.${encodeURIComponent(epoch)}`;
  const known = topics.filter((entry): entry is { topic: string; since: StreamPosition } => entry.since !== undefined);
  if (known.length === 0) return undefined;
  if (topics.length === 1) return position(known[0]!.since);
  return known.map(({ topic, since }) => `${encodeURIComponent(topic)}|${position(since)}`).join(',');
}
