import type { TransportName } from './transport.js';

/** Where the transport that worked is remembered: `sessionStorage`, or anything with the same three methods. */
export interface TransportMemory {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The page's memory when there is no sessionStorage (Node, a sandboxed frame): gone with the page (the process). */
const pageMemory = new Map<string, string>();
const inMemory: TransportMemory = {
  getItem: (key) => pageMemory.get(key) ?? null,
  setItem: (key, value) => void pageMemory.set(key, value),
  removeItem: (key) => void pageMemory.delete(key),
};

/** sessionStorage when the page has one that works, else the page's memory. */
export function defaultMemory(): TransportMemory {
  try {
    const storage = (globalThis as { sessionStorage?: TransportMemory }).sessionStorage;
    if (storage) {
      storage.getItem('herald.probe');
      return storage;
    }
  } catch {
    // a sandboxed frame or a privacy setting forbids it
  }
  return inMemory;
}

/**
 * Which transport the next connection attempt uses. A round of attempts
 * starts with the transport remembered for the page (when it is still
 * fresh), else with the first of the order, and falls back along the order
 * while attempts fail before opening. Once a transport has opened, the client
 * keeps it for its reconnects (a failure then means the server or the network
 * is down, not that the transport is blocked), until `rememberFor` has passed:
 * then the next round starts again at the first transport (WebSocket is
 * retried). A round that started from the memory and failed throughout
 * forgets it.
 */
export class TransportChoice {
  readonly #order: readonly TransportName[];
  readonly #memory: TransportMemory | null;
  readonly #key: string;
  readonly #rememberFor: number;
  #index = 0;
  /** A transport opened: reconnects keep it. */
  #kept = false;
  /** Since when the kept transport has worked (ms since the epoch). */
  #since = 0;
  #fromMemory = false;

  /**
   * `order`: the transports to try (never empty); `memory` and `key`: where
   * what worked is remembered; `rememberFor`: how long it is, and kept, in ms.
   */
  constructor(order: readonly TransportName[], memory: TransportMemory | null, key: string, rememberFor: number) {
    this.#order = order;
    this.#memory = memory;
    this.#key = key;
    this.#rememberFor = rememberFor;
    this.begin();
  }

  /** The transport of the current (or next) attempt. */
  get current(): TransportName {
    return this.#order[this.#index]!;
  }

  /** Whether an attempt that does not open can fall back to another transport. */
  get canFallBack(): boolean {
    return !this.#kept && this.#index + 1 < this.#order.length;
  }

  /** At the start of a round of attempts: picks its first transport. */
  begin(): void {
    if (this.#kept) {
      if (this.#index === 0 || Date.now() - this.#since < this.#rememberFor) return;
      this.#kept = false;
    }
    const [index] = this.#recall();
    this.#index = Math.max(0, index);
    this.#fromMemory = index > 0;
  }

  /** The attempt failed before opening: moves to the next transport, or returns false at the end of the round. */
  fallBack(): boolean {
    if (this.canFallBack) {
      this.#index++;
      return true;
    }
    if (this.#fromMemory && !this.#kept) this.#store(null);
    return false;
  }

  /** The connection opened: keep this transport, and remember it for the page (the first one needs no memory). */
  opened(): void {
    if (this.#kept) return;
    this.#kept = true;
    this.#fromMemory = false;
    const [index, since] = this.#recall();
    // Remembered earlier, it keeps its time: WebSocket is retried `rememberFor` after it first failed.
    this.#since = index === this.#index ? since : Date.now();
    if (index !== this.#index) this.#store(this.#index === 0 ? null : JSON.stringify({ transport: this.current, at: this.#since }));
  }

  /** The index of the remembered transport and since when it works, when it is fresh and in the order; -1 otherwise. */
  #recall(): [number, number] {
    try {
      const stored = JSON.parse(this.#memory?.getItem(this.#key) ?? 'null') as { transport?: unknown; at?: unknown } | null;
      if (stored && typeof stored.at === 'number' && Date.now() - stored.at < this.#rememberFor) return [this.#order.indexOf(stored.transport as TransportName), stored.at];
    } catch {
      // unreadable: as if nothing was remembered
    }
    return [-1, 0];
  }

  /** Remembers (a text) or forgets (null); a full or refused storage only makes the page forget. */
  #store(value: string | null): void {
    this.#fromMemory = false;
    try {
      if (value === null) this.#memory?.removeItem(this.#key);
      else this.#memory?.setItem(this.#key, value);
    } catch {
      // nothing to do
    }
  }
}
