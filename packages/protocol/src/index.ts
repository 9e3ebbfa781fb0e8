export { ERROR_CODES, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorBody } from './errors.js';
export { CloseCode, CLOSE_CODE_MEANINGS, shouldReconnect } from './close-codes.js';
export type { CloseCodeName } from './close-codes.js';
export { DEFAULT_TOPIC_MAX_LENGTH, TOPIC_RULE, topicProblem, isValidTopic } from './topics.js';
export type * from './frames.js';

/** WebSocket subprotocol names Herald understands. */
export const SUBPROTOCOL_JSON = 'json';
