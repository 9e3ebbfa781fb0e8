/**
 * What travels on a topic's channel between nodes. Herald's own publications
 * are marked so that nodes recognise them (and drop their own):
 *
 *     \x1eherald\x1f<node id>\x1f<message JSON>
 *
 * Anything else is a raw payload from another publisher (a PHP backend's
 * `PUBLISH channel "data from PHP"`): its text is the message when it is valid
 * JSON, otherwise it becomes a JSON string.
 */
const MARK = '\x1eherald\x1f';

export function encodeEnvelope(nodeId: string, payload: string): string {
  return `${MARK}${nodeId}\x1f${payload}`;
}

export interface Decoded {
  /** The publishing node, or null for a raw publisher. */
  node: string | null;
  /** The message as JSON text. */
  payload: string;
}

export function decodeEnvelope(text: string): Decoded {
  if (text.startsWith(MARK)) {
    const end = text.indexOf('\x1f', MARK.length);
    if (end !== -1) return { node: text.slice(MARK.length, end), payload: text.slice(end + 1) };
  }
  return { node: null, payload: rawPayload(text) };
}

/** A raw payload as message JSON: itself when it is valid JSON, else a JSON string. */
export function rawPayload(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}
