import { decodeLhttp, LHTTP_PREFIX } from '@herald/protocol';
import type { Publication } from './broker.js';
import { eventProblem, tagsProblem } from '../publication.js';
import { escapeJsonText, toJson } from '../util/json.js';

/**
 * What travels on a topic's channel between nodes. Herald's own publications
 * are marked so that nodes recognise them (and drop their own):
 *
 *     \x1eherald\x1f<node id>\x1f<message JSON>
 *
 * Anything else is a raw payload from another publisher (a PHP backend's
 * `PUBLISH channel "data from PHP"`): its text is the message when it is valid
 * JSON, otherwise it becomes a JSON string.
 *
 * A publication's metadata travels in front of its text, in both envelopes
 * (neither JSON text nor LHTTP text starts with \x1c or \x1d):
 *
 * - with tags or an event name, a metadata header, JSON with one-letter keys
 *   (`x` the excluded connection, `t` the tags, `e` the event; JSON text
 *   holds no raw \x1f):
 *
 *       \x1c{"x":"<connection id>","t":{"region":"eu"},"e":"<event>"}\x1f<message JSON or LHTTP text>
 *
 * - with an exclusion alone (its sender, `Publication.exclude`), the older
 *   and shorter form, which nodes of earlier versions read too:
 *
 *       \x1d<connection id>\x1f<message JSON or LHTTP text>
 *
 * A raw publisher's payload never gets either: only Herald's own marked
 * envelopes (and the history script's) are read for them. Tags and an event
 * read from an envelope are checked as a publish checks them
 * (`metadataProblem`): whoever can PUBLISH on the broker can forge an
 * envelope, and a forged one with bad tags or event keeps its payload
 * without them.
 */
const MARK = '\x1eherald\x1f';

/** The start of the optional exclusion in front of a publication's text in an envelope. */
const EXCLUDE_MARK = '\x1d';
/** The start of the optional metadata header (exclusion, tags, event) in front of a publication's text. */
const META_MARK = '\x1c';

/** The metadata header's JSON. */
interface MetaHeader {
  x?: string;
  t?: Record<string, string>;
  e?: string;
}

/**
 * A publication on a topic with history in Redis, published by the history
 * script itself with its position, and delivered by every node (the
 * publishing one too):
 *
 *     \x1eherald-h\x1f<offset>\x1f<epoch>\x1f[metadata]<message JSON or LHTTP text>
 */
export const HISTORY_MARK = '\x1eherald-h\x1f';

export function encodeEnvelope(nodeId: string, publication: Publication): string {
  return `${MARK}${nodeId}\x1f${withMetadata(publication)}`;
}

/**
 * The publication's wire text with its metadata in front, if it has any
 * (what follows the envelope's header): the metadata header when it has tags
 * or an event, the exclusion alone otherwise.
 */
export function withMetadata(publication: Publication): string {
  const text = wireText(publication);
  if (publication.tags === undefined && publication.event === undefined) {
    return publication.exclude === undefined ? text : `${EXCLUDE_MARK}${publication.exclude}\x1f${text}`;
  }
  const header: MetaHeader = {};
  if (publication.exclude !== undefined) header.x = publication.exclude;
  if (publication.tags !== undefined) header.t = publication.tags;
  if (publication.event !== undefined) header.e = publication.event;
  return `${META_MARK}${JSON.stringify(header)}\x1f${text}`;
}

/** Why a connection id cannot travel as an exclusion (1 to 128 characters, no control character), or null. */
export function exclusionProblem(id: string): string | null {
  if (id.length === 0 || id.length > 128) return 'a connection id is 1 to 128 characters';
  if (/[\x00-\x1f\x7f]/.test(id)) return 'a connection id holds no control characters';
  return null;
}

/** Takes the metadata off the front of an envelope's text (either form): the metadata found and the rest. */
function splitMetadata(text: string): { meta: MetaHeader | null; text: string } {
  const first = text.charCodeAt(0);
  if (first !== 0x1c && first !== 0x1d) return { meta: null, text };
  const end = text.indexOf('\x1f', 1);
  if (end === -1) return { meta: null, text };
  if (first === 0x1d) return { meta: { x: text.slice(1, end) }, text: text.slice(end + 1) };
  try {
    const parsed: unknown = JSON.parse(text.slice(1, end));
    if (typeof parsed !== 'object' || parsed === null) return { meta: null, text };
    return { meta: parsed as MetaHeader, text: text.slice(end + 1) };
  } catch {
    return { meta: null, text };
  }
}

