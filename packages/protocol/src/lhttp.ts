/**
 * The LHTTP/1.0 text protocol of the Lhttp seed, as its original server reads
 * and writes it (SEEDS-SPEC §3.3–3.5). Pure functions, no I/O.
 *
 *     LHTTP/1.0 <command>\r\n
 *     <key>:<value>\r\n        (any number)
 *     \r\n
 *     <body>
 *
 * The parser follows the original's algorithm exactly, quirks included:
 * keys and values are not trimmed, keys are case-sensitive, a line is split
 * at its first colon, later duplicates overwrite earlier ones (keeping the
 * first one's position), the body is everything after the first blank line,
 * and a header with an empty value ends the headers. Offsets are in bytes:
 * the text is handled as Latin-1 internally (one character per byte), so the
 * original's byte arithmetic, and multipart offsets, mean the same here.
 */
export const LHTTP_PREFIX = 'LHTTP/1.0';
/** Frames longer than this (in bytes) are ignored, as by the original. */
export const LHTTP_MAX_BYTES = 40_960;

export interface LhttpMessage {
  command: string;
  /** In insertion order. */
  headers: Map<string, string>;
  body: string;
}

/** A frame the original server would have crashed on. */
export class LhttpError extends Error {
  override readonly name = 'LhttpError';
}

/** Why the original's acceptance gate would skip this frame silently, or null when it passes. */
export function lhttpGate(frame: Uint8Array): 'too_short' | 'too_long' | 'not_lhttp' | null {
  if (frame.length <= 9) return 'too_short';
  if (frame.length > LHTTP_MAX_BYTES) return 'too_long';
  for (let i = 0; i < 9; i++) if (frame[i] !== LHTTP_PREFIX.charCodeAt(i)) return 'not_lhttp';
  return null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes as a string of one character per byte. */
function toBytes(text: string | Uint8Array): string {
  const bytes = typeof text === 'string' ? encoder.encode(text) : text;
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

/** Back from one-character-per-byte to text. */
function fromBytes(bytes: string): string {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes.charCodeAt(i);
  return decoder.decode(out);
}

interface HeaderBlock {
  headers: Map<string, string>;
  /** Byte string of what follows the headers. */
  rest: string;
  /** Whether a blank line ended the headers. */
  terminated: boolean;
}

/** The original's header loop over the byte string `h` (SEEDS-SPEC §3.4). */
function headerBlock(h: string): HeaderBlock {
  const headers = new Map<string, string>();
  let k = 0;
  let key: string | null = null;
  let terminated = false;
  for (let j = 0; j < h.length; j++) {
    if (h[j] === ':' && key === null) {
      key = h.slice(k, j);
      k = j + 1;
    } else if (h.length > j + 1 && h[j] === '\r' && h[j + 1] === '\n') {
      headers.set(fromBytes(key ?? ''), fromBytes(h.slice(k, j)));
      k = j + 2;
      key = null;
    }
    if (h.length > k + 1 && h[k] === '\r' && h[k + 1] === '\n') {
      k += 2;
      terminated = true;
      break;
    }
  }
  return { headers, rest: h.slice(k), terminated };
}

/**
 * Parses one frame that passed the gate. Throws LhttpError where the original
 * crashed: no CRLF at all, or a CRLF before byte 10.
 */
export function decodeLhttp(frame: string | Uint8Array): LhttpMessage {
  return decodeBytes(toBytes(frame));
}

/** Like decodeLhttp, also returning the body as a byte string (for multipart offsets). */
export function decodeLhttpWithBytes(frame: string | Uint8Array): LhttpMessage & { bodyBytes: string } {
  return decodeBytes(toBytes(frame));
}

function decodeBytes(data: string): LhttpMessage & { bodyBytes: string } {
  const i = data.indexOf('\r\n');
  if (i === -1) throw new LhttpError('no CRLF after the start line');
  if (i < 10) throw new LhttpError('the start line ends before its command (CRLF before byte 10)');
  const { headers, rest } = headerBlock(data.slice(i + 2));
  return { command: fromBytes(data.slice(10, i)), headers, body: fromBytes(rest), bodyBytes: rest };
}

/** Serialises a message as the original's Send does, headers in insertion order. */
export function encodeLhttp(message: { command: string; headers: Iterable<[string, string]>; body: string }): string {
  let out = `${LHTTP_PREFIX} ${message.command}\r\n`;
  for (const [key, value] of message.headers) out += `${key}:${value}\r\n`;
  return `${out}\r\n${message.body}`;
}

/** Splits a header value on single spaces, as Go's strings.Split(v, " ") does. */
export function splitList(value: string): string[] {
  return value.split(' ');
}

export interface MultipartPart {
  headers: Map<string, string>;
  body: string;
}

/**
 * Splits a body at the byte offsets of a `multipart` header value (SEEDS-SPEC
 * §3.9.3): part i is body[o[i], o[i+1]), the last runs to the end, bytes
 * before o[0] are ignored; each part is `headers \r\n\r\n body`. Throws
 * LhttpError for anything the original crashed on or skipped: an offset that
 * is not a number, offsets that decrease or fall outside the body, a part
 * with no blank line after its headers.
 */
export function splitMultipart(offsetsValue: string, bodyBytes: string): MultipartPart[] {
  const offsets = splitList(offsetsValue).map((text) => {
    if (!/^[+-]?\d+$/.test(text)) throw new LhttpError(`multipart offset ${JSON.stringify(text)} is not a number`);
    return Number(text);
  });
  for (let n = 0; n < offsets.length; n++) {
    const offset = offsets[n]!;
    if (offset < 0 || offset > bodyBytes.length) throw new LhttpError(`multipart offset ${offset} is outside the body (${bodyBytes.length} bytes)`);
    if (n > 0 && offset < offsets[n - 1]!) throw new LhttpError('multipart offsets must not decrease');
  }
  return offsets.map((start, n) => {
    const part = bodyBytes.slice(start, n + 1 < offsets.length ? offsets[n + 1] : undefined);
    const { headers, rest, terminated } = headerBlock(part);
    if (!terminated) throw new LhttpError(`multipart part ${n} has no blank line after its headers`);
    return { headers, body: fromBytes(rest) };
  });
}
