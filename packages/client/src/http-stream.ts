import { closeCodeOf, refusalOf, type Transport, type TransportListener } from './transport.js';

/** How the server's last line begins: `{"action":"close","code":N,"reason":"..."}`, the close frame of a WebSocket. */
const CLOSE = '{"action":"close"';

/** The part of `fetch` the HTTP-streaming transport uses: the global one, or any with the same signature. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface HttpStreamOptions {
  fetch: FetchLike;
  /** Where the stream is opened (`POST`), e.g. `https://push.example.com/stream`. */
  url: string;
  /** Where commands are posted, e.g. `https://push.example.com/stream/send`. */
  sendUrl: string;
  /** Sent as `Authorization: Bearer <token>` when opening the stream. */
  token?: string | undefined;
}

/**
 * HTTP streaming: `POST /stream` answers with NDJSON, one JSON-protocol frame
 * per line, the first being `{"action":"stream","session":"..."}`; an empty
 * line is a heartbeat, and a last line `{"action":"close","code","reason"}`
 * says why the server ended the stream. Commands go as `POST /stream/send` with
 * `{"session","commands":[...]}`, one request at a time so that they keep
 * their order: what is sent while a request is out waits, and goes in the
 * next one. A refused command request (`404 session_not_found`: the stream is
 * gone) or a failed one ends the connection, so that the client reconnects.
 */
export class HttpStreamTransport implements Transport {
  readonly name = 'http-stream';
  readonly canSend = true;
  readonly #abort = new AbortController();
  #session: string | undefined;
  #queue: string[] = [];
  #posting = false;
  #ended = false;

  readonly #options: HttpStreamOptions;
  readonly #listener: TransportListener;

  constructor(options: HttpStreamOptions, listener: TransportListener) {
    this.#options = options;
    this.#listener = listener;
    void this.#read();
  }

  send(text: string): void {
    this.#queue.push(text);
    void this.#post();
  }

  close(): void {
    this.#ended = true;
    this.#abort.abort();
  }

  async #read(): Promise<void> {
    const { url, token, fetch } = this.#options;
    let response: Response;
    try {
      // On a later turn, even when fetch throws at once: the listener is never called from the constructor.
      response = await Promise.resolve().then(() =>
        fetch(url, {
          method: 'POST',
          headers: token !== undefined ? { authorization: `Bearer ${token}` } : {},
          cache: 'no-store',
          signal: this.#abort.signal,
        }),
      );
    } catch (err) {
      return this.#end(1006, `POST ${url} failed: ${(err as Error).message}`);
    }
    if (!response.ok || !response.body) return this.#end(response.ok ? 1006 : closeCodeOf(response.status), await refusalOf(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.#ended) break;
        buffer += decoder.decode(value, { stream: true });
        let start = 0;
        let end: number;
        while ((end = buffer.indexOf('\n', start)) >= 0 && !this.#ended) {
          this.#line(buffer.slice(start, buffer.charCodeAt(end - 1) === 13 ? end - 1 : end));
          start = end + 1;
        }
        buffer = buffer.slice(start);
      }
    } catch (err) {
      return this.#end(1006, `the stream failed: ${(err as Error).message}`);
    }
    this.#end(1006, 'the stream ended');
  }

  #line(line: string): void {
    if (line === '') return this.#listener.alive();
    const started = this.#session !== undefined;
    // Most lines go to the client as they are; only the first and the server's last (`close`) are read here.
    if (started && !line.startsWith(CLOSE)) return this.#listener.frame(line);
    type Line = { action?: unknown; session?: unknown; code?: unknown; reason?: unknown } | null;
    let frame: Line = null;
    try {
      frame = JSON.parse(line) as Line;
    } catch {
      // reported below
    }
    if (frame?.action === 'close' && typeof frame.code === 'number') return this.#end(frame.code, typeof frame.reason === 'string' ? frame.reason : '');
    if (started) return this.#listener.frame(line);
    if (frame?.action !== 'stream' || typeof frame.session !== 'string') return this.#end(1002, `the stream did not start with its session: ${line.slice(0, 80)}`);
    this.#session = frame.session;
    this.#listener.open();
    void this.#post();
  }

  async #post(): Promise<void> {
    if (this.#posting || this.#session === undefined || this.#queue.length === 0 || this.#ended) return;
    this.#posting = true;
    const body = `{"session":${JSON.stringify(this.#session)},"commands":[${this.#queue.join(',')}]}`;
    this.#queue = [];
    const { sendUrl, fetch } = this.#options;
    let failure: [number, string] | undefined;
    try {
      // A string body goes as text/plain, which the server takes as JSON and a page sends without a CORS preflight.
      const response = await fetch(sendUrl, {
        method: 'POST',
        body,
        cache: 'no-store',
        signal: this.#abort.signal,
      });
      if (!response.ok) failure = [response.status === 404 ? 4000 : closeCodeOf(response.status), `POST ${sendUrl}: ${await refusalOf(response)}`];
      else await response.text();
    } catch (err) {
      failure = [1006, `POST ${sendUrl} failed: ${(err as Error).message}`];
    }
    this.#posting = false;
    if (failure) return this.#end(...failure);
    void this.#post();
  }

  #end(code: number, reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#abort.abort();
    this.#listener.closed(code, reason);
  }
}
