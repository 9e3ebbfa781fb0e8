import type { Transport } from '../../src/transport/transport.js';

/** One call a `FakeTransport` received, in the order received. */
export type TransportCall =
  | { op: 'write'; bytes: Buffer }
  | { op: 'ping' }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'close'; code: number; reason: string }
  | { op: 'terminate' };

/**
 * A transport with no socket, for unit tests. It records every call in
 * order (`calls`) and the bytes it was handed (`writes`); `queuedBytes` and
 * `bytesHandedOver` are plain fields a test sets (with `growQueue`, each
 * write also adds its length to `queuedBytes`, as a socket the peer does not
 * read would). `queuedReads` counts how often `queuedBytes` was read. Like a
 * real transport, it drops writes after `close` or `terminate` (they land in
 * `dropped`). `closeEvent` plays the end of the connection: it calls the
 * listener given to `onClose` (normally `session.transportClosed`), once.
 */
export class FakeTransport implements Transport {
  readonly name = 'fake';
  readonly calls: TransportCall[] = [];
  /** Buffers accepted by `write`, in order (the very objects passed in). */
  readonly writes: Buffer[] = [];
  /** Buffers written after close or terminate. */
  readonly dropped: Buffer[] = [];
  bytesHandedOver = 0;
  /** When true, each accepted write adds its length to `queuedBytes`. */
  growQueue = false;
  queuedReads = 0;
  pings = 0;
  pauses = 0;
  resumes = 0;
  terminations = 0;
  /** The close the server asked for, if any. */
  closed: { code: number; reason: string } | undefined;
  private queued = 0;
  private listener: ((code: number, reason: string) => void) | undefined;
  private ended = false;

  get queuedBytes(): number {
    this.queuedReads++;
    return this.queued;
  }

  set queuedBytes(bytes: number) {
    this.queued = bytes;
  }

  write(bytes: Buffer): void {
    this.calls.push({ op: 'write', bytes });
    if (this.closed || this.terminations > 0) {
      this.dropped.push(bytes);
      return;
    }
    this.writes.push(bytes);
    if (this.growQueue) this.queued += bytes.length;
  }

  ping(): void {
    this.calls.push({ op: 'ping' });
    this.pings++;
  }

  pause(): void {
    this.calls.push({ op: 'pause' });
    this.pauses++;
  }

  resume(): void {
    this.calls.push({ op: 'resume' });
    this.resumes++;
  }

  close(code: number, reason: string): void {
    this.calls.push({ op: 'close', code, reason });
    this.closed ??= { code, reason };
  }

  terminate(): void {
    this.calls.push({ op: 'terminate' });
    this.terminations++;
  }

  /** Who is told when the connection ends (`closeEvent`). */
  onClose(listener: (code: number, reason: string) => void): void {
    this.listener = listener;
  }

  /** The connection ended with `code` and `reason` (the peer's, or the echo of the server's close): tells the listener, once. */
  closeEvent(code: number, reason = ''): void {
    if (this.ended) throw new Error('the close event comes once');
    this.ended = true;
    this.listener?.(code, reason);
  }

  /** Every byte accepted by `write`, as one buffer. */
  bytes(): Buffer {
    return Buffer.concat(this.writes);
  }

  /** The texts of the WebSocket text frames accepted by `write`, in order (see `decodeTextFrames`). */
  texts(): string[] {
    return decodeTextFrames(this.bytes());
  }

  /** The operations received, in order, without their arguments (`['write', 'close']`). */
  ops(): string[] {
    return this.calls.map((call) => call.op);
  }
}

/**
 * Splits server-to-client WebSocket frames (unmasked, as `encodeTextFrame`
 * builds them) and returns their texts; throws on anything else, so a test
 * notices bytes that are not whole text frames.
 */
export function decodeTextFrames(bytes: Buffer): string[] {
  const texts: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] !== 0x81) throw new Error(`not a final text frame at byte ${at}: 0x${bytes[at]!.toString(16)}`);
    const short = bytes[at + 1]!;
    if (short & 0x80) throw new Error(`a masked frame at byte ${at}`);
    let length = short;
    let header = 2;
    if (short === 126) {
      length = bytes.readUInt16BE(at + 2);
      header = 4;
    } else if (short === 127) {
      length = bytes.readUInt32BE(at + 2) * 2 ** 32 + bytes.readUInt32BE(at + 6);
      header = 10;
    }
    if (at + header + length > bytes.length) throw new Error(`a frame at byte ${at} runs past the end`);
    texts.push(bytes.toString('utf8', at + header, at + header + length));
    at += header + length;
  }
  return texts;
}
