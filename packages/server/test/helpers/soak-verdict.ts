/**
 * The soak's judgements (soak-run.ts runs it): pure functions over what was
 * recorded. Times are ms since the epoch; a node is named by a letter.
 */

/** A publish answered 200: its topic, its sequence number (every message carries a unique `seq`), its offset on a topic with history. */
export interface Ack {
  topic: string;
  seq: number;
  offset?: number | undefined;
  epoch?: string | undefined;
  sent: number;
  answered: number;
  node: string;
}

/** A publish answered otherwise (503, a WebSocket error reply), or never answered. */
export interface Refusal {
  topic: string;
  seq: number;
  sent: number;
  answered: number;
  node: string;
  why: string;
}

/** The broker whose faults a topic suffers: Redis (Redis broker, or Redis history) or NATS. */
export type FaultScope = 'redis' | 'nats';

export interface Fault {
  scope: FaultScope;
  label: string;
  from: number;
  to: number;
}

/**
 * A publication acknowledged this long before a subscription ended (its
 * connection cut, or unsubscribed) is owed to it: the node had it (Redis or
 * NATS answered only once they had handed it on) and this is the time
 * allowed for it to reach the client.
 */
export const DELIVERY_MARGIN_MS = 1000;
/** A publish answer may take publishTimeout plus this much (a loaded machine) before it counts as too slow. */
export const ANSWER_MARGIN_MS = 1000;
/** A `gap` signalled at most this long after a fault ended reports that fault (the node's link comes back with backoff). */
export const RESUME_ALLOWANCE_MS = 10_000;

/** One emission of a publication on a topic with history, by an SDK subscription. */
export interface Emission {
  offset: number;
  epoch: string;
  seq: number;
  at: number;
  /** The client's connection (index) it came on. */
  connection: number;
}

export interface StreamVerdict {
  duplicates: number[];
  /** Emission indexes where the stream jumped (or changed epoch). */
  disorder: Array<{ index: number; kind: 'disorder' | 'epoch change' | 'late start' }>;
  /** Indexes of emissions that repeated an offset or a message. */
  duplicateAt: number[];
  /** Acknowledged offsets owed and never emitted. */
  missing: number[];
}

/**
 * A subscription's stream on a topic with history, from the position its
 * first subscribe reply reported (`start`; none: from the first emission):
 * every publication once (by offset and by message), in order, the first
 * one right after `start`; owed every acknowledged offset after `start` that
 * was answered at least DELIVERY_MARGIN_MS before `ended` (Infinity: all).
 */
export function judgeStream(emissions: readonly Emission[], acks: readonly Ack[], start: { offset: number; epoch: string } | undefined, ended: number): StreamVerdict {
  const verdict: StreamVerdict = { duplicates: [], disorder: [], duplicateAt: [], missing: [] };
  const offsets = new Set<number>();
  const seqs = new Set<number>();
  for (let i = 0; i < emissions.length; i++) {
    const { offset, epoch, seq } = emissions[i]!;
    const previous = emissions[i - 1];
    // Per epoch: a new epoch (the stored history was lost) starts again at its first offset emitted.
    if (previous && previous.epoch !== epoch) offsets.clear();
    if (offsets.has(offset) || seqs.has(seq)) {
      verdict.duplicates.push(offset);
      verdict.duplicateAt.push(i);
    } else if (previous && (offset !== previous.offset + 1 || epoch !== previous.epoch)) {
      verdict.disorder.push({ index: i, kind: epoch === previous.epoch ? 'disorder' : 'epoch change' });
    } else if (!previous && start && start.epoch === epoch && offset !== start.offset + 1) {
      verdict.disorder.push({ index: i, kind: 'late start' });
    }
    offsets.add(offset);
    seqs.add(seq);
  }
  const owedAfter = start?.offset ?? (emissions[0]?.offset ?? Infinity) - 1;
  const epoch = start?.epoch || emissions[0]?.epoch;
  const emitted = new Set(emissions.filter((e) => e.epoch === epoch).map((e) => e.offset));
  for (const ack of acks) {
    if (ack.offset === undefined || ack.offset <= owedAfter || (epoch && ack.epoch !== epoch)) continue;
    if (ack.answered > ended - DELIVERY_MARGIN_MS) continue;
    if (!emitted.has(ack.offset)) verdict.missing.push(ack.offset);
  }
  verdict.missing.sort((x, y) => x - y);
  return verdict;
}

/** One subscription of a client to a topic without shared history: from its subscribe reply to its connection's end. */
export interface Period {
  from: number;
  to: number;
  /** When each `gap` event came. */
  gaps: number[];
  /** Copies received, by message seq. */
  received: Map<number, number>;
}

export interface PeriodVerdict {
  /** Messages received more than once in the period. */
  duplicates: number;
  /** Owed publications missed with no gap reporting them. */
  unsignalled: Ack[];
  /** Of those, the ones no later publication from the same node revealed (lost just before the period ended). */
  beforeEnd: number;
  /** Owed publications missed and reported by a gap (allowed). */
  signalled: number;
}

/**
 * A topic without shared history: a publication acknowledged while the
 * subscription stood is owed to it when the subscription received a later
 * publication from the same node (per-node order puts this one first), or
 * when it was acknowledged at least DELIVERY_MARGIN_MS before the
 * subscription ended. A missed one is excused only by a `gap` that reports
 * it: signalled after it was sent, after a fault of the topic's broker that
 * began at most DELIVERY_MARGIN_MS after it was answered, and at most
 * RESUME_ALLOWANCE_MS after that fault ended. A later gap of another fault
 * excuses nothing. Copies: none twice.
 */
export function judgePeriod(period: Period, acks: readonly Ack[], faults: readonly Fault[], scope: FaultScope): PeriodVerdict {
  const verdict: PeriodVerdict = { duplicates: 0, unsignalled: [], beforeEnd: 0, signalled: 0 };
  for (const copies of period.received.values()) if (copies > 1) verdict.duplicates += copies - 1;
  const byNode = new Map<string, Ack[]>();
  for (const ack of acks) {
    if (!byNode.has(ack.node)) byNode.set(ack.node, []);
    byNode.get(ack.node)!.push(ack);
  }
  for (const fromNode of byNode.values()) {
    let lastReceivedSent = -Infinity;
    for (const ack of fromNode) if (period.received.has(ack.seq)) lastReceivedSent = Math.max(lastReceivedSent, ack.sent);
    for (const ack of fromNode) {
      if (period.received.has(ack.seq) || ack.sent < period.from) continue;
      const revealed = ack.answered < lastReceivedSent;
      const inTime = ack.answered <= period.to - DELIVERY_MARGIN_MS;
      if (!revealed && !inTime) continue;
      const reported = period.gaps.some(
        (gap) => gap >= ack.sent && faults.some((fault) => fault.scope === scope && fault.from <= gap && fault.from <= ack.answered + DELIVERY_MARGIN_MS && gap <= fault.to + RESUME_ALLOWANCE_MS),
      );
      if (reported) {
        verdict.signalled++;
        continue;
      }
      verdict.unsignalled.push(ack);
      if (!revealed) verdict.beforeEnd++;
    }
  }
  return verdict;
}
