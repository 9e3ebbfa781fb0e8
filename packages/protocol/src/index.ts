export { ERROR_CODES, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorBody } from './errors.js';
export { CloseCode, CLOSE_CODE_MEANINGS, MAX_CLOSE_REASON_BYTES, shouldReconnect, truncateCloseReason } from './close-codes.js';
export type { CloseCodeName } from './close-codes.js';
export { DEFAULT_TOPIC_MAX_LENGTH, TOPIC_RULE, topicProblem, isValidTopic, utf8Length } from './topics.js';
export type * from './frames.js';

/** WebSocket subprotocol names Herald understands. */
export const SUBPROTOCOL_JSON = 'json';
export { LHTTP_MAX_BYTES, LHTTP_PREFIX, LhttpError, decodeLhttp, decodeLhttpWithBytes, encodeLhttp, lhttpGate, splitList, splitMultipart } from './lhttp.js';
export type { LhttpMessage, MultipartPart } from './lhttp.js';

/** The subprotocol name of LHTTP/1.0. */
export const SUBPROTOCOL_LHTTP = 'lhttp';
