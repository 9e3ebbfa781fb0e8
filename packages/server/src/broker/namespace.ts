import { HeraldError } from '../errors.js';
import { topicMatches } from '../topics.js';

/**
 * How Herald's topics map to a broker's names (Redis channels, NATS
 * subjects), and which names no topic may ever reach.
 *
 * - A topic is `prefix + topic` on the broker: Herald's own namespace
 *   (`herald:` on Redis, `herald.` on NATS by default). The prefix cannot be
 *   empty, so with any configuration a client's topic lands inside it.
 * - Topics matching `rawTopics` (exact names or `prefix*` patterns) are the
 *   bare broker name instead, so that a plain `PUBLISH bookings ...` or an
 *   Lhttp node on the same NATS reaches their subscribers. A raw topic whose
 *   bare name falls inside Herald's namespace is refused, so that two topics
 *   never share a name.
 * - Names the broker reserves for itself are refused whatever the prefix and
 *   `rawTopics` say: on NATS every subject starting with `$` (`$JS.API...`,
 *   `$SYS...`, `$KV...`), `_INBOX` (request replies) or `_R_.` / `_GR_.` (the
 *   server's reply subjects for service imports and gateways); on Redis every channel
 *   starting with `__` (`__keyspace@0__:...`, `__keyevent@0__:...`,
 *   `__redis__:invalidate`, `__sentinel__:hello`).
 * - On NATS, `.` in a topic is the subject's token separator (topic
 *   `chat.room1` is subject `herald.chat.room1`, which a NATS wildcard
 *   subscriber such as `herald.chat.>` sees); so a topic may not begin or end
 *   with `.` or hold `..`. Other characters, Unicode included, are the
 *   subject's bytes as UTF-8; whitespace, `*` and `>` are never in a topic.
 */
export class BrokerNamespace {
  constructor(
    readonly kind: 'redis' | 'nats',
    readonly prefix: string,
    readonly rawTopics: readonly string[],
  ) {
    if (prefix.length === 0) {
      throw new HeraldError('bad_request', `${kind}.prefix must not be empty: it is Herald's namespace on the broker (use ${kind}.rawTopics for topics that must be bare ${kind === 'redis' ? 'channels' : 'subjects'})`);
    }
    const reserved = this.reservedProblem(prefix);
    if (reserved) throw new HeraldError('bad_request', `${kind}.prefix ${JSON.stringify(prefix)}: ${reserved}`);
    if (kind === 'nats' && /[\s*>]/.test(prefix)) throw new HeraldError('bad_request', `nats.prefix ${JSON.stringify(prefix)} holds whitespace, * or >, which a NATS subject cannot`);
  }

  /** Whether the topic maps to a bare broker name (it matches `rawTopics`). */
  isRaw(topic: string): boolean {
    return this.rawTopics.length > 0 && topicMatches(this.rawTopics, topic);
  }

  /** The broker name (channel or subject) carrying a topic. */
  nameOf(topic: string): string {
    return this.isRaw(topic) ? topic : `${this.prefix}${topic}`;
  }

  /** Why a topic (valid by Herald's rule) cannot be carried, or null. */
  topicProblem(topic: string): string | null {
    const raw = this.isRaw(topic);
    const name = raw ? topic : `${this.prefix}${topic}`;
    if (raw && name.startsWith(this.prefix)) {
      return `topic ${JSON.stringify(topic)} is raw (${this.kind}.rawTopics) but its name falls inside Herald's namespace ${JSON.stringify(this.prefix)}`;
    }
    const reserved = this.reservedProblem(name);
    if (reserved) return `topic ${JSON.stringify(topic)}: ${reserved}`;
    if (this.kind === 'nats' && (name.startsWith('.') || name.endsWith('.') || name.includes('..'))) {
      return `topic ${JSON.stringify(topic)} would make a NATS subject with an empty token (leading, trailing or double dot)`;
    }
    return null;
  }

  private reservedProblem(name: string): string | null {
    if (this.kind === 'nats') {
      if (name.startsWith('$')) return 'NATS subjects starting with $ are the server\'s own (JetStream, system, KV): no topic may reach them';
      if (name.startsWith('_INBOX')) return 'NATS subjects starting with _INBOX are reply inboxes: no topic may reach them';
      if (name.startsWith('_R_.') || name.startsWith('_GR_.')) return 'NATS subjects starting with _R_. or _GR_. are the server\'s reply subjects (service imports, gateways): no topic may reach them';
    } else if (name.startsWith('__')) {
      return 'Redis channels starting with __ are the server\'s own (keyspace and keyevent notifications, client tracking, sentinel): no topic may reach them';
    }
    return null;
  }
}
