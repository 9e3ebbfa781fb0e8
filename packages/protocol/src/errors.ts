/**
 * The error catalogue. Every error Herald reports, over WebSocket or HTTP,
 * carries one of these codes. Codes are stable across versions: clients may
 * switch on them. `docs/protocol.md` lists the same table, and a test keeps
 * the two in step.
 */
export const ERROR_CODES = {
  bad_request: 'The frame or request is malformed: not valid JSON, a missing field, or a field of the wrong type.',
  invalid_topic: 'A topic name is empty, too long, or contains a character outside the allowed set.',
  too_many_topics: 'The command would take the connection over its limit of subscribed topics.',
  not_subscribed: 'Unsubscribe from a topic the connection is not subscribed to.',
  unknown_action: 'The action is neither built in nor registered by the application.',
  unauthorized: 'No valid credentials: a missing, malformed, expired or wrongly signed token or API key.',
  token_expired: "The connection's token expired: log in with a fresh token before the grace period ends.",
  forbidden: 'The credentials are valid but do not allow this operation.',
  too_large: 'A frame, message or request body is over its size limit.',
  rate_limited: 'Too many commands or connections in too short a time.',
  not_found: 'No such route or resource.',
  session_not_found: 'No node holds an HTTP stream with this session token: the stream ended, or the token is wrong.',
  unavailable: 'Herald cannot do this right now (shutting down, broker unreachable); retry later.',
  internal: 'An unexpected server error. It is logged on the server with the same request or connection id.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

/** The `error` object of an error reply or an HTTP error body. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
}
