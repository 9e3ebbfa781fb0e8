import type { Transport, TransportListener } from './transport.js';

/** The part of the WebSocket API the client uses: the browser's, or `ws`'s on Node. */
export interface WebSocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

/** A WebSocket speaking the JSON protocol (subprotocol `json`). The constructor throws what the WebSocket class throws (a bad URL). */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly canSend = true;
  readonly #socket: WebSocketLike;

  constructor(WebSocketClass: WebSocketConstructor, url: string, listener: TransportListener) {
    const socket = new WebSocketClass(url, 'json') as WebSocketLike;
    this.#socket = socket;
    socket.onopen = () => listener.open();
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') listener.frame(event.data);
      else listener.alive();
    };
    socket.onclose = (event) => listener.closed(event.code, event.reason);
    socket.onerror = () => {
      // A close event always follows; it carries the code.
    };
  }

  send(text: string): void {
    this.#socket.send(text);
  }

  close(code: number, reason: string): void {
    try {
      this.#socket.close(code, reason);
    } catch {
      // A socket that is still connecting may refuse a close code; the client has let it go either way.
    }
  }
}
