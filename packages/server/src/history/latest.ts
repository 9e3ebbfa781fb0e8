import type { Publication } from '../publication.js';
import type { HistoryRule } from './history.js';

interface Latest {
  publication: Publication;
  /** When this node saw it (ms since the epoch): it is forgotten after the rule's `ttl`, as a stored entry is. */
  time: number;
  bytes: number;
}

/**
 * The latest publication of each cache-mode topic (`history[].cache`) that
 * this node saw, published here or received from another node, for a
 * history store that is not shared (memory): what a new subscriber of the
 * topic is sent at once. A shared store (Redis) needs none of this, its
 * newest entry is the latest value on every node. Bounded: an entry lives
 * the rule's `ttl`, and over `maxBytes` the least recently published
 * topics are forgotten first.
 */
export class LatestValues {
  private readonly topics = new Map<string, Latest>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** Keeps `publication` as its topic's latest value (without its exclusion: a later subscriber is not its sender). */
  remember(publication: Publication): void {
    const { exclude: _exclude, ...kept } = publication;
    const bytes = kept.payload.length + (kept.lhttp?.text.length ?? 0) + kept.topic.length + 64;
    this.forget(kept.topic);
    // Most recently published last: the eviction order.
    this.topics.set(kept.topic, { publication: kept, time: Date.now(), bytes });
    this.bytes += bytes;
    for (const topic of this.topics.keys()) {
      if (this.bytes <= this.maxBytes) break;
      this.forget(topic);
    }
  }

  /** The topic's latest publication seen here, unless it is older than the rule's `ttl`. */
  get(topic: string, rule: HistoryRule): Publication | undefined {
    const latest = this.topics.get(topic);
    if (!latest) return undefined;
    if (latest.time < Date.now() - rule.ttl) {
      this.forget(topic);
      return undefined;
    }
    return latest.publication;
  }

  private forget(topic: string): void {
    const latest = this.topics.get(topic);
    if (!latest) return;
    this.topics.delete(topic);
    this.bytes -= latest.bytes;
  }
}
