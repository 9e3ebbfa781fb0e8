/**
 * WebSocket close codes used by Herald, shared by the server and the SDK.
 *
 * The ranges tell a client whether to reconnect:
 * - 1000 (normal closure) and 1008 (policy violation): do not reconnect;
 * - other 1xxx codes (1001 going away, 1006 abnormal, 1009, 1011–1014): reconnect with backoff;
 * - 4000–4499: Herald's "reconnect" range (e.g. token expired: reconnect with a fresh token);
 * - 4500–4999: Herald's "terminal" range: do not reconnect until something changes.
 */
export const CloseCode = {
  /** Normal closure: the client asked for it, or the server closed a finished session. */
  NORMAL: 1000,
  /** The server is shutting down or restarting. Reconnect (to another node) with backoff. */
  GOING_AWAY: 1001,
  /** The peer broke the WebSocket protocol. */
  PROTOCOL_ERROR: 1002,
  /** A policy violation (e.g. an origin that is not allowed). Do not reconnect. */
  POLICY_VIOLATION: 1008,
  /** A frame was over the server's size limit. */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server error. */
  INTERNAL_ERROR: 1011,
  /** The server restarts; reconnect after the delay it asks for. */
  SERVICE_RESTART: 1012,
  /** The client could not keep up: its outbound queue went over the limit. Reconnect and recover. */
  TRY_AGAIN_LATER: 1013,
  /** Server asked the client to reconnect (e.g. rebalancing). */
  RECONNECT: 4000,
  /** The connection's token expired; reconnect or log in with a fresh token. */
  TOKEN_EXPIRED: 4001,
  /**
   * The backend's refresh proxy said the connection's identity (given by the
   * connect hook) is no longer valid. Reconnect: the connect hook decides again.
   */
  IDENTITY_REVOKED: 4002,
  /** Too many connections from this user or address; reconnect later. */
  TOO_MANY_CONNECTIONS: 4029,
  /** The connection was refused: no valid credentials. Do not reconnect with the same credentials. */
  UNAUTHORIZED: 4501,
  /** The connection was refused: not allowed. */
  FORBIDDEN: 4503,
  /** A backend asked Herald to disconnect this user. */
  DISCONNECTED: 4504,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** Human-readable meaning of each code, used by docs and logs. */
export const CLOSE_CODE_MEANINGS: Record<number, string> = {
  [CloseCode.NORMAL]: 'normal closure',
  [CloseCode.GOING_AWAY]: 'server shutting down',
  [CloseCode.PROTOCOL_ERROR]: 'WebSocket protocol error',
  [CloseCode.POLICY_VIOLATION]: 'policy violation',
  [CloseCode.MESSAGE_TOO_BIG]: 'frame over the size limit',
  [CloseCode.INTERNAL_ERROR]: 'internal server error',
  [CloseCode.SERVICE_RESTART]: 'server restarting',
  [CloseCode.TRY_AGAIN_LATER]: 'slow consumer: outbound queue over its limit',
  [CloseCode.RECONNECT]: 'reconnect requested by the server',
  [CloseCode.TOKEN_EXPIRED]: 'token expired',
  [CloseCode.IDENTITY_REVOKED]: 'identity no longer valid (refresh proxy)',
  [CloseCode.TOO_MANY_CONNECTIONS]: 'too many connections',
  [CloseCode.UNAUTHORIZED]: 'unauthorized',
  [CloseCode.FORBIDDEN]: 'forbidden',
  [CloseCode.DISCONNECTED]: 'disconnected by the server',
};

/** Whether a client should reconnect after the connection closed with `code`. */
export function shouldReconnect(code: number): boolean {
  if (code === CloseCode.NORMAL || code === CloseCode.POLICY_VIOLATION) return false;
  if (code >= 4500 && code <= 4999) return false;
  return true;
}

/** The longest close reason a WebSocket close frame can carry, in bytes of UTF-8 (RFC 6455 §5.5: 125 minus the 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close reason that fits in a close frame: `reason` as is when its UTF-8 is
 * at most 123 bytes, else cut on a code-point boundary (never inside a
 * multi-byte character or a surrogate pair) to 120 bytes plus `...`.
 */
export function truncateCloseReason(reason: string): string {
  let bytes = 0;
  let cut = -1;
  for (let i = 0; i < reason.length; i++) {
    const unit = reason.charCodeAt(i);
    const pair = unit >= 0xd800 && unit <= 0xdbff && i + 1 < reason.length && (reason.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const size = pair ? 4 : unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
    if (cut === -1 && bytes + size > MAX_CLOSE_REASON_BYTES - 3) cut = i;
    bytes += size;
    if (bytes > MAX_CLOSE_REASON_BYTES) return `${reason.slice(0, cut)}...`;
    if (pair) i++;
  }
  return reason;
}
