import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import { eventually } from './servers.js';

/** One request Herald made to the backend. */
export interface BackendRequest {
  path: string;
  headers: IncomingHttpHeaders;
  /** The JSON body, parsed. */
  body: any;
  /** When it arrived (performance.now()). */
  at: number;
}

/**
 * What the backend does with a request:
 * - `json`: answers 200 (or `status`) with the value as JSON;
 * - `text`: answers 200 (or `status`) with this body as it is;
 * - `status` alone: answers that status with an empty body;
 * - `hold`: never answers (until the backend closes);
 * - `stallBody`: sends 200 and the start of a body, never its end;
 * - `delay`: waits `ms`, then does `then`.
 */
export type Behaviour =
  | { json: unknown; status?: number }
  | { text: string; status?: number }
  | { status: number }
  | { hold: true }
  | { stallBody: true }
  | { delay: number; then: Behaviour };

export type Route = (request: BackendRequest) => Behaviour;

const backends: Backend[] = [];
after(async () => {
  await Promise.all(backends.map((backend) => backend.close()));
});

/**
 * A real HTTP backend for the proxy tests, on a free loopback port: each
 * path answers as its route says (404 without one), and every request is
 * recorded, in order.
 */
export class Backend {
  readonly requests: BackendRequest[] = [];
  private readonly routes = new Map<string, Route>();
  private readonly held = new Set<ServerResponse>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<Backend> {
    let backend!: Backend;
    const server = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => backend.handle(req.url ?? '/', req.headers, text, res));
    });
    backend = new Backend(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    backends.push(backend);
    return backend;
  }

  /** The URL of `path` on this backend. */
  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Answers requests to `path` as `route` says. */
  route(path: string, route: Route): this {
    this.routes.set(path, route);
    return this;
  }

  /** The requests made to `path`. */
  requestsTo(path: string): BackendRequest[] {
    return this.requests.filter((request) => request.path === path);
  }

  /** Resolves once `count` requests reached `path`. */
  async received(path: string, count: number, ms = 5000): Promise<BackendRequest[]> {
    await eventually(() => this.requestsTo(path).length >= count, `${count} requests to ${path}`, ms);
    return this.requestsTo(path);
  }

  private handle(path: string, headers: IncomingHttpHeaders, text: string, res: ServerResponse): void {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const request: BackendRequest = { path, headers, body, at: performance.now() };
    this.requests.push(request);
    const route = this.routes.get(path);
    this.answer(route ? route(request) : { status: 404 }, res);
  }

  private answer(behaviour: Behaviour, res: ServerResponse): void {
    if ('delay' in behaviour) {
      this.held.add(res);
      setTimeout(() => {
        this.held.delete(res);
        if (!res.destroyed) this.answer(behaviour.then, res);
      }, behaviour.delay);
      return;
    }
    if ('hold' in behaviour) {
      this.held.add(res);
      return;
    }
    if ('stallBody' in behaviour) {
      this.held.add(res);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"allow":');
      return;
    }
    if ('json' in behaviour) {
      res.writeHead(behaviour.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(behaviour.json));
      return;
    }
    if ('text' in behaviour) {
      res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/plain' });
      res.end(behaviour.text);
      return;
    }
    res.writeHead(behaviour.status).end();
  }

  /** Stops the backend: held answers are cut, the port is closed. */
  async close(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.held.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A URL where nothing listens (a port that was free a moment ago): connection refused. */
export async function refusingUrl(path: string): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${path}`;
}
