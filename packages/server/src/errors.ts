import { ERROR_CODES, type ErrorBody, type ErrorCode } from '@herald/protocol';

/**
 * The one error type Herald raises for expected failures: bad input, refused
 * operations, an unavailable broker. It carries a stable protocol code; the
 * WebSocket layer turns it into an error frame, the HTTP layer into a status.
 * Anything else that escapes a handler is a bug and is reported as `internal`.
 */
export class HeraldError extends Error {
  override readonly name = 'HeraldError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string = ERROR_CODES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

/**
 * An `unavailable` answer given while the operation may still have taken, or
 * still take, effect: a command written to Redis that did not answer within
 * `publishTimeout`, a NATS publication whose flush was not answered, one
 * whose connection dropped before the broker answered. The caller is told
 * 503 at once; `outcome` says what became of the operation, once that is
 * known:
 * - a promise that resolves with the operation's result if it completes,
 *   and rejects once it surely did not take effect (a plain HeraldError), or
 *   once it never will be known (an InDoubtError whose outcome is null);
 * - null: it will never be known (the connection dropped with it unanswered).
 * The idempotency cache keeps the key of such a publish instead of
 * forgetting it (util/idempotency.ts). `outcome` never rejects unhandled.
 */
export class InDoubtError extends HeraldError {
  constructor(
    message: string,
    readonly outcome: Promise<unknown> | null,
    options?: { cause?: unknown },
  ) {
    super('unavailable', message, options);
    outcome?.catch(() => undefined);
  }
}

/** HTTP status for each error code: the single mapping the HTTP API uses. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_topic: 400,
  too_many_topics: 400,
  not_subscribed: 400,
  unknown_action: 400,
  unauthorized: 401,
  token_expired: 401,
  forbidden: 403,
  not_found: 404,
  session_not_found: 404,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/** Converts anything thrown into an error body safe to show a peer. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof HeraldError) return err.toBody();
  return { code: 'internal', message: 'internal error' };
}