/**
 * Puts what a metadata header carries on the publication: the exclusion
 * when it is a string; the tags and the event only when both are valid
 * (`metadataProblem`), else neither. Returns why they were dropped, or null.
 */
function applyMetadata(publication: Publication, meta: MetaHeader): string | null {
  if (typeof meta.x === 'string') publication.exclude = meta.x;
  if (meta.t === undefined && meta.e === undefined) return null;
  const problem = metadataProblem(meta.t, meta.e);
  if (problem) return problem;
  if (meta.t !== undefined) publication.tags = meta.t;
  if (meta.e !== undefined) publication.event = meta.e;
  return null;
}

/**
 * Why tags and an event read off the broker cannot go on a publication, or
 * null: they are checked as a publish checks them (`tagsProblem`,
 * `eventProblem`), for whoever can write to the broker can forge a Herald
 * envelope or Herald's NATS headers. Only called when metadata is present.
 */
export function metadataProblem(tags: unknown, event: unknown): string | null {
  const badTags = tags === undefined ? null : tagsProblem(tags);
  if (badTags) return `tags: ${badTags}`;
  const badEvent = event === undefined ? null : eventProblem(event);
  return badEvent ? `event: ${badEvent}` : null;
}

/** A Herald publication from its envelope's text (metadata and wire text), and why its tags and event were dropped, if they were. */
function fromEnvelope(topic: string, envelopeText: string): { publication: Publication; refused: string | null } {
  const { meta, text } = splitMetadata(envelopeText);
  const publication = publicationFromWire(topic, text, true);
  const refused = meta ? applyMetadata(publication, meta) : null;
  return { publication, refused };
}

/**
 * The text a publication travels as: its message JSON, or for an LHTTP
 * publication the LHTTP text itself (so that Lhttp nodes on the same broker
 * read it as they read their own).
 */
export function wireText(publication: Publication): string {
  return publication.lhttp ? publication.lhttp.text : publication.payload;
}

/**
 * A publication from the text found on a topic's channel: LHTTP text (from an
 * LHTTP client on any node, or an Lhttp node) becomes an LHTTP publication,
 * anything else a message as `rawPayload` says.
 */
export function publicationFromWire(topic: string, text: string, trusted: boolean): Publication {
  if (text.startsWith(LHTTP_PREFIX)) {
    try {
      const message = decodeLhttp(text);
      return { topic, payload: toJson(message.body), lhttp: { text, command: message.command, headers: [...message.headers] } };
    } catch {
      // not LHTTP after all: a plain string
    }
  }
  return { topic, payload: trusted ? text : rawPayload(text) };
}

export interface Decoded {
  /** The publishing node, or null for a raw publisher. */
  node: string | null;
  publication: Publication;
  /**
   * Set when the envelope carried tags or an event that a publish would
   * refuse (a forged envelope): they were dropped, the payload kept; why.
   */
  refused?: string;
}

export function decodeEnvelope(topic: string, text: string): Decoded {
  if (text.startsWith(HISTORY_MARK)) {
    const offsetEnd = text.indexOf('\x1f', HISTORY_MARK.length);
    const epochEnd = offsetEnd === -1 ? -1 : text.indexOf('\x1f', offsetEnd + 1);
    const offset = epochEnd === -1 ? '' : text.slice(HISTORY_MARK.length, offsetEnd);
    // An offset that is not a positive integer is no position (NaN would stop the stream's gap checks): a raw payload.
    if (/^[1-9][0-9]*$/.test(offset) && Number.isSafeInteger(Number(offset))) {
      const { publication, refused } = fromEnvelope(topic, text.slice(epochEnd + 1));
      publication.offset = Number(offset);
      publication.epoch = text.slice(offsetEnd + 1, epochEnd);
      return refused ? { node: null, publication, refused } : { node: null, publication };
    }
  }
  if (text.startsWith(MARK)) {
    const end = text.indexOf('\x1f', MARK.length);
    if (end !== -1) {
      const { publication, refused } = fromEnvelope(topic, text.slice(end + 1));
      const node = text.slice(MARK.length, end);
      return refused ? { node, publication, refused } : { node, publication };
    }
  }
  return { node: null, publication: publicationFromWire(topic, text, false) };
}

/** A raw payload as message JSON: itself when it is valid JSON, else a JSON string. */
export function rawPayload(text: string): string {
  try {
    JSON.parse(text);
    return escapeJsonText(text);
  } catch {
    return toJson(text);
  }
}
