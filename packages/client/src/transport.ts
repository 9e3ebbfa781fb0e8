/**
 * The SDK's connection behind a small interface, so that the client works the
 * same over a WebSocket, an HTTP stream (fetch + POSTs) or Server-Sent Events.
 * A transport carries JSON-protocol frame texts; it knows nothing of commands,
 * subscriptions or reconnecting, which stay in the client.
 */

/** The transports the SDK can connect with. `sse` is receive-only. */
export type TransportName = 'websocket' | 'http-stream' | 'sse';

/** Every transport name, in the default order of preference. */
export const TRANSPORTS: readonly TransportName[] = ['websocket', 'http-stream', 'sse'];

/**
 * What a transport tells the client. A transport never calls it from within
 * its constructor (always on a later turn), and the client ignores every call
 * from a transport it has replaced or closed.
 */
export interface TransportListener {
  /** The connection is up (the WebSocket opened, the HTTP stream's first line came, the event stream opened). */
  open(): void;
  /** One server frame: a JSON object's text (or an array of them, a batch), exactly as on WebSocket. */
  frame(text: string): void;
  /** A sign of life that is no frame (an HTTP-streaming heartbeat line). */
  alive(): void;
  /** The connection ended: `code` as a WebSocket close code (1006 when the network failed or no answer came). */
  closed(code: number, reason: string): void;
}

/** One connection attempt over one transport. */
export interface Transport {
  readonly name: TransportName;
  /** False for SSE: it cannot carry commands (the client rejects them with a ReceiveOnlyError). */
  readonly canSend: boolean;
  /** Sends one command's text, in order with the ones before it. Only after `open`, and only when `canSend`. */
  send(text: string): void;
  /** Ends the connection from the client's side; never throws. The listener may still be called; the client ignores it. */
  close(code: number, reason: string): void;
}

/**
 * The HTTP URL of another endpoint beside the WebSocket one: `ws:` becomes
 * `http:`, `wss:` `https:`, and a path ending in `/ws` ends in `path` instead
 * (any other path gets `path` appended). The query string is kept (a `?token=`
 * on the WebSocket URL authenticates the HTTP endpoints the same way).
 */
export function siblingUrl(webSocketUrl: string, path: string): string {
  const url = new URL(webSocketUrl);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  url.pathname = url.pathname.replace(/\/ws\/?$|\/$/, '') + path;
  return url.href;
}

/** The close code an HTTP refusal stands for, as the WebSocket protocol would have said it; 1006 for anything that only says "this did not work". */
export function closeCodeOf(status: number): number {
  switch (status) {
    case 401:
      return 4501;
    case 403:
      return 4503;
    case 413:
      return 1009;
    case 429:
      return 4029;
    case 503:
      return 1013;
    default:
      return 1006;
  }
}

/** The message of an HTTP API error body (`{"ok":false,"error":{"code","message"}}`), or the status. */
export async function refusalOf(response: Response): Promise<string> {
  let text = '';
  try {
    text = await response.text();
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error) return `${String(body.error.code)}: ${String(body.error.message)}`;
  } catch {
    // not the API's JSON: the status (and the start of the text) says enough
  }
  return `HTTP ${response.status}${text ? ` ${text.slice(0, 80)}` : ''}`;
}
