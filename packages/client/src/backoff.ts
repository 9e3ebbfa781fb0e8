/**
 * "Full jitter" exponential backoff: a uniformly random delay between 0 and
 * min(max, min * 2^attempt). Spreading reconnects over the whole window keeps
 * thousands of clients that lost a node at the same moment from coming back
 * at the same moment.
 */
export function fullJitter(attempt: number, min: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
