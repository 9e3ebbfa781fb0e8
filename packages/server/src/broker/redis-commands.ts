import { ReplyError } from 'ioredis';
import { HeraldError, InDoubtError } from '../errors.js';
import { answerWithin } from '../util/in-doubt.js';

/**
 * The answer to a command on Redis's command connection (a PUBLISH, a history
 * script), within `ms` (`publishTimeout`), and what its failure means. The
 * connection has no offline queue and resends nothing (see RedisBroker), so:
 * - an error reply, or a connection not writable when the command was made:
 *   Redis did not run it (a plain `unavailable`);
 * - the connection dropped with the command written and unanswered: Redis
 *   may have run it, and that will never be known (InDoubtError, outcome null);
 * - no answer within `ms` (Redis frozen, a stalled network): answered
 *   `unavailable` then, in doubt, with the command's later outcome (Redis may
 *   still run it when it resumes: its answer then comes on this connection).
 * `what` names the operation in the messages (`broker redis`, `history store redis`).
 */
export function redisAnswer<T>(command: Promise<T>, ms: number, what: string): Promise<T> {
  return answerWithin(command, {
    ms,
    late: `${what} did not answer within ${ms} ms (the command may still run when Redis answers)`,
    failure: (err) => {
      if (err instanceof HeraldError) return err;
      const message = (err as Error)?.message ?? String(err);
      if (err instanceof ReplyError || /isn't writeable/.test(message)) return new HeraldError('unavailable', `${what} failed: ${message}`, { cause: err });
      return new InDoubtError(`${what}: the connection dropped before Redis answered (${message}); Redis may have run the command`, null, { cause: err });
    },
  });
}
