/**
 * Topic rules shared by every layer: pattern matching (`name` or `prefix*`),
 * the first configured rule that matches a topic (history, presence), and
 * what a connection is granted. Herald's own topic name rule (length,
 * alphabet) is `topicProblem` in @herald/protocol; the broker adds its
 * namespace's (Broker.topicProblem).
 */

/** What a connection has been granted: by its token's claims or by the connect hook. */
export interface Grants {
  /** Private topics it may subscribe to. */
  topics: readonly string[];
  /** Topics it may publish to regardless of `clientPublish`. */
  publish: readonly string[];
}

export const NO_GRANTS: Grants = Object.freeze({ topics: [], publish: [] });

/** True when `topic` equals a pattern, or starts with the part before a pattern's trailing `*`. */
export function topicMatches(patterns: readonly string[], topic: string): boolean {
  for (const pattern of patterns) {
    if (pattern.endsWith('*') ? topic.startsWith(pattern.slice(0, -1)) : pattern === topic) return true;
  }
  return false;
}

/** The first rule whose pattern matches the topic. */
export function ruleFor<T extends { pattern: string }>(rules: readonly T[], topic: string): T | undefined {
  return rules.find((rule) => topicMatches([rule.pattern], topic));
}
