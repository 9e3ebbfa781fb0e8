import { encodeLhttp, type MultipartPart } from '@herald/protocol';
import type { ConnectionInfo, LhttpMessage, LhttpMultipart } from '../../herald.js';

/** One part of a multipart message, in the original's linked-list shape. */
export class MultipartBlock implements LhttpMultipart {
  constructor(
    private readonly part: MultipartPart,
    private readonly next: MultipartBlock | null,
  ) {}

  getNext(): MultipartBlock | null {
    return this.next;
  }

  getBody(): string {
    return this.part.body;
  }

  getHeaders(): Record<string, string> {
    return Object.fromEntries(this.part.headers);
  }

  /** Builds the list from parts. */
  static list(parts: MultipartPart[]): MultipartBlock | null {
    let head: MultipartBlock | null = null;
    for (let i = parts.length - 1; i >= 0; i--) head = new MultipartBlock(parts[i]!, head);
    return head;
  }
}

/**
 * What a processor or filter gets for one LHTTP message: the original's
 * `WsHandler` (SEEDS-SPEC §3.5, §3.7), with its semantics kept:
 * - `addHeader(k, v)` replaces the response headers with `{k: v}`: only the
 *   last one before a `send` survives, and then request headers are not sent;
 * - `setHeader(k, v)` changes the request headers, which the built-in
 *   headers read afterwards: `setHeader('publish', '')` cancels a publish;
 * - `send(body)` answers with the response command (or the request's) and
 *   the response headers (or all request headers), then resets both;
 * - `setCommand`/`addHeader` without a `send` change what `publish` sends.
 */
export class LhttpHandler implements LhttpMessage {
  /** Response state, reset after every send. */
  responseCommand = '';
  responseHeaders: Map<string, string> | null = null;
  /** Set when a filter or processor decides the message goes no further. */
  stopped = false;

  constructor(
    readonly connection: ConnectionInfo,
    readonly command: string,
    readonly headers: Map<string, string>,
    readonly body: string,
    private readonly multipart: MultipartBlock | null,
    private readonly write: (text: string) => void,
  ) {}

  getCommand(): string {
    return this.command;
  }

  /** The request header's value, exact key; "" when absent. */
  getHeader(key: string): string {
    return this.headers.get(key) ?? '';
  }

  getBody(): string {
    return this.body;
  }

  setCommand(command: string): void {
    this.responseCommand = command;
  }

  addHeader(key: string, value: string): void {
    this.responseHeaders = new Map([[key, value]]);
  }

  setHeader(key: string, value: string): void {
    this.headers.set(key, value);
  }

  getMultipart(): MultipartBlock | null {
    return this.multipart;
  }

  /** The message as the response state says: what `send` writes and `publish` carries. */
  response(body: string): string {
    return encodeLhttp({
      command: this.responseCommand || this.command,
      headers: this.responseHeaders ?? this.headers,
      body,
    });
  }

  send(body: string): void {
    this.write(this.response(body));
    this.responseCommand = '';
    this.responseHeaders = null;
  }
}
