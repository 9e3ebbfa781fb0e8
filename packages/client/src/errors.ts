import type { ErrorCode } from '@herald/protocol';

/** Every error the client rejects a promise with. `code` is stable: switch on it. */
export class HeraldClientError extends Error {
  override name = 'HeraldClientError';
  constructor(
    /** A server error code (`forbidden`, `rate_limited`, ...) or one of the client's: `timeout`, `disconnected`, `closed`, `receive_only`. */
    readonly code: ErrorCode | 'timeout' | 'disconnected' | 'closed' | 'receive_only',
    message: string,
  ) {
    super(message);
  }
}

/** The server answered the command with an error. */
export class RequestError extends HeraldClientError {
  override name = 'RequestError';
  constructor(
    code: ErrorCode,
    message: string,
    /** The command's action. */
    readonly action: string,
  ) {
    super(code, message);
  }
}

/** No reply within the request timeout. The command may still have been carried out. */
export class TimeoutError extends HeraldClientError {
  override name = 'TimeoutError';
  constructor(action: string, ms: number) {
    super('timeout', `no reply to ${action} within ${ms} ms`);
  }
}

/** The connection closed before the reply came. The command may have been carried out. */
export class DisconnectedError extends HeraldClientError {
  override name = 'DisconnectedError';
  constructor(action: string) {
    super('disconnected', `the connection closed before the reply to ${action}`);
  }
}

/** The client was closed (by `close()`, or by a close code that forbids reconnecting). */
export class ClosedError extends HeraldClientError {
  override name = 'ClosedError';
  constructor(why: string) {
    super('closed', why);
  }
}

/**
 * The client is connected over SSE, which only receives: WebSocket and HTTP
 * streaming did not connect. Commands (publish, history, presence, login, your
 * own) cannot be sent; subscriptions work.
 */
export class ReceiveOnlyError extends HeraldClientError {
  override name = 'ReceiveOnlyError';
  constructor(
    /** The command's action. */
    readonly action: string,
  ) {
    super('receive_only', `${action}: the connection is receive-only (SSE)`);
  }
}
