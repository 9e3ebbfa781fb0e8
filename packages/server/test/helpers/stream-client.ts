import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after } from 'node:test';
import { deadline, http, type HttpAnswer } from './helpers.js';

const opened: StreamClient[] = [];

after(() => {
  for (const client of opened) client.destroy();
});

export interface StreamOptions {
  /** Appended to the path, e.g. `?token=...`. */
  query?: string;
  /** The body of `POST /stream` (JSON-encoded unless a string). */
  body?: unknown;
  headers?: Record<string, string>;
  path?: string;
  /** For an `https:` base: the certificate to trust (a test's self-signed one). */
  ca?: string | Buffer;
}

/**
 * A real HTTP-streaming client over node:http (its own TCP connection):
 * `POST /stream`, the NDJSON lines queued as they arrive (empty heartbeat
 * lines counted apart), commands by `POST /stream/send` to any node. Its
 * reading can be paused, as a WebSocket's, so the kernel's buffers and then
 * Herald's queue fill.
 */
export class StreamClient {
  /** Every non-empty line, parsed. */
  readonly frames: any[] = [];
  /** Empty lines (heartbeats) received. */
  heartbeats = 0;
  /** Whether the response has ended (or the connection is gone). */
  done = false;
  /** The session token of the first line. */
  session = '';
  private cursor = 0;
  private buffer = '';
  private waiters: Array<() => void> = [];
  private nextId = 1;

  private constructor(
    /** The node the stream was opened on. */
    readonly base: string,
    readonly response: IncomingMessage,
  ) {
    opened.push(this);
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (line === '') this.heartbeats++;
        else this.frames.push(parseLine(line));
      }
      this.wake();
    });
    const end = (): void => {
      this.done = true;
      this.wake();
    };
    response.on('end', end);
    response.on('close', end);
    response.on('error', end);
  }

  /** Opens a stream and resolves once its first line (the session) arrived; rejects with the status and body of a refusal. */
  static open(base: string, options: StreamOptions = {}): Promise<StreamClient> {
    const url = new URL(`${options.path ?? '/stream'}${options.query ?? ''}`, base);
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const headers: Record<string, string> = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers };
    return deadline(
      new Promise<StreamClient>((resolve, reject) => {
        const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
        const request = send(url, { method: 'POST', headers, agent: false, ...(options.ca ? { ca: options.ca } : {}) }, (response) => {
          if (response.statusCode !== 200) {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (text += chunk));
            response.on('end', () => reject(Object.assign(new Error(`stream refused: ${response.statusCode} ${text}`), { status: response.statusCode, body: text })));
            return;
          }
          const client = new StreamClient(base, response);
          client.next().then((first) => {
            if (first?.action !== 'stream' || typeof first.session !== 'string') return reject(new Error(`first line is not the session: ${JSON.stringify(first)}`));
            client.session = first.session;
            resolve(client);
          }, reject);
        });
        request.on('error', reject);
        request.end(body);
      }),
      5000,
      'the stream to open',
    );
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The next frame not yet consumed. */
  next(ms = 5000): Promise<any> {
    return deadline(
      (async () => {
        while (this.cursor >= this.frames.length) {
          if (this.done) throw new Error('stream ended while waiting for a frame');
          await this.changed();
        }
        return this.frames[this.cursor++];
      })(),
      ms,
      'the next line of the stream',
    );
  }

  /** Waits until `count` frames have arrived in all (the session line included), and returns them. */
  collect(count: number, ms = 10_000): Promise<any[]> {
    return deadline(
      (async () => {
        while (this.frames.length < count) {
          if (this.done) throw new Error(`stream ended after ${this.frames.length} of ${count} frames`);
          await this.changed();
        }
        this.cursor = this.frames.length;
        return this.frames.slice(0, count);
      })(),
      ms,
      `${count} frames`,
    );
  }

  /** Resolves once `check` holds of what arrived (re-checked on every line). */
  until(check: (client: this) => boolean, what: string, ms = 10_000): Promise<void> {
    return deadline(
      (async () => {
        while (!check(this)) {
          if (this.done) throw new Error(`stream ended while waiting for ${what}`);
          await this.changed();
        }
      })(),
      ms,
      what,
    );
  }

  /** Resolves once the response ended, with every frame received. */
  ended(ms = 10_000): Promise<any[]> {
    return deadline(
      (async () => {
        while (!this.done) await this.changed();
        return this.frames;
      })(),
      ms,
      'the stream to end',
    );
  }

  /** `POST /stream/send` with this stream's session (unless the body names one) to `via` (default: the node holding the stream). */
  send(body: Record<string, unknown>, via: string = this.base): Promise<HttpAnswer> {
    return http(via, 'POST', '/stream/send', { session: this.session, ...body });
  }

  /** Sends one command with a fresh id through `via` and resolves with its reply on the stream. */
  async request(command: Record<string, unknown>, via: string = this.base, ms = 5000): Promise<any> {
    const id = this.nextId++;
    const answer = await this.send({ command: { ...command, id } }, via);
    if (answer.status !== 202) throw new Error(`send answered ${answer.status} ${answer.text}`);
    return this.reply(id, ms);
  }

  /** The reply with this id (taken out of the queue; frames before it stay). */
  reply(id: unknown, ms = 5000): Promise<any> {
    return deadline(
      (async () => {
        let scanned = this.cursor;
        for (;;) {
          for (; scanned < this.frames.length; scanned++) {
            const frame = this.frames[scanned];
            if (frame && typeof frame === 'object' && frame.id === id) {
              this.frames.splice(scanned, 1);
              return frame;
            }
          }
          if (this.done) throw new Error(`stream ended while waiting for the reply to ${String(id)}`);
          await this.changed();
        }
      })(),
      ms,
      `the reply to ${String(id)}`,
    );
  }

  /** Stops reading: the kernel's buffers fill, then Herald's queue. */
  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  /** Drops the connection, as a page that goes away. */
  destroy(): void {
    this.response.destroy();
  }
}

/** A line as JSON; one that is not (a frame split over two lines) as `{ notJson: line }`, so that a test sees it. */
function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return { notJson: line };
  }
}
