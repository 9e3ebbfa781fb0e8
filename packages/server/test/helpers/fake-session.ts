import type { ErrorCode } from '@herald/protocol';
import type { Publication } from '../../src/broker/broker.js';
import type { HeraldError } from '../../src/errors.js';
import { Flusher } from '../../src/hub/flusher.js';
import { encodeTextFrame, webSocketText } from '../../src/hub/frame.js';
import { Session, type FrameHandler, type SessionHost } from '../../src/hub/session.js';
import type { Codec, GapReason, PresenceInfo } from '../../src/protocols/codec.js';
import { FakeTransport } from './fake-transport.js';

type Optional = 'plainPush' | 'error' | 'ping' | 'presence' | 'gap' | 'subscribed' | 'unsubscribed';

/**
 * A codec that records every call and answers readable text frames:
 * `<name>:pub <topic> <payload>[ @<offset>/<epoch>]`, `<name>:push <payload>`,
 * `<name>:error <code> <message>`, `<name>:ping`,
 * `<name>:<join|leave> <topic> <conn>[ <uid>]`, `<name>:gap <topic> <reason>`,
 * `<name>:subscribed <topic>[ <fields JSON>]`, `<name>:unsubscribed <topic> <reason>`.
 * The kinds named in `none` answer null (the protocol has no such frame).
 */
export class RecordingCodec implements Codec {
  /** Every call, in order: the method and its arguments. */
  readonly calls: Array<{ method: keyof Codec; args: unknown[] }> = [];

  /** WebSocket text frames, as every codec of a WebSocket connection. */
  readonly framing = webSocketText;

  constructor(
    readonly name: string,
    private readonly none: readonly Optional[] = [],
  ) {}

  frame(text: string): Buffer {
    this.calls.push({ method: 'frame', args: [text] });
    return encodeTextFrame(text);
  }

  /** How many times `method` was called. */
  count(method: keyof Codec): number {
    return this.calls.filter((call) => call.method === method).length;
  }

  publication(publication: Publication): Buffer {
    this.calls.push({ method: 'publication', args: [publication] });
    const at = publication.offset === undefined ? '' : ` @${publication.offset}/${publication.epoch}`;
    return encodeTextFrame(`${this.name}:pub ${publication.topic} ${publication.payload}${at}`);
  }

  push(payload: string): Buffer {
    this.calls.push({ method: 'push', args: [payload] });
    return encodeTextFrame(`${this.name}:push ${payload}`);
  }

  plainPush(text: string): Buffer | null {
    this.calls.push({ method: 'plainPush', args: [text] });
    // The text as it is, as every codec that has a plain push sends it.
    return this.none.includes('plainPush') ? null : encodeTextFrame(text);
  }

  error(code: ErrorCode, message: string): Buffer | null {
    this.calls.push({ method: 'error', args: [code, message] });
    return this.none.includes('error') ? null : encodeTextFrame(`${this.name}:error ${code} ${message}`);
  }

  ping(): Buffer | null {
    this.calls.push({ method: 'ping', args: [] });
    return this.none.includes('ping') ? null : encodeTextFrame(`${this.name}:ping`);
  }

  presence(change: 'join' | 'leave', topic: string, entry: PresenceInfo): Buffer | null {
    this.calls.push({ method: 'presence', args: [change, topic, entry] });
    if (this.none.includes('presence')) return null;
    return encodeTextFrame(`${this.name}:${change} ${topic} ${entry.conn}${entry.uid === undefined ? '' : ` ${entry.uid}`}`);
  }

  gap(topic: string, reason: GapReason): Buffer | null {
    this.calls.push({ method: 'gap', args: [topic, reason] });
    return this.none.includes('gap') ? null : encodeTextFrame(`${this.name}:gap ${topic} ${reason}`);
  }

