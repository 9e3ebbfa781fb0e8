import { HeraldError, InDoubtError } from '../errors.js';

/** How long to wait for a broker operation, and what its failures mean. */
export interface AnswerDeadline {
  /** Longest wait for the operation (ms, `publishTimeout`); then the answer is given in doubt. */
  readonly ms: number;
  /** The message of the answer given when the wait ends first, e.g. `broker redis did not answer within 1000 ms`. */
  readonly late: string;
  /**
   * The error for a failure of the operation: a plain HeraldError when it
   * surely did not take effect (never sent, refused by the broker), an
   * InDoubtError with a null outcome when it may have (sent, and the answer
   * lost with the connection).
   */
  failure(err: unknown): HeraldError;
}

/**
 * An answer within `deadline.ms` for an operation that may take longer:
 * its result or its failure (as `deadline.failure` tells it) when it settles
 * in time; otherwise, at the deadline, an InDoubtError whose `outcome`
 * follows the operation to its end (its result, or its failure as
 * `deadline.failure` tells it). The operation itself is left to finish: a
 * command on the wire cannot be taken back.
 */
export function answerWithin<T>(operation: Promise<T>, deadline: AnswerDeadline): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const outcome = operation.then(
        (value) => value,
        (err: unknown) => {
          throw deadline.failure(err);
        },
      );
      reject(new InDoubtError(deadline.late, outcome));
    }, deadline.ms);
    operation.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(deadline.failure(err));
      },
    );
  });
}

/**
 * The same failure for a result derived from the operation's (a publish
 * result from a broker's acknowledgement): an InDoubtError keeps its doubt,
 * its outcome mapped by `map`, with `message`; any other error becomes
 * `unavailable` with `message`.
 */
export function failureFor<T>(err: unknown, message: string, map: (value: unknown) => T): HeraldError {
  if (err instanceof InDoubtError) {
    return new InDoubtError(message, err.outcome?.then(map) ?? null, { cause: err });
  }
  return new HeraldError('unavailable', message, { cause: err });
}
