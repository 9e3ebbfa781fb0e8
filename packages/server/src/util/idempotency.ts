/** The estimated memory of one remembered key beyond its text: map entry, record, promise and result. */
export const IDEMPOTENCY_ENTRY_BYTES = 256;

export interface IdempotencyLimits {
  /** How long a key is remembered (ms). */
  window: number;
  /** Most keys remembered at once; past it the oldest are forgotten first. */
  maxKeys: number;
  /** Most bytes the keys may take (estimated: IDEMPOTENCY_ENTRY_BYTES plus 2 per character of topic and key); past it the oldest go first. */
  maxBytes: number;
}

interface Entry<T> {
  at: number;
  bytes: number;
  result: Promise<T>;
}

/**
 * The results of publishes made with an idempotency key, per topic and key,
 * for a bounded time, number and size: a key is forgotten after `window`, or
 * earlier when newer keys push it out (oldest first). A forgotten key is
 * published again if retried: the bound trades a rare duplicate for memory
 * that does not grow with what callers send.
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
   * remembered (a rejected one is forgotten, so that a retry runs again).
   */
  remember(topic: string, key: string, run: () => Promise<T>): Promise<T> {
    this.forgetExpired();
    const id = `${topic}\n${key}`;
    const known = this.entries.get(id);
    if (known) return known.result;
    const result = run();
    const entry: Entry<T> = { at: Date.now(), bytes: IDEMPOTENCY_ENTRY_BYTES + 2 * id.length, result };
    this.entries.set(id, entry);
    this.bytes += entry.bytes;
    this.forgetOverflow();
    result.catch(() => {
      if (this.entries.get(id) === entry) this.delete(id, entry);
    });
    return result;
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
