import { once } from 'node:events';
import { after } from 'node:test';
import WebSocket from 'ws';
import { createHerald, type Herald, type HeraldOptions } from '../../src/index.js';
import { internals } from './internals.js';

const started: Herald[] = [];
const clients: TestClient[] = [];

// Whatever a test leaves open (a failed assertion skips its own cleanup) is
// closed when the file's tests end, so a failure never keeps the process alive.
after(async () => {
  for (const client of clients) client.ws.terminate();
  await Promise.all(started.map((herald) => herald.close()));
});

/** Starts a real Herald on a free loopback port, quiet, without demo pages. */
export async function startHerald(options: HeraldOptions = {}): Promise<Herald> {
  const herald = await createHerald({
    port: 0,
    host: '127.0.0.1',
    log: { level: 'silent' },
    ...options,
    demo: { enabled: false, ...options.demo },
  });
  started.push(herald);
  return herald;
}

/** Resolves once the node's broker is ready (at once when it already is); fails after 10 s. */
export function brokerReady(herald: Herald): Promise<void> {
  return deadline(
    new Promise<void>((resolve) => {
      if (internals(herald).broker.state === 'ready') return resolve();
      herald.on('broker', (state) => state === 'ready' && resolve());
    }),
    10_000,
    'broker ready',
  );
}

export function wsUrl(herald: Herald, path = '/ws'): string {
  return `${herald.url.replace('http', 'ws')}${path}`;
}

export interface ClientOptions {
  protocols?: string | string[];
  headers?: Record<string, string>;
  /** Answer WebSocket pings (default true). */
  autoPong?: boolean;
  /** For a `wss:` URL: the certificate to trust (a test's self-signed one). */
  ca?: string | Buffer;
}

export interface Closed {
  code: number;
  reason: string;
}

/** Fails a wait that an event should have ended, instead of hanging the suite. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/**
 * A real `ws` client that queues every frame it receives, so a test can
 * await "the next message" or "the reply to id N" without sleeping.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: unknown[] = [];
  readonly closed: Promise<Closed>;
  private cursor = 0;
  private waiters: Array<() => void> = [];
  private nextId = 1;

  constructor(url: string, options: ClientOptions = {}) {
    this.ws = new WebSocket(url, options.protocols, { headers: options.headers, autoPong: options.autoPong ?? true, ...(options.ca ? { ca: options.ca } : {}) });
    clients.push(this);
    this.ws.on('message', (data, isBinary) => {
      const text = (data as Buffer).toString('utf8');
      let value: unknown = text;
      if (!isBinary) {
        try {
          value = JSON.parse(text);
        } catch {
          value = text;
        }
      }
      this.received.push(value);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    this.ws.on('error', () => {
      /* surfaced through `opened` or `closed` */
    });
  }

  static async open(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const client = new TestClient(url, options);
    await deadline(once(client.ws, 'open'), 5000, 'the connection to open');
    return client;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame not yet consumed. */
  async next(ms = 5000): Promise<any> {
    return deadline(
      (async () => {
        while (this.cursor >= this.received.length) {
          if (this.ws.readyState === WebSocket.CLOSED) throw new Error('connection closed while waiting for a frame');
          await this.changed();
        }
        return this.received[this.cursor++];
      })(),
      ms,
      'the next frame',
    );
  }

  /** Waits until `count` frames have been received in all, and returns all of them. */
  async collect(count: number, ms = 10_000): Promise<any[]> {
    return deadline(
      (async () => {
        while (this.received.length < count) {
          if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed after ${this.received.length} of ${count} frames`);
          await this.changed();
        }
        this.cursor = this.received.length;
        return this.received.slice(0, count);
      })(),
      ms,
      `${count} frames`,
    );
  }

  /** Sends a command with a fresh id and resolves with its reply (frames before it stay queued). */
  async request(command: Record<string, unknown>, ms = 5000): Promise<any> {
    const id = this.nextId++;
    this.send({ ...command, id });
    return deadline(
      (async () => {
        let scanned = this.cursor;
        for (;;) {
          for (; scanned < this.received.length; scanned++) {
            const frame = this.received[scanned] as { id?: unknown };
            if (frame && typeof frame === 'object' && frame.id === id) {
              this.received.splice(scanned, 1);
              return frame;
            }
          }
          if (this.ws.readyState === WebSocket.CLOSED) throw new Error('connection closed while waiting for a reply');
          await this.changed();
        }
      })(),
      ms,
      `the reply to ${JSON.stringify(command)}`,
    );
  }

  close(): Promise<Closed> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    return this.closed;
  }
}

export function connect(herald: Herald, options: ClientOptions & { path?: string } = {}): Promise<TestClient> {
  return TestClient.open(wsUrl(herald, options.path), options);
}

export interface HttpAnswer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export async function http(herald: Herald | string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const base = typeof herald === 'string' ? herald : herald.url;
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}
