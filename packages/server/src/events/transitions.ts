/**
 * Who emits a cluster-wide lifecycle event, and what happens to an event
 * whose emitter dies before it is known to be dead.
 *
 * Every node sees every cluster-wide transition (a topic's first subscriber
 * in the cluster, a uid's last connection...) because the cluster registry
 * replicates what each node holds. Exactly one of them emits it: the
 * rendezvous owner of the transition's key, the candidate node with the
 * highest hash of (node id, key) (highest random weight hashing). Every node
 * computes the same owner from the same candidate set, so no message is
 * exchanged per event; a node's departure moves only its own keys.
 */

/** 32-bit FNV-1a of a string's UTF-16 code units: fast, stable across processes and versions. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The candidate that owns `key`: the highest `fnv1a(node + "\n" + key)`,
 * ties broken by the greater node id. Undefined when there is no candidate.
 */
export function rendezvousOwner(candidates: Iterable<string>, key: string): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of candidates) {
    const weight = fnv1a(`${node}\n${key}`);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && node > best)) {
      best = node;
      bestWeight = weight;
    }
  }
  return best;
}

/**
 * What a change of a cluster-wide count means, given the count after it:
 * `first` (0 → 1 on an add), `last` (1 → 0 on a removal), or null.
 */
export function transitionOf(change: 'add' | 'remove', countAfter: number): 'first' | 'last' | null {
  if (change === 'add') return countAfter === 1 ? 'first' : null;
  return countAfter === 0 ? 'last' : null;
}

/** Where ownership is decided: this node's id and the nodes that may emit now. */
export interface Membership {
  readonly nodeId: string;
  /** This node (when ready) and the other ready, synced nodes (ClusterRegistry.candidates). */
  candidates(): readonly string[];
}

interface Held<T> {
  owner: string;
  key: string;
  at: number;
  event: T;
}

/**
 * Decides, for each cluster-wide transition this node computes, whether it
 * emits it (it is the owner) or not. A transition owned by another node is
 * held until a heartbeat of that node shows it alive `margin` ms after the
 * transition (it saw the change too, and emitted it), for at most `handoff`
 * ms (set it past the time a dead node takes to be forgotten). If that node
 * is forgotten as crashed meanwhile, the transition's owner is computed
 * again without it and the new owner emits it: this covers a node that
 * dies after a change it owned but before it saw or emitted it (or while
 * the others had not yet noticed that it was gone), at the price of a
 * second copy when it did emit it just before it died. At most `maxHeld`
 * transitions are held (the oldest go first).
 */
export class Ownership<T> {
  private held: Array<Held<T>> = [];

  constructor(
    private readonly membership: Membership,
    private readonly emit: (event: T) => void,
    private readonly handoff: number,
    private readonly margin: number,
    private readonly maxHeld = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A transition of `key` computed here: emitted when this node owns it, held otherwise. Returns whether it was emitted. */
  decide(key: string, event: T): boolean {
    const owner = rendezvousOwner(this.membership.candidates(), key);
    if (owner === undefined) return false;
    if (owner === this.membership.nodeId) {
      this.emit(event);
      return true;
    }
    this.prune();
    this.held.push({ owner, key, at: this.now(), event });
    if (this.held.length > this.maxHeld) this.held.splice(0, this.held.length - this.maxHeld);
    return false;
  }

  /** `node` was forgotten: the transitions it owned recently get a new owner, and this node emits those it now owns (in the order they happened). */
  ownerGone(node: string): void {
    this.prune();
    const kept: Array<Held<T>> = [];
    for (const item of this.held) {
      if (item.owner !== node) {
        kept.push(item);
        continue;
      }
      const owner = rendezvousOwner(this.membership.candidates().filter((id) => id !== node), item.key);
      if (owner === this.membership.nodeId) this.emit(item.event);
      else if (owner !== undefined) kept.push({ ...item, owner });
    }
    this.held = kept;
  }

  /** A heartbeat of `node` arrived: the transitions it owns that are older than `margin` were seen (and emitted) by it. */
  ownerAlive(node: string, margin = this.margin): void {
    const before = this.now() - margin;
    if (this.held.some((item) => item.owner === node && item.at < before)) this.held = this.held.filter((item) => item.owner !== node || item.at >= before);
  }

  /** How many transitions are held for another owner (for tests and status). */
  get heldCount(): number {
    this.prune();
    return this.held.length;
  }

  private prune(): void {
    const oldest = this.now() - this.handoff;
    let drop = 0;
    while (drop < this.held.length && this.held[drop]!.at < oldest) drop++;
    if (drop > 0) this.held.splice(0, drop);
  }
}
