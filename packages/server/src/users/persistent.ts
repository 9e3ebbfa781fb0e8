/**
 * The persistent topics of users (`subscribeUser(uid, topics, { persistent:
 * true })`): topics every new connection of the user is subscribed to as it
 * gets its identity, on any node. Every node keeps the whole map: changes
 * are broadcast to every node (users/users.ts), and a node that joins the
 * cluster, or whose broker link comes back, asks the others for theirs and
 * adds what they hold (`merge`), except what it saw removed since it asked.
 * At most `maxPerUser` topics per user (a connection cannot hold more).
 */
export class PersistentTopics {
  private readonly byUser = new Map<string, Set<string>>();
  /** `uid \x1f topic` removed since this node last asked the others for their map: a late answer does not bring them back. */
  private removedSinceAsked = new Set<string>();
  /** Until when answers to the last ask may arrive (ms since the epoch): removals are recorded until then only. */
  private answersUntil = 0;

  /** `answerWindow`: how long after asking the others' answers are awaited, in ms. */
  constructor(
    private readonly maxPerUser: number,
    private readonly answerWindow: number,
  ) {}

  /** The user's persistent topics (empty when none). */
  of(uid: string): ReadonlySet<string> {
    return this.byUser.get(uid) ?? EMPTY;
  }

  /** Whether the user holds any of `topics` as persistent. */
  holdsAny(uid: string, topics: readonly string[]): boolean {
    const set = this.byUser.get(uid);
    return set !== undefined && topics.some((topic) => set.has(topic));
  }

  /** How many topics the user would hold with `topics` added. */
  countWith(uid: string, topics: readonly string[]): number {
    const set = this.byUser.get(uid);
    return (set?.size ?? 0) + topics.filter((topic) => !set?.has(topic)).length;
  }

  /** Adds topics, as far as the bound allows (a node never holds more than `maxPerUser` for one user). */
  add(uid: string, topics: readonly string[]): void {
    let set = this.byUser.get(uid);
    for (const topic of topics) {
      if (set?.has(topic)) continue;
      if ((set?.size ?? 0) >= this.maxPerUser) return;
      if (!set) this.byUser.set(uid, (set = new Set()));
      set.add(topic);
      this.removedSinceAsked.delete(`${uid}\x1f${topic}`);
    }
  }

  remove(uid: string, topics: readonly string[]): void {
    const set = this.byUser.get(uid);
    const recording = Date.now() < this.answersUntil;
    for (const topic of topics) {
      if (recording) this.removedSinceAsked.add(`${uid}\x1f${topic}`);
      set?.delete(topic);
    }
    if (set?.size === 0) this.byUser.delete(uid);
  }

  /** This node asks the others for their maps now: removals from now on are kept out of their answers. */
  asking(): void {
    this.removedSinceAsked = new Set();
    this.answersUntil = Date.now() + this.answerWindow;
  }

  /** Another node's map: its entries are added, unless they were removed here since this node asked. */
  merge(entries: ReadonlyArray<[string, string[]]>): void {
    if (!Array.isArray(entries)) return;
    for (const [uid, topics] of entries) {
      if (typeof uid !== 'string' || !Array.isArray(topics)) continue;
      this.add(uid, topics.filter((topic) => typeof topic === 'string' && !this.removedSinceAsked.has(`${uid}\x1f${topic}`)));
    }
  }

  /** The whole map, for a node that asks. */
  entries(): Array<[string, string[]]> {
    return Array.from(this.byUser, ([uid, topics]): [string, string[]] => [uid, [...topics]]);
  }

  get size(): number {
    return this.byUser.size;
  }
}

const EMPTY: ReadonlySet<string> = new Set();
