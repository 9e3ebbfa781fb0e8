import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidTopic } from '@herald/protocol';
import type { Publication } from '../../src/broker/broker.js';
import { closeEvent, sseCodec, SseStreamCodec } from '../../src/protocols/sse/codec.js';
import { decodeEventId, encodePosition, StreamPositions } from '../../src/protocols/sse/event-id.js';

const publication = (topic: string, offset?: number, epoch = 'e1'): Publication => ({ topic, payload: '{"n":1}', ...(offset === undefined ? {} : { offset, epoch }) });

describe('SSE event ids', () => {
  it('round-trip any valid topic and epoch, and hold no CR, LF, NUL or non-ASCII byte', () => {
    const topics = ['news', 'chat:room-1', 'h:a,b', 'a%b', '聊天室', 'café', '😀:x', 'a&b', '"q"', "it's", '%41', 'x.y.z'];
    for (const topic of topics) assert.ok(isValidTopic(topic), topic);
    const positions = new StreamPositions();
    topics.forEach((topic, i) => positions.set(topic, { offset: i * 7, epoch: i % 2 ? `ep${i}` : '' }));
    const id = positions.eventId();
    assert.match(id, /^[\x21-\x7e]+$/, 'printable ASCII only');
    const decoded = decodeEventId(id, topics);
    assert.ok(typeof decoded !== 'string', String(decoded));
    assert.deepEqual(
      [...decoded],
      topics.map((topic, i) => [topic, { offset: i * 7, epoch: i % 2 ? `ep${i}` : '' }]),
    );
  });

  it('writes a one-topic position without the topic, short, and reads it for a stream of one topic only', () => {
    assert.equal(encodePosition({ offset: 42, epoch: '1f3a9c0b2e' }), '42.1f3a9c0b2e');
    assert.equal(encodePosition({ offset: 0, epoch: '' }), '0.');
    assert.equal(encodePosition({ offset: 3, epoch: 'a|b,c%' }), '3.a%7Cb%2Cc%25');
    assert.deepEqual(decodeEventId('3.a%7Cb%2Cc%25', ['t']), new Map([['t', { offset: 3, epoch: 'a|b,c%' }]]));
    assert.deepEqual(decodeEventId('0.', ['t']), new Map([['t', { offset: 0, epoch: '' }]]));
    assert.match(String(decodeEventId('3.e', ['a', 'b'])), /names no topic/);
  });

  it('writes the id with one topic elsewhere, in its place, without moving the positions', () => {
    const positions = new StreamPositions(new Map([['a', { offset: 1, epoch: 'e' }], ['b', { offset: 2, epoch: 'e' }]]));
    assert.equal(positions.eventIdWith('a', { offset: 9, epoch: 'f' }), 'a|9.f,b|2.e');
    assert.equal(positions.eventIdWith('a', undefined), 'b|2.e');
    assert.equal(positions.eventIdWith('c', { offset: 3, epoch: 'e' }), 'a|1.e,b|2.e,c|3.e');
    assert.equal(positions.eventIdWith('b', { offset: 2, epoch: 'e' }), 'a|1.e,b|2.e');
    assert.equal(positions.eventId(), 'a|1.e,b|2.e');
  });

  it('leaves out topics the stream does not have, and says why an id cannot be read', () => {
    assert.deepEqual(decodeEventId('a|1.e,zzz|2.e', ['a', 'b']), new Map([['a', { offset: 1, epoch: 'e' }]]));
    const problems: Array<[string, RegExp]> = [
      ['', /not a position/],
      ['x.e', /not a position/],
      ['-1.e', /not a position/],
      ['1e3.e', /not a position/],
      ['1234567890123456.e', /not a position/],
      ['a|1.e,a|2.e', /appears twice/],
      ['|1.e', /not an entry/],
      ['a|1.e,', /not an entry/],
      ['%E0|1.e', /percent-encoding/],
      ['a|1.%E0', /percent-encoding/],
      [`1.${'e'.repeat(65)}`, /over 64 characters/],
    ];
    for (const [id, problem] of problems) assert.match(String(decodeEventId(id, ['a'])), problem, id);
  });
});

describe('SSE framing', () => {
  it('frames a publication as a default event with its position as id, once for every stream of its topic', () => {
    const p = publication('news', 8, '1f3a');
    const framed = sseCodec.publication(p);
    assert.equal(framed.toString(), 'data: {"action":"publish","topic":"news","message":{"n":1},"offset":8,"epoch":"1f3a"}\nid: 8.1f3a\n\n');
    assert.equal(sseCodec.publication(publication('plain')).toString(), 'data: {"action":"publish","topic":"plain","message":{"n":1}}\n\n');
  });

  it('frames every other frame as event: <action>, and text with line breaks as several data lines', () => {
    assert.equal(sseCodec.gap('news', 'interrupted')!.toString(), 'event: gap\ndata: {"action":"gap","topic":"news","reason":"interrupted"}\n\n');
    assert.equal(sseCodec.push('{"a":\n1}').toString(), 'event: push\ndata: {"action":"push","message":{"a":\ndata: 1}}\n\n');
    assert.equal(sseCodec.error('token_expired', 'soon')!.toString(), 'event: error\ndata: {"action":"error","error":{"code":"token_expired","message":"soon"}}\n\n');
    assert.equal(sseCodec.ping(), null, 'the heartbeat is a comment, not an event');
    assert.equal(closeEvent(1013, 'slow <consumer>').toString(), 'event: close\ndata: {"code":1013,"reason":"slow \\u003cconsumer\\u003e"}\n\n');
  });

  it("gives each multi-topic stream its own id line after the publication's shared data lines", () => {
    const one = new SseStreamCodec(new StreamPositions(new Map([['b', { offset: 4, epoch: 'eb' }]])));
    const two = new SseStreamCodec(new StreamPositions());
    const p = publication('a', 2, 'ea');
    assert.equal(one.publication(p).toString(), 'data: {"action":"publish","topic":"a","message":{"n":1},"offset":2,"epoch":"ea"}\nid: b|4.eb,a|2.ea\n\n');
    assert.equal(two.publication(p).toString(), 'data: {"action":"publish","topic":"a","message":{"n":1},"offset":2,"epoch":"ea"}\nid: a|2.ea\n\n');
    assert.equal(one.positions.eventId(), 'b|4.eb,a|2.ea');
    // A topic without history: the whole event is shared, and the ids stay.
    const plain = publication('plain');
    assert.equal(one.publication(plain), two.publication(plain), 'the same buffer');
    assert.equal(one.positions.eventId(), 'b|4.eb,a|2.ea');
    // Presence and gaps: the frame of the stream before.
    const entry = { conn: 'c1' };
    assert.equal(one.presence('join', 'a', entry), two.presence('join', 'a', entry));
    assert.equal(one.gap('a', 'interrupted'), two.gap('a', 'interrupted'));
  });
});
