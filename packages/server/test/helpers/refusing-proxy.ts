import { createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream';

/** A reverse proxy that passes plain HTTP and refuses WebSocket upgrades. */
export interface RefusingProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Upgrades refused so far. */
  readonly upgradesRefused: number;
  close(): Promise<void>;
}

/**
 * A real reverse proxy in front of `target` (a Herald's URL) that forwards
 * every plain HTTP request, streaming both ways (nothing is buffered, so an
 * HTTP stream's lines pass as they come), and answers every WebSocket upgrade
 * `403`, as a proxy that does not know WebSocket would. `pages` are served by
 * the proxy itself (path → HTML), so that a page and the endpoints it falls
 * back to share an origin; paths starting with one of `blocked` are answered
 * 404, as if Herald had no such endpoint.
 */
export async function refusingProxy(target: string, pages: Record<string, string> = {}, blocked: string[] = []): Promise<RefusingProxy> {
  const upstream = new URL(target);
  let refused = 0;
  const sockets = new Set<Socket>();
  const server = createServer((incoming, answer) => {
    const page = pages[incoming.url ?? ''];
    if (page !== undefined) {
      answer.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return answer.end(page);
    }
    if (blocked.some((path) => (incoming.url ?? '').split('?')[0]!.startsWith(path))) {
      answer.writeHead(404, { 'content-type': 'text/plain' });
      return answer.end('not here');
    }
    const forwarded = request(
      { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (reply) => {
        answer.writeHead(reply.statusCode ?? 502, reply.headers);
        answer.flushHeaders();
        // A response Herald cuts is cut for the client too; a client that goes away ends the request to Herald.
        pipeline(reply, answer, () => forwarded.destroy());
      },
    );
    forwarded.on('error', () => answer.destroy());
    answer.on('close', () => forwarded.destroy());
    incoming.pipe(forwarded);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (_incoming, socket: Socket) => {
    refused++;
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get upgradesRefused() {
      return refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
