/**
 * Stand-ins for `fetch` (Herald's HTTP-streaming endpoints) and `EventSource`
 * that the unit tests drive by hand. The fetch fake answers with real
 * `Response` objects over real `ReadableStream`s, so the SDK reads them as it
 * reads a server's.
 */

/** Items in arrival order; `next()` waits for one when none is left. */
export class Arrivals<T> {
  readonly all: T[] = [];
  #taken = 0;
  #waiters: Array<(item: T) => void> = [];

  push(item: T): void {
    this.all.push(item);
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#taken++;
      waiter(item);
    }
  }

  next(): Promise<T> {
    if (this.#taken < this.all.length) return Promise.resolve(this.all[this.#taken++]!);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** How many arrived that no next() took yet. */
  get waiting(): number {
    return this.all.length - this.#taken;
  }
}

const encoder = new TextEncoder();

function json(status: number, body: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** One `POST /stream`: accept it (a session line first), refuse it, or fail it; then feed it lines. */
export class FakeStream {
  readonly headers: Record<string, string>;
  aborted = false;
  #resolve!: (response: Response) => void;
  #reject!: (error: Error) => void;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  readonly response: Promise<Response>;

  constructor(
    readonly url: string,
    readonly init: RequestInit,
  ) {
    this.headers = { ...(init.headers as Record<string, string>) };
    this.response = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    init.signal?.addEventListener('abort', () => {
      this.aborted = true;
      const error = new DOMException('aborted', 'AbortError');
      this.#reject(error);
      try {
        this.#controller?.error(error);
      } catch {
        // already closed
      }
    });
  }

  /** 200 with the `stream` line naming the session. */
  accept(session: string): this {
    return this.respond().line({ action: 'stream', session });
  }

  /** 200 and a body to come. */
  respond(): this {
    const body = new ReadableStream<Uint8Array>({ start: (controller) => void (this.#controller = controller) });
    this.#resolve(new Response(body, { status: 200, headers: { 'content-type': 'application/x-ndjson; charset=utf-8' } }));
    return this;
  }

  refuse(status: number, body?: unknown): void {
    this.#resolve(json(status, body));
  }

  /** The request fails as a refused connection would. */
  fail(message = 'connect ECONNREFUSED'): void {
    this.#reject(new TypeError(message));
  }

  /** One NDJSON line: a frame, or '' for a heartbeat. */
  line(frame: unknown): this {
    return this.raw(`${frame === '' ? '' : JSON.stringify(frame)}\n`);
  }

  /** Bytes as they come, cut anywhere. */
  raw(text: string): this {
    this.#controller!.enqueue(encoder.encode(text));
    return this;
  }

  /** The server ends the response (unless the client let it go already). */
  end(): void {
    if (!this.aborted) this.#controller!.close();
  }
}

/** One `POST /stream/send`. */
export class FakeSend {
  readonly body: { session: string; commands: Array<Record<string, unknown>> };
  #resolve!: (response: Response) => void;
  readonly response: Promise<Response>;

  constructor(
    readonly url: string,
    init: RequestInit,
  ) {
    this.body = JSON.parse(String(init.body)) as FakeSend['body'];
    this.response = new Promise((resolve) => (this.#resolve = resolve));
  }

  answer(status = 202, body: unknown = { ok: true }): void {
    this.#resolve(json(status, body));
  }
}

/** The fetch the client gets: POSTs to .../send are commands, any other POST opens a stream. */
export class FakeHttp {
  readonly streams = new Arrivals<FakeStream>();
  readonly sends = new Arrivals<FakeSend>();

  readonly fetch = (url: string, init: RequestInit): Promise<Response> => {
    if (init.method !== 'POST') throw new Error(`unexpected ${init.method} ${url}`);
    if (url.endsWith('/send')) {
      const send = new FakeSend(url, init);
      this.sends.push(send);
      return send.response;
    }
    const stream = new FakeStream(url, init);
    this.streams.push(stream);
    return stream.response;
  };
}

type Listener = (event: { data?: unknown }) => void;

/** An EventSource stand-in: the test opens it, sends it events, fails it. */
export class FakeEventSource {
  static created = new Arrivals<FakeEventSource>();

  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  closed = false;
  readonly #listeners = new Map<string, Listener[]>();

  constructor(readonly url: string) {
    FakeEventSource.created.push(this);
  }

  get topics(): string[] {
    return new URL(this.url).searchParams.getAll('topic');
  }

  param(name: string): string | null {
    return new URL(this.url).searchParams.get(name);
  }

  addEventListener(type: string, listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
  }

  open(): void {
    this.onopen?.({});
  }

  /** A publication (the default event). */
  message(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** A named event (`event: <type>`) with a JSON frame as its data. */
  event(type: string, frame: unknown): void {
    for (const listener of this.#listeners.get(type) ?? []) listener({ data: JSON.stringify(frame) });
  }

  /** The EventSource's own error: the stream failed or could not open. */
  fail(): void {
    for (const listener of this.#listeners.get('error') ?? []) listener({});
  }
}

/** A sessionStorage stand-in. */
export class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}
