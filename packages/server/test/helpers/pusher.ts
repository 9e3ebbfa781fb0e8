import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { Herald, HeraldOptions } from '../../src/index.js';
import { deadline } from './helpers.js';

const require = createRequire(import.meta.url);

/** The official Pusher server library (`pusher`, pinned in devDependencies). */
export const PusherServer = require('pusher') as new (options: Record<string, unknown>) => PusherServerLib;
/** pusher-js's Node build (`pusher-js`, pinned). */
export const PusherClient = require('pusher-js') as new (key: string, options: Record<string, unknown>) => any;

export interface PusherServerLib {
  authorizeChannel(socketId: string, channel: string, data?: { user_id: string; user_info?: unknown }): { auth: string; channel_data?: string; shared_secret?: string };
  authenticateUser(socketId: string, userData: { id: string; [key: string]: unknown }): { auth: string; user_data: string };
  trigger(channel: string | string[], event: string, data: unknown, params?: { socket_id?: string }): Promise<unknown>;
  sendToUser(userId: string, event: string, data: unknown): Promise<unknown>;
}

export const APP = { id: 'app1', key: 'app1-key', secret: 'app1-secret-0123456789' } as const;
/** A 32-byte master key for encrypted channels, base64 (the server library derives each channel's shared secret from it). */
export const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');

/** Herald options with one Pusher app (client events on, a small client-event rate to test its limit). */
export function pusherOptions(app: Record<string, unknown> = {}, rest: HeraldOptions = {}): HeraldOptions {
  return { ...rest, pusher: { enabled: true, apps: [{ ...APP, clientEvents: true, clientEventRate: 5, ...app }] } } as HeraldOptions;
}

/**
 * The official server library pointed at Herald: its triggers, batches and
 * sendToUser go to Herald's Pusher HTTP API (`/apps/{id}/events`), signed
 * with the app's secret; it also signs the channel authorisations and
 * sign-ins of the test's auth endpoint, and encrypts for encrypted channels.
 */
export function serverLib(herald: Herald): PusherServerLib {
  return new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(herald.port), useTLS: false, encryptionMasterKeyBase64: MASTER_KEY });
}

/**
 * An app's auth endpoint, as an application serves it with the official
 * library: POST /pusher/auth (channel authorisation; presence members are
 * `?user=<id>`), POST /pusher/user-auth (sign-in as `?user=<id>`).
 */
export async function authServer(lib: PusherServerLib): Promise<{ url: string; server: Server; requests: number }> {
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      state.requests++;
      const params = new URLSearchParams(body);
      const user = new URL(req.url!, 'http://x').searchParams.get('user') ?? 'anonymous';
      const socketId = params.get('socket_id')!;
      let answer: unknown;
      if (req.url!.startsWith('/pusher/user-auth')) {
        answer = lib.authenticateUser(socketId, { id: user, name: `User ${user}` });
      } else {
        const channel = params.get('channel_name')!;
        if (channel.includes('forbidden')) {
          res.writeHead(403).end('{"error":"forbidden"}');
          return;
        }
        answer = channel.startsWith('presence-') ? lib.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: `User ${user}` } }) : lib.authorizeChannel(socketId, channel);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    get requests() {
      return state.requests;
    },
  };
}

/**
 * pusher-js's Node build closes a socket the server closed by closing it
 * again, and its WebSocket driver (faye) then waits 30 s (CLOSE_TIMEOUT) for
 * a close frame that already came: that timer would hold the test process
 * for 30 s after its tests. Once the client has left the connected state,
 * the timer of the socket it had is cleared.
 */
function withoutCloseTimer(client: any): any {
  let socket: any;
  client.connection.bind('state_change', (states: { current: string }) => {
    if (states.current === 'connected') socket = client.connection.connection?.transport?.socket;
    else if (socket) {
      const closing = socket;
      socket = undefined;
      setImmediate(() => clearTimeout(closing._closeTimer));
    }
  });
  return client;
}

/** pusher-js pointed at Herald, with the test's auth endpoint; `user` is who the endpoint says the client is. */
export function pusherClient(herald: Herald, auth: string, user = 'anonymous', options: Record<string, unknown> = {}): any {
  return withoutCloseTimer(new PusherClient(APP.key, {
    cluster: 'herald',
    wsHost: '127.0.0.1',
    wsPort: herald.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: { endpoint: `${auth}/pusher/auth?user=${user}`, transport: 'ajax' },
    userAuthentication: { endpoint: `${auth}/pusher/user-auth?user=${user}`, transport: 'ajax' },
    ...options,
  }));
}

/** Resolves with the first emission of `event` on a pusher-js emitter (a connection, a channel, the user). */
export function nextEvent(emitter: any, event: string, ms = 5000): Promise<any> {
  return deadline(
    new Promise((resolve) => {
      const handler = (...args: unknown[]): void => {
        emitter.unbind(event, handler);
        resolve(args[0]);
      };
      emitter.bind(event, handler);
    }),
    ms,
    `pusher-js event ${event}`,
  );
}

/** Resolves with the first `error` of a pusher-js connection that carries a Pusher code (`{type, data: {code, message}}`). */
export function pusherErrorOf(client: any, ms = 5000): Promise<{ code: number; message: string }> {
  return deadline(
    new Promise((resolve) => {
      const handler = (err: any): void => {
        // After the handshake: {type: 'PusherError', data}; during it: {type: 'WebSocketError', error: {type: 'PusherError', data}}.
        const data = err?.data ?? err?.error?.data;
        if (typeof data?.code !== 'number') return;
        client.connection.unbind('error', handler);
        resolve(data);
      };
      client.connection.bind('error', handler);
    }),
    ms,
    'a pusher-js error with a code',
  );
}

/** Resolves once the pusher-js client is connected. */
export function connected(client: any, ms = 5000): Promise<void> {
  if (client.connection.state === 'connected') return Promise.resolve();
  return deadline(
    new Promise<void>((resolve) => {
      const handler = (): void => {
        client.connection.unbind('connected', handler);
        resolve();
      };
      client.connection.bind('connected', handler);
    }),
    ms,
    'pusher-js connected',
  );
}

/** Subscribes and resolves with the channel once `pusher:subscription_succeeded` came (rejects on `pusher:subscription_error`). */
export function subscribed(client: any, channel: string, ms = 5000): Promise<any> {
  const ch = client.subscribe(channel);
  return deadline(
    new Promise((resolve, reject) => {
      ch.bind('pusher:subscription_succeeded', () => resolve(ch));
      ch.bind('pusher:subscription_error', (err: unknown) => reject(Object.assign(new Error(`subscription_error on ${channel}: ${JSON.stringify(err)}`), { detail: err })));
    }),
    ms,
    `subscription to ${channel}`,
  );
}
