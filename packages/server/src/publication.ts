/** What a publication is, wherever it travels: published, stored in history, carried between nodes, encoded for a connection. */

import { INVISIBLE } from './util/invisible.js';

/** An LHTTP message published on a topic (by an LHTTP client, `POST /publish`, or an Lhttp node). */
export interface LhttpPublication {
  /** The LHTTP text, exactly as LHTTP subscribers receive it. */
  text: string;
  command: string;
  headers: Array<[string, string]>;
}

/** One publication as it travels between nodes. */
export interface Publication {
  topic: string;
  /** The message as JSON text, embedded verbatim in every frame that carries it (for LHTTP: the body as a JSON string). */
  payload: string;
  /** Set when the publication is an LHTTP message. */
  lhttp?: LhttpPublication;
  /** Position in the topic's history, when history is on for the topic. */
  offset?: number;
  epoch?: string;
  /**
   * A connection id that must not receive this publication (its sender),
   * honoured by every node: it travels in the broker envelope. A delivery
   * filter only: the publication is stored in history as any other, and a
   * recovery or a node's catch-up from history delivers it to every
   * subscriber.
   */
  exclude?: string;
  /**
   * The publication's tags (at most 16 names of 1 to 64 characters, each a
   * string of at most 256 characters, no control or format characters, no
   * name `__proto__`: `tagsProblem`), which subscription
   * filters test (docs/backend.md, "Tags and filters"). Stored in history
   * with the publication and carried to every node; JSON frames show them as
   * `"tags":{...}`.
   */
  tags?: Tags;
  /**
   * An event name (1 to 200 characters, no control or format character: as Pusher's
   * events have), stored and carried with the publication; JSON frames show
   * it as `"event":"..."`.
   */
  event?: string;
}

/** A publication's tags: names to string values. */
export type Tags = Readonly<Record<string, string>>;

/** Bounds on a publication's tags and event name (`tagsProblem`, `eventProblem`). */
export const TAG_LIMITS = Object.freeze({ maxTags: 16, maxNameLength: 64, maxValueLength: 256, maxEventLength: 200 });

/**
 * Why `tags` cannot be a publication's tags, or null: not an object, more
 * than 16 names, a name not 1 to 64 characters or holding a control or
 * format character (INVISIBLE) or named `__proto__`, a value not a string of
 * at most 256 characters without control or format characters. Checked on
 * the object's own properties (a `__proto__` key from JSON.parse included).
 */
export function tagsProblem(tags: unknown): string | null {
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return 'tags must be an object of string values';
  const names = Object.keys(tags);
  if (names.length > TAG_LIMITS.maxTags) return `${names.length} tags, over the limit of ${TAG_LIMITS.maxTags}`;
  for (const name of names) {
    if (name.length === 0 || name.length > TAG_LIMITS.maxNameLength) return `tag name ${JSON.stringify(name.slice(0, 80))} must be 1 to ${TAG_LIMITS.maxNameLength} characters`;
    if (name === '__proto__') return 'the tag name "__proto__" is reserved';
    if (INVISIBLE.test(name)) return `tag name ${JSON.stringify(name)} holds a control or format character`;
    // The own property, whatever the prototype holds.
    const value: unknown = Object.getOwnPropertyDescriptor(tags, name)?.value;
    if (typeof value !== 'string') return `tag ${JSON.stringify(name)} must be a string`;
    if (value.length > TAG_LIMITS.maxValueLength) return `tag ${JSON.stringify(name)} is over ${TAG_LIMITS.maxValueLength} characters`;
    if (INVISIBLE.test(value)) return `tag ${JSON.stringify(name)} holds a control or format character`;
  }
  return null;
}

/** Event names no publisher may use: the Pusher protocol's own (`pusher:*`, `pusher_internal:*`, any case). */
export const RESERVED_EVENT = /^pusher(_internal)?:/i;

/** Why `event` cannot be a publication's event name (1 to 200 characters, no control or format character: INVISIBLE, not `pusher:`/`pusher_internal:`), or null. */
export function eventProblem(event: unknown): string | null {
  if (typeof event !== 'string') return 'event must be a string';
  if (event.length === 0 || event.length > TAG_LIMITS.maxEventLength) return `event must be 1 to ${TAG_LIMITS.maxEventLength} characters`;
  if (INVISIBLE.test(event)) return 'event holds a control or format character';
  // The Pusher protocol's own events (pusher-js acts on them: a forged pusher:signin_success or pusher:error
  // would reach its connection's handlers), whatever path the publication comes by.
  if (RESERVED_EVENT.test(event)) return 'event names starting with pusher: or pusher_internal: are reserved (the Pusher protocol\'s own events)';
  return null;
}

export interface PublishResult {
  offset?: number;
  epoch?: string;
}

