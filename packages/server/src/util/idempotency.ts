import { HeraldError, InDoubtError } from '../errors.js';

/** The estimated memory of one remembered key beyond its text: map entry, record, promise and result. */
export const IDEMPOTENCY_ENTRY_BYTES = 256;

export interface IdempotencyLimits {
  /** How long a key is remembered (ms). */
  window: number;
  /** Most keys remembered at once; past it the oldest are forgotten first. */
  maxKeys: number;
  /** Most bytes the keys may take (estimated: IDEMPOTENCY_ENTRY_BYTES plus 2 per character of topic and key); past it the oldest go first. */
  maxBytes: number;
  /** Longest wait (ms) of a retry for the outcome of a first attempt in doubt (`publishTimeout`); then it is answered `unavailable`. */
  wait: number;
}

interface Entry<T> {
  at: number;
  bytes: number;
  /** The first attempt's answer, or, once an attempt in doubt turned out made, its result. */
  result: Promise<T>;
  /** The first attempt failed in doubt and what became of it is not known yet (or never will be: outcome null). */
  doubt: InDoubtError | null;
}

/**
 * The results of publishes made with an idempotency key, per topic and key,
 * for a bounded time, number and size: a key is forgotten after `window`, or
 * earlier when newer keys push it out (oldest first). A forgotten key is
 * published again if retried: the bound trades a rare duplicate for memory
 * that does not grow with what callers send.
 *
 * A failed first attempt: one that surely did not publish (a plain error) is
 * forgotten at once, so that a retry publishes. One answered in doubt (an
 * InDoubtError: the broker may still make it, or may have made it) keeps its
 * key, and a retry joins it instead of publishing again: it waits up to
 * `wait` for the outcome and answers the first attempt's result if it was
 * made, and is answered `unavailable` while the doubt lasts (until the key
 * is forgotten, when it never will be known). Once the first attempt turns
 * out surely not made, its key is forgotten: the next retry publishes.
 */
export class IdempotencyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private bytes = 0;

  constructor(private readonly limits: IdempotencyLimits) {}

  get size(): number {
    return this.entries.size;
  }

  /** Bytes the remembered keys take, as estimated. */
  get estimatedBytes(): number {
    return this.bytes;
  }

  /**
   * The result remembered for `key` on `topic`, or the result of `run()`,
   * remembered. A rejected run is forgotten, so that a retry runs again,
   * unless it failed in doubt and `keepDoubt` (the default) holds: then a
   * retry joins it (see the class). `keepDoubt` false: a store that keeps
   * the key itself decides a retry (Redis history's script).
   */
  remember(topic: string, key: string, run: () => Promise<T>, keepDoubt = true): Promise<T> {
    this.forgetExpired();
    const id = `${topic}\n${key}`;
    const known = this.entries.get(id);
    if (known) return known.doubt ? this.join(known.doubt) : known.result;
    const result = run();
    const entry: Entry<T> = { at: Date.now(), bytes: IDEMPOTENCY_ENTRY_BYTES + 2 * id.length, result, doubt: null };
    this.entries.set(id, entry);
    this.bytes += entry.bytes;
    this.forgetOverflow();
    result.catch((err: unknown) => {
      if (this.entries.get(id) !== entry) return;
      if (keepDoubt && err instanceof InDoubtError) this.keepInDoubt(id, entry, err);
      else this.delete(id, entry);
    });
    return result;
  }

  /** Keys whose first attempt is in doubt. */
  get inDoubt(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.doubt) count++;
    return count;
  }

  /** The first attempt was answered in doubt: its outcome decides, once known (made: its result; surely not: forgotten; never known: kept). */
  private keepInDoubt(id: string, entry: Entry<T>, doubt: InDoubtError): void {
    entry.doubt = doubt;
    doubt.outcome?.then(
      (value) => {
        if (this.entries.get(id) !== entry) return;
        entry.result = Promise.resolve(value as T);
        entry.doubt = null;
      },
      (failure: unknown) => {
        if (this.entries.get(id) !== entry) return;
        if (failure instanceof InDoubtError) entry.doubt = failure;
        else this.delete(id, entry);
      },
    );
  }

  /**
   * A retry of a key whose first attempt is in doubt: that attempt's outcome
   * within `wait`. When it turns out surely not made while the retry waits,
   * the retry is answered `unavailable` rather than publishing then (its
   * answer would take longer than `wait`); the key is forgotten, so the next
   * retry publishes.
   */
  private join(doubt: InDoubtError): Promise<T> {
    const outcome = doubt.outcome;
    if (!outcome) {
      return Promise.reject(
        new InDoubtError(
          `an earlier publish with this idempotency key may have been made, and that will never be known (${doubt.message}): ` +
            'the key publishes nothing until idempotencyWindow ends; publish with a new key if a second copy is acceptable',
          null,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new InDoubtError(`an earlier publish with this idempotency key is still unanswered (${doubt.message}): retry later`, outcome));
      }, this.limits.wait);
      outcome.then(
        (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        (failure: unknown) => {
          clearTimeout(timer);
          // keepInDoubt's handler ran first (registered earlier): the entry is forgotten, or holds the final doubt.
          if (failure instanceof InDoubtError) resolve(this.join(failure));
          else reject(new HeraldError('unavailable', `an earlier publish with this idempotency key failed (${(failure as Error)?.message ?? failure}): the key is forgotten, retry to publish`));
        },
      );
    });
  }

  private delete(id: string, entry: Entry<T>): void {
    this.entries.delete(id);
    this.bytes -= entry.bytes;
  }

  private forgetExpired(): void {
    const expired = Date.now() - this.limits.window;
    for (const [id, entry] of this.entries) {
      if (entry.at >= expired) break;
      this.delete(id, entry);
    }
  }

  private forgetOverflow(): void {
    for (const [id, entry] of this.entries) {
      if (this.entries.size <= this.limits.maxKeys && this.bytes <= this.limits.maxBytes) break;
      this.delete(id, entry);
    }
  }
}
