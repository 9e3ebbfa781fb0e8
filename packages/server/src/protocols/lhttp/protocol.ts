import { decodeLhttpWithBytes, lhttpGate, LhttpError, splitMultipart, type ErrorCode } from '@herald/protocol';
import { HeraldError } from '../../errors.js';
import type { FrameHandler, Session } from '../../hub/session.js';
import { lhttpErrorText } from './codec.js';
import type { LhttpFilter, LhttpProcessor } from '../../herald.js';
import { LhttpHandler, MultipartBlock } from './handler.js';

export type { LhttpFilter, LhttpProcessor } from '../../herald.js';

interface ConnectionState {
  opened: boolean;
  last: LhttpHandler | null;
}

/** Sends an LHTTP error message: `LHTTP/1.0 error`, a `code` header, the message as body. */
export function writeLhttpError(session: Session, code: ErrorCode, message: string): void {
  session.sendText(lhttpErrorText(code, message));
}

/**
 * The LHTTP/1.0 protocol over WebSocket (PROTOCOL.md §3, SEEDS-SPEC §3.6). Per
 * accepted message: decode; beforeRequest filters; on the connection's first
 * message, onOpen filters and the processor's onOpen; the processor's
 * onMessage; afterRequest filters (the built-ins run subscribe, publish,
 * unsubscribe, then upstream). Messages of one connection are handled one
 * after another, in order, even when a step is asynchronous. Its frames are
 * encoded by `lhttpCodec` (codec.ts).
 */
export class LhttpProtocol implements FrameHandler {
  /** LHTTP has no login message: identity comes from the URL's `?token=` or the connect hook. */
  readonly canLogIn = false;
  private readonly processors = new Map<string, LhttpProcessor>();
  private readonly filters: LhttpFilter[] = [];
  private readonly states = new WeakMap<Session, ConnectionState>();

  constructor(
    builtIns: LhttpFilter[],
    private readonly reportError: (session: Session, err: unknown) => void,
  ) {
    this.filters.push(...builtIns);
  }

  /** Registers the processor of a command (exact, case-sensitive); the last registration wins. */
  register(command: string, processor: LhttpProcessor): void {
    this.processors.set(command, processor);
  }

  /** Adds a filter after the built-in ones and those added before. */
  addFilter(filter: LhttpFilter): void {
    this.filters.push(filter);
  }

  onFrame(session: Session, data: Buffer, _isBinary: boolean): void | Promise<void> {
    // Frames the original's gate skips are skipped silently, binary or not.
    if (lhttpGate(data) !== null) return;
    let decoded;
    try {
      decoded = decodeLhttpWithBytes(data);
    } catch (err) {
      return this.fail(session, 'bad_request', (err as LhttpError).message);
    }
    let multipart: MultipartBlock | null = null;
    const offsets = decoded.headers.get('multipart');
    if (offsets) {
      try {
        multipart = MultipartBlock.list(splitMultipart(offsets, decoded.bodyBytes));
      } catch (err) {
        return this.fail(session, 'bad_request', (err as LhttpError).message);
      }
    }
    const handler = new LhttpHandler(session, decoded.command, decoded.headers, decoded.body, multipart, (text) => {
      session.sendText(text);
    });
    return this.run(session, handler).catch((err: unknown) => this.handlerFailed(session, err));
  }

  /** The policy refused the frame (over the command rate): an LHTTP error message with the code. */
  refuse(session: Session, refusal: HeraldError): void {
    this.fail(session, refusal.code, refusal.message);
  }

  /** Runs the connection's close hooks (filters, then the last message's processor). */
  onClose(session: Session): void {
    const state = this.states.get(session);
    if (!state?.last) return;
    const handler = state.last;
    void (async () => {
      for (const filter of this.filters) await filter.onClose?.(handler);
      await this.processors.get(handler.command)?.onClose?.(handler);
    })().catch((err: unknown) => this.reportError(session, err));
  }

  private async run(session: Session, handler: LhttpHandler): Promise<void> {
    let state = this.states.get(session);
    if (!state) {
      state = { opened: false, last: null };
      this.states.set(session, state);
    }
    const processor = this.processors.get(handler.command);
    for (const filter of this.filters) {
      await filter.beforeRequest?.(handler);
      if (handler.stopped) return;
    }
    if (!state.opened) {
      state.opened = true;
      for (const filter of this.filters) await filter.onOpen?.(handler);
      await processor?.onOpen?.(handler);
    }
    state.last = handler;
    await processor?.onMessage?.(handler);
    for (const filter of this.filters) {
      if (handler.stopped) return;
      await filter.afterRequest?.(handler);
    }
  }

  private handlerFailed(session: Session, err: unknown): void {
    if (err instanceof HeraldError) return this.fail(session, err.code, err.message);
    this.reportError(session, err);
    this.fail(session, 'internal', 'internal error');
  }

  fail(session: Session, code: ErrorCode, message: string): void {
    writeLhttpError(session, code, message);
  }
}
