import type { Publication } from '../../broker/broker.js';
import { toJson } from '../../util/json.js';
import { jsonText } from '../json/codec.js';
import { framedCodec, type Codec, type Framing, type TextCodec } from '../codec.js';
import { encodePosition, StreamPositions } from './event-id.js';

/**
 * The `data:` lines of an event carrying `text`: one line, or one per line
 * of text (the SSE parser joins them back with LF; JSON's own line breaks
 * are whitespace, so CR and CRLF read as LF mean the same JSON).
 */
function dataLines(text: string): string {
  if (!text.includes('\n') && !text.includes('\r')) return `data: ${text}\n`;
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}\n`)
    .join('');
}

const ACTION = '{"action":"';
const EVENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** The event type of a JSON-protocol frame that is not a publication: its `action` (`gap`, `join`, `error`, `push` ...). */
function eventName(text: string): string {
  let name: unknown;
  if (text.startsWith(ACTION)) {
    name = text.slice(ACTION.length, text.indexOf('"', ACTION.length));
  } else {
    try {
      name = (JSON.parse(text) as { action?: unknown }).action;
    } catch {
      name = undefined;
    }
  }
  return typeof name === 'string' && EVENT_NAME.test(name) ? name : 'frame';
}

/**
 * One complete SSE event: `event:` when `name` is given (null: the default
 * event type, which `EventSource.onmessage` sees), the `data:` lines, and
 * `id:` when `id` is given (never empty: an empty id would reset the
 * client's last event id).
 */
export function sseEvent(name: string | null, text: string, id?: string): Buffer {
  const event = name === null ? '' : `event: ${name}\n`;
  const idLine = id ? `id: ${id}\n` : '';
  return Buffer.from(`${event}${dataLines(text)}${idLine}\n`);
}

/** The first bytes of every stream: how long the client waits before it reconnects, in ms. */
export function retryFrame(ms: number): Buffer {
  return Buffer.from(`retry: ${ms}\n\n`);
}

/** The last event of a stream the server ends on purpose: `event: close`, `data: {"code":N,"reason":"..."}`. */
export function closeEvent(code: number, reason: string): Buffer {
  return sseEvent('close', toJson({ code, reason }));
}

/**
 * The SSE framing of a stream of one topic: a publication is an event of the
 * default type whose `id:` is its own position (`offset.epoch`, on a topic
 * with history), every other frame is `event: <action>`. Every byte of a
 * publication's event is the same for every stream of its topic, so it is
 * framed once per publication.
 */
export const sseFraming: Framing = {
  name: 'sse',
  frame(text: string, publication?: Publication): Buffer {
    if (!publication) return sseEvent(eventName(text), text);
    return sseEvent(null, text, publication.offset === undefined ? undefined : encodePosition({ offset: publication.offset, epoch: publication.epoch ?? '' }));
  },
};

/**
 * The JSON protocol's text as SSE streams carry it: the same frames, under
 * the name `sse` (connection metrics count SSE streams apart), and no
 * application ping (the heartbeat of a stream is a comment line).
 */
export const sseText: TextCodec = { ...jsonText, name: 'sse', ping: () => null };

/** The codec of every stream of one topic: `framedCodec(sseText, sseFraming)`, shared, so a publication is framed once. */
export const sseCodec: Codec = framedCodec(sseText, sseFraming);

/** The last value of a pure function of its arguments, kept for the next call with the same ones (the hub asks each stream's codec in turn). */
function remember<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let last: A | null = null;
  let value: R;
  return (...args: A): R => {
    if (last === null || last.length !== args.length || last.some((arg, i) => arg !== args[i])) {
      value = fn(...args);
      last = args;
    }
    return value;
  };
}

/** A publication's `data:` lines on a multi-topic stream (its id line follows per stream), framed once per publication. */
const sharedData = remember((publication: Publication): Buffer => Buffer.from(dataLines(sseText.publication(publication))));
/** A publication of a topic without history on a multi-topic stream: the whole event, with no id, the same for every stream. */
const sharedEvent = remember((publication: Publication): Buffer => sseEvent(null, sseText.publication(publication)));
const sharedPush = remember((payload: string) => sseCodec.push(payload));
const sharedPresence = remember(sseCodec.presence);
const sharedGap = remember(sseCodec.gap);

/**
 * The codec of one stream of several topics. Its event ids hold the position
 * of every topic of the stream (`StreamPositions`), which only this stream
 * knows: a publication's event is its `data:` lines, framed once per
 * publication and shared, followed by this stream's `id:` line. Publications
 * must be encoded in the order they are written (the hub and the recovery
 * do: each encodes right before it writes). Everything else is the shared
 * codec's frame, remembered from the stream before (the hub asks each
 * stream's codec in turn for a presence change or a gap).
 */
export class SseStreamCodec implements Codec {
  readonly name = sseCodec.name;
  readonly framing = sseFraming;
  readonly plainPush = sseCodec.plainPush;
  readonly error = sseCodec.error;
  readonly ping = sseCodec.ping;
  readonly push = sharedPush;
  readonly presence = sharedPresence;
  readonly gap = sharedGap;
  readonly subscribed = sseCodec.subscribed;
  readonly unsubscribed = sseCodec.unsubscribed;
  readonly frame = sseCodec.frame;

  constructor(readonly positions: StreamPositions) {}

  publication(publication: Publication): Buffer {
    if (publication.offset === undefined) return sharedEvent(publication);
    this.positions.set(publication.topic, { offset: publication.offset, epoch: publication.epoch ?? '' });
    const id = Buffer.from(`id: ${this.positions.eventId()}\n\n`);
    const data = sharedData(publication);
    return Buffer.concat([data, id], data.length + id.length);
  }
}