  subscribed(topic: string, fields: object | undefined): Buffer | null {
    this.calls.push({ method: 'subscribed', args: [topic, fields] });
    return this.none.includes('subscribed') ? null : encodeTextFrame(`${this.name}:subscribed ${topic}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  }

  unsubscribed(topic: string, reason: string): Buffer | null {
    this.calls.push({ method: 'unsubscribed', args: [topic, reason] });
    return this.none.includes('unsubscribed') ? null : encodeTextFrame(`${this.name}:unsubscribed ${topic} ${reason}`);
  }
}

/**
 * A frame handler that records the frames it is given (as text) and the
 * refusals. `onFrame` answers what `reply` returns for the frame: nothing
 * (handled at once), a promise (a command that answers later), or it throws.
 */
export class RecordingHandler implements FrameHandler {
  readonly frames: string[] = [];
  readonly refusals: Array<{ code: string; frame: string; isBinary: boolean }> = [];
  readonly opened: Session[] = [];
  readonly closed: Session[] = [];
  reply: (text: string) => void | Promise<void> = () => undefined;

  constructor(readonly canLogIn = true) {}

  onFrame(_session: Session, data: Buffer, _isBinary: boolean): void | Promise<void> {
    const text = data.toString();
    this.frames.push(text);
    return this.reply(text);
  }

  refuse(_session: Session, refusal: HeraldError, data: Buffer, isBinary: boolean): void {
    this.refusals.push({ code: refusal.code, frame: data.toString(), isBinary });
  }

  onOpen(session: Session): void {
    this.opened.push(session);
  }

  onClose(session: Session): void {
    this.closed.push(session);
  }
}

/**
 * A session host that records what sessions tell it. Its flusher is a real
 * `Flusher`; a test flushes a turn at once with `flush()` instead of waiting
 * for the check phase. `admit` decides each inbound frame (null: handled).
 */
export class FakeSessionHost implements SessionHost {
  readonly flusher = new Flusher();
  readonly slowConsumers: Array<{ session: Session; queuedBytes: number }> = [];
  readonly handlerErrors: Array<{ session: Session; err: unknown }> = [];
  readonly closes: Array<{ session: Session; code: number; reason: string; by: 'server' | 'client' }> = [];
  admitted = 0;
  admit: (session: Session) => HeraldError | null = () => null;
  /** Called after a slow consumer is recorded (the gateway closes it with 1013). */
  onSlow: ((session: Session, queuedBytes: number) => void) | undefined;

  constructor(
    readonly maxQueueBytes = 1024 * 1024,
    readonly closeTimeout = 5000,
  ) {}

  flush(): void {
    this.flusher.flush();
  }

  onSlowConsumer(session: Session, queuedBytes: number): void {
    this.slowConsumers.push({ session, queuedBytes });
    this.onSlow?.(session, queuedBytes);
  }

  onHandlerError(session: Session, err: unknown): void {
    this.handlerErrors.push({ session, err });
  }

  admitFrame(session: Session): HeraldError | null {
    this.admitted++;
    return this.admit(session);
  }

  onClosed(session: Session, code: number, reason: string, by: 'server' | 'client'): void {
    this.closes.push({ session, code, reason, by });
  }
}

export interface FakeSessionOptions {
  id?: string;
  codec?: Codec;
  handler?: FrameHandler;
  host?: FakeSessionHost;
  transport?: FakeTransport;
  /** Open the session at once (default true). */
  open?: boolean;
}

let sessions = 0;

/**
 * A real `Session` over a `FakeTransport`, with the transport's close event
 * wired to `session.transportClosed` (as the WebSocket transport does).
 */
export function fakeSession(options: FakeSessionOptions = {}): { session: Session; transport: FakeTransport; host: FakeSessionHost } {
  const transport = options.transport ?? new FakeTransport();
  const host = options.host ?? new FakeSessionHost();
  const session = new Session(options.id ?? `s${++sessions}`, transport, options.codec ?? new RecordingCodec('c'), options.handler ?? new RecordingHandler(), '127.0.0.1', host);
  transport.onClose((code, reason) => session.transportClosed(code, reason));
  if (options.open !== false) session.open();
  return { session, transport, host };
}
