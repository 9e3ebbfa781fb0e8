/**
 * The SSE event id: where a stream stands on each of its topics with history,
 * so that `Last-Event-ID` alone (or `?lastEventId=` after a reload) recovers
 * every topic of the stream. Documented in docs/transports.md.
 *
 * ```
 * id       = position                        a stream of one topic:   42.1f3a9c0b2e
 *          / entry *("," entry)              a stream of several:     chat%2Ca|42.1f3a9c0b2e,news|7.0b9d2e51aa
 * entry    = escaped-topic "|" position
 * position = offset "." escaped-epoch        offset: decimal digits; the epoch may be empty (0.)
 * ```
 *
 * Escaping keeps the printable ASCII characters but `%`, `,` and `|` and
 * percent-encodes everything else as UTF-8 (`%2C`, `%E8%81%8A`): any valid
 * topic round-trips (topics cannot hold `|` or whitespace), and an id never
 * holds CR, LF, NUL or a non-ASCII byte (it travels in an HTTP header).
 */

/** A topic's position: the offset of the last publication seen in an epoch of its history. */
export interface EventPosition {
  offset: number;
  epoch: string;
}

/** Longest epoch accepted in an id (Herald's own are 10 or 12 hex digits). */
const MAX_EPOCH = 64;

/** Characters kept as they are: printable ASCII but `%` (the escape), `,` and `|` (the separators). */
const UNSAFE = /[^\x21-\x24\x26-\x2b\x2d-\x7b\x7d\x7e]/gu;

function escape(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const bytes = Buffer.from(char, 'utf8');
    let out = '';
    for (const byte of bytes) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    return out;
  });
}

/** The text of an escaped field, or null when its percent-encoding is not valid UTF-8. */
function unescape(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** A position as the id writes it: `offset.epoch`. */
export function encodePosition(position: EventPosition): string {
  return `${position.offset}.${escape(position.epoch)}`;
}

/** A topic as an entry of a multi-topic id begins: `topic|`. */
export function entryPrefix(topic: string): string {
  return `${escape(topic)}|`;
}

const POSITION = /^(\d{1,15})\.(.*)$/s;

/** A position from its text, or why it is not one. */
function decodePosition(text: string): EventPosition | string {
  const match = POSITION.exec(text);
  if (!match) return `"${shorten(text)}" is not a position (offset.epoch)`;
  const epoch = unescape(match[2]!);
  if (epoch === null) return `the epoch "${shorten(match[2]!)}" is not valid percent-encoding`;
  if (epoch.length > MAX_EPOCH) return `the epoch is over ${MAX_EPOCH} characters`;
  return { offset: Number(match[1]), epoch };
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/**
 * The positions an event id gives the topics of a stream: entries naming
 * other topics are left out (a stream may keep fewer topics than the one
 * the id came from). An id without topic names (a one-topic stream's) fits
 * only a stream of one topic. Returns why the id cannot be read otherwise.
 */
export function decodeEventId(id: string, topics: readonly string[]): Map<string, EventPosition> | string {
  const positions = new Map<string, EventPosition>();
  if (!id.includes('|')) {
    if (topics.length !== 1) return `"${shorten(id)}" names no topic: it is the id of a stream of one topic, and this stream has ${topics.length}`;
    const position = decodePosition(id);
    if (typeof position === 'string') return position;
    positions.set(topics[0]!, position);
    return positions;
  }
  const wanted = new Set(topics);
  const seen = new Set<string>();
  for (const entry of id.split(',')) {
    const bar = entry.indexOf('|');
    if (bar <= 0) return `"${shorten(entry)}" is not an entry (topic|offset.epoch)`;
    const topic = unescape(entry.slice(0, bar));
    if (topic === null) return `the topic "${shorten(entry.slice(0, bar))}" is not valid percent-encoding`;
    if (seen.has(topic)) return `the topic ${JSON.stringify(shorten(topic))} appears twice`;
    seen.add(topic);
    const position = decodePosition(entry.slice(bar + 1));
    if (typeof position === 'string') return position;
    if (wanted.has(topic)) positions.set(topic, position);
  }
  return positions;
}

/**
 * Where a multi-topic stream stands on each of its topics with history, kept
 * per connection: each publication moves its topic's entry, and the id is
 * every entry, joined (built again only after a change).
 */
export class StreamPositions {
  private readonly entries = new Map<string, string>();
  private readonly prefixes = new Map<string, string>();
  private id: string | null = null;

  constructor(initial: ReadonlyMap<string, EventPosition> = new Map()) {
    for (const [topic, position] of initial) this.set(topic, position);
  }

  set(topic: string, position: EventPosition): void {
    this.entries.set(topic, this.entry(topic, position));
    this.id = null;
  }

  private entry(topic: string, position: EventPosition): string {
    let prefix = this.prefixes.get(topic);
    if (prefix === undefined) this.prefixes.set(topic, (prefix = entryPrefix(topic)));
    return prefix + encodePosition(position);
  }

  delete(topic: string): void {
    if (this.entries.delete(topic)) this.id = null;
    this.prefixes.delete(topic);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The event id: every topic's entry; empty when no topic has a position. */
  eventId(): string {
    this.id ??= [...this.entries.values()].join(',');
    return this.id;
  }

  /** The event id with `topic` at `position` instead (none: without it), in its place; the positions do not change. */
  eventIdWith(topic: string, position: EventPosition | undefined): string {
    const entry = position ? this.entry(topic, position) : undefined;
    if (this.entries.get(topic) === entry) return this.eventId();
    const parts: string[] = [];
    for (const [name, current] of this.entries) {
      if (name !== topic) parts.push(current);
      else if (entry) parts.push(entry);
    }
    if (entry && !this.entries.has(topic)) parts.push(entry);
    return parts.join(',');
  }
}
