/**
 * Topic names: 1 to `maxLength` characters (default 255) from the set
 * `A–Z a–z 0–9 _ - . : @ / = + ~ ! # $ ,`. No spaces, no quotes, no
 * `*` or `>` (reserved for wildcard subscriptions), no control characters.
 * The set keeps every topic a valid Redis channel, NATS subject token and URL
 * query value without escaping surprises.
 */
export const DEFAULT_TOPIC_MAX_LENGTH = 255;

const TOPIC_CHARS = /^[A-Za-z0-9_\-.:@/=+~!#$,]+$/;

export const TOPIC_RULE = 'letters, digits and _ - . : @ / = + ~ ! # $ ,';

/** Returns why `topic` is not a valid topic name, or `null` when it is. */
export function topicProblem(topic: unknown, maxLength = DEFAULT_TOPIC_MAX_LENGTH): string | null {
  if (typeof topic !== 'string') return 'topic must be a string';
  if (topic.length === 0) return 'topic must not be empty';
  if (topic.length > maxLength) return `topic is ${topic.length} characters long, over the limit of ${maxLength}`;
  if (!TOPIC_CHARS.test(topic)) return `topic ${JSON.stringify(topic)} contains a character outside ${TOPIC_RULE}`;
  return null;
}

export function isValidTopic(topic: unknown, maxLength = DEFAULT_TOPIC_MAX_LENGTH): topic is string {
  return topicProblem(topic, maxLength) === null;
}
