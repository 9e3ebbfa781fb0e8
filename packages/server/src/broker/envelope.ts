import { decodeLhttp, LHTTP_PREFIX } from '@herald/protocol';
import type { Publication } from './broker.js';
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
 * A publication that excludes a connection (its sender, `Publication.exclude`)
 * carries the connection id in front of its text, in both envelopes:
 *
 *     \x1d<connection id>\x1f<message JSON or LHTTP text>
 *
 * (neither JSON text nor LHTTP text starts with \x1d).
 */
const MARK = '\x1eherald\x1f';

/** The start of the optional exclusion in front of a publication's text in an envelope. */
const EXCLUDE_MARK = '\x1d';

/**
 * A publication on a topic with history in Redis, published by the history
 * script itself with its position, and delivered by every node (the
 * publishing one too):
 *
 *     \x1eherald-h\x1f<offset>\x1f<epoch>\x1f<message JSON or LHTTP text>
 */
export const HISTORY_MARK = '\x1eherald-h\x1f';

export function encodeEnvelope(nodeId: string, publication: Publication): string {
  return `${MARK}${nodeId}\x1f${withExclusion(publication)}`;
}

/** The publication's wire text with its exclusion in front, if it has one (what follows the envelope's header). */
export function withExclusion(publication: Publication): string {
  const text = wireText(publication);
  return publication.exclude === undefined ? text : `${EXCLUDE_MARK}${publication.exclude}\x1f${text}`;
}

/** Why a connection id cannot travel as an exclusion (1 to 128 characters, no control character), or null. */
export function exclusionProblem(id: string): string | null {
  if (id.length === 0 || id.length > 128) return 'a connection id is 1 to 128 characters';
  if (/[\x00-\x1f\x7f]/.test(id)) return 'a connection id holds no control characters';
  return null;
}

/** Takes the exclusion off the front of an envelope's text: the connection id (or undefined) and the rest. */
function splitExclusion(text: string): { exclude: string | undefined; text: string } {
  if (!text.startsWith(EXCLUDE_MARK)) return { exclude: undefined, text };
  const end = text.indexOf('\x1f', EXCLUDE_MARK.length);
  if (end === -1) return { exclude: undefined, text };
  return { exclude: text.slice(EXCLUDE_MARK.length, end), text: text.slice(end + 1) };
}

/** A Herald publication from its envelope's text (exclusion and wire text). */
function fromEnvelope(topic: string, envelopeText: string): Publication {
  const { exclude, text } = splitExclusion(envelopeText);
  const publication = publicationFromWire(topic, text, true);
  if (exclude !== undefined) publication.exclude = exclude;
  return publication;
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
}

export function decodeEnvelope(topic: string, text: string): Decoded {
  if (text.startsWith(HISTORY_MARK)) {
    const offsetEnd = text.indexOf('\x1f', HISTORY_MARK.length);
    const epochEnd = offsetEnd === -1 ? -1 : text.indexOf('\x1f', offsetEnd + 1);
    const offset = epochEnd === -1 ? '' : text.slice(HISTORY_MARK.length, offsetEnd);
    // An offset that is not a positive integer is no position (NaN would stop the stream's gap checks): a raw payload.
    if (/^[1-9][0-9]*$/.test(offset) && Number.isSafeInteger(Number(offset))) {
      const publication = fromEnvelope(topic, text.slice(epochEnd + 1));
      publication.offset = Number(offset);
      publication.epoch = text.slice(offsetEnd + 1, epochEnd);
      return { node: null, publication };
    }
  }
  if (text.startsWith(MARK)) {
    const end = text.indexOf('\x1f', MARK.length);
    if (end !== -1) return { node: text.slice(MARK.length, end), publication: fromEnvelope(topic, text.slice(end + 1)) };
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
