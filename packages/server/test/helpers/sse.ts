import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { after } from 'node:test';
import type { Herald } from '../../src/index.js';
import { deadline } from './helpers.js';

/** One dispatched event, as an `EventSource` sees it: its type (`message` by default), data, and the last event id then. */
export interface SseEvent {
  event: string;
  data: string;
  /** The stream's last event id when the event was dispatched (it persists across events without `id:`). */
  lastEventId: string;
  /** Whether this event itself had an `id:` field. */
  hasId: boolean;
  /** `data` parsed as JSON (undefined when it is not JSON). */
  json: any;
}

const streams: SseStream[] = [];
after(() => {
  for (const stream of streams) stream.destroy();
});

/**
 * A test's SSE client over a real socket: parses the stream as the HTML
 * standard's event-stream parser does (fields, comments, `retry`, the last
 * event id that persists), queues the events, and can stop reading (`pause`)
 * as a slow client would. It reads an HTTP/1.1 response, or any readable
 * body (an HTTP/2 stream, with its response headers).
 */
export class SseStream {
  readonly events: SseEvent[] = [];
  /** Comment lines received (the heartbeat). */
  comments = 0;
  retry: number | undefined;
  lastEventId = '';
  /** Resolves once the response ended or the connection closed. */
  readonly ended: Promise<void>;
  private cursor = 0;
  private waiters: Array<() => void> = [];
  private buffer = '';
  private data: string[] = [];
  private type = '';
  private idBuffer = '';
  private idSeen = false;
  private done = false;

  constructor(
    readonly response: IncomingMessage | Readable,
    initialLastEventId = '',
    private readonly responseHeaders: IncomingHttpHeaders = (response as IncomingMessage).headers,
  ) {
    streams.push(this);
    this.lastEventId = this.idBuffer = initialLastEventId;
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.feed(chunk));
    this.ended = new Promise((resolve) => {
      const end = (): void => {
        this.done = true;
        this.wake();
        resolve();
      };
      response.once('end', end);
      response.once('close', end);
      response.once('error', end);
    });
  }

  get headers(): IncomingHttpHeaders {
    return this.responseHeaders;
  }

  get finished(): boolean {
    return this.done;
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
    this.wake();
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) {
      this.idBuffer = value;
      this.idSeen = true;
    } else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const hasId = this.idSeen;
    this.idSeen = false;
    if (this.data.length === 0) {
      this.type = '';
      return;
    }
    const data = this.data.join('\n');
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      json = undefined;
    }
    this.events.push({ event: this.type || 'message', data, lastEventId: this.lastEventId, hasId, json });
    this.data = [];
    this.type = '';
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves at the next change (bytes, end); used to wait for a condition without sleeping. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next event not yet consumed. */
  next(ms = 5000): Promise<SseEvent> {
    return deadline(
      (async () => {
        while (this.cursor >= this.events.length) {
          if (this.done) throw new Error(`the stream ended while waiting for an event (after ${this.events.length})`);
          await this.changed();
        }
        return this.events[this.cursor++]!;
      })(),
      ms,
      'the next event',
    );
  }

  /** The next `count` events not yet consumed. */
  async take(count: number, ms = 10_000): Promise<SseEvent[]> {
    const taken: SseEvent[] = [];
    const until = Date.now() + ms;
    for (let i = 0; i < count; i++) taken.push(await this.next(Math.max(1, until - Date.now())));
    return taken;
  }

  /** Waits until `check` holds (checked after every change). */
  async until(check: () => boolean, what: string, ms = 5000): Promise<void> {
    await deadline(
      (async () => {
        while (!check()) {
          if (this.done) throw new Error(`the stream ended while waiting for ${what}`);
          await this.changed();
        }
      })(),
      ms,
      what,
    );
  }

  /** Events not yet consumed, consumed now. */
  rest(): SseEvent[] {
    const rest = this.events.slice(this.cursor);
    this.cursor = this.events.length;
    return rest;
  }

  /** Stops reading from the socket: the kernel's buffers fill, then the server's queue. */
  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  /** Goes away without a word, as a closed tab or a lost network does. */
  destroy(): void {
    this.response.destroy();
  }
}

/** A request that did not become a stream: its status, headers and JSON body. */
export interface Refused {
  status: number;
  headers: IncomingHttpHeaders;
  body: any;
}

export interface SseOpenOptions {
  headers?: Record<string, string>;
  /** The client's last event id (sent as `Last-Event-ID`). */
  lastEventId?: string;
  path?: string;
  /** For an `https:` base: the certificate to trust (a test's self-signed one). */
  ca?: string | Buffer;
}

/** The SSE URL path for `topics` (and more query fields). */
export function ssePath(topics: readonly string[], query: Record<string, string> = {}, path = '/sse'): string {
  const search = new URLSearchParams();
  for (const topic of topics) search.append('topic', topic);
  for (const [name, value] of Object.entries(query)) search.append(name, value);
  return `${path}?${search}`;
}

/** Sends `GET path` and resolves with the stream (a 200) or the refusal (anything else, its JSON body read). */
export function requestSse(herald: Herald | string, path: string, options: SseOpenOptions = {}): Promise<SseStream | Refused> {
  const base = new URL(typeof herald === 'string' ? herald : herald.url);
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  return deadline(
    new Promise<SseStream | Refused>((resolve, reject) => {
      const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
      const request = send({ host: base.hostname, port: base.port, path, headers, agent: false, ...(options.ca ? { ca: options.ca } : {}) }, (response) => {
        if (response.statusCode === 200) return resolve(new SseStream(response, options.lastEventId));
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
        });
      });
      request.on('error', reject);
      request.end();
    }),
    5000,
    `the answer to GET ${path}`,
  );
}

/** Opens a stream that must be accepted. */
export async function openSse(herald: Herald | string, topics: readonly string[], options: SseOpenOptions & { query?: Record<string, string> } = {}): Promise<SseStream> {
  const answer = await requestSse(herald, ssePath(topics, options.query, options.path), options);
  if (!(answer instanceof SseStream)) throw new Error(`the stream was refused: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer;
}

/** Asks for a stream that must be refused, and returns the refusal. */
export async function refusedSse(herald: Herald | string, path: string, options: SseOpenOptions = {}): Promise<Refused> {
  const answer = await requestSse(herald, path, options);
  if (answer instanceof SseStream) {
    answer.destroy();
    throw new Error(`GET ${path} was accepted`);
  }
  return answer;
}
