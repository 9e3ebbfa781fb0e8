import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeLhttp } from '@herald/protocol';
import type { Publication } from '../../src/broker/broker.js';
import { decodeEnvelope, encodeEnvelope, exclusionProblem, HISTORY_MARK, metadataProblem, publicationFromWire, rawPayload, wireText, withMetadata } from '../../src/broker/envelope.js';

const lhttpText = encodeLhttp({ command: 'publish', headers: [['publish', 'room'], ['x-id', '7']], body: 'hello <b>' });

describe('broker envelope', () => {
  it('a publication round-trips with its node', () => {
    for (const payload of ['{"a":1}', '"text"', '[1,2]', '42', 'null', '"\\u003cscript\\u003e"', '"über 😀"']) {
      const publication: Publication = { topic: 'news', payload };
      const text = encodeEnvelope('node-1', publication);
      assert.deepEqual(decodeEnvelope('news', text), { node: 'node-1', publication }, payload);
    }
  });

  it('an LHTTP publication travels as its LHTTP text and comes back as one', () => {
    const publication: Publication = { topic: 'room', payload: '"hello \\u003cb\\u003e"', lhttp: { text: lhttpText, command: 'publish', headers: [['publish', 'room'], ['x-id', '7']] } };
    assert.equal(wireText(publication), lhttpText, 'Lhttp nodes on the same broker read it as their own');
    const decoded = decodeEnvelope('room', encodeEnvelope('n', publication));
    assert.deepEqual(decoded, { node: 'n', publication }, 'the body becomes the message as a JSON string, HTML-escaped');
  });

  it('a node id is whatever stands between the mark and the next separator', () => {
    const text = encodeEnvelope('a-b.c:d', { topic: 't', payload: '{"x":"\\u001f"}' });
    assert.equal(decodeEnvelope('t', text).node, 'a-b.c:d');
    assert.equal(decodeEnvelope('t', text).publication.payload, '{"x":"\\u001f"}');
  });

  it('an exclusion travels in front of the text, in both envelopes, and comes back on the publication', () => {
    const publication: Publication = { topic: 'news', payload: '{"a":1}', exclude: 'n1-3f' };
    assert.deepEqual(decodeEnvelope('news', encodeEnvelope('node-1', publication)), { node: 'node-1', publication });
    assert.equal(withMetadata(publication), '\x1dn1-3f\x1f{"a":1}');
    const history = decodeEnvelope('h:t', `${HISTORY_MARK}4\x1fe\x1f${withMetadata({ topic: 'h:t', payload: '"x"', exclude: 'c-1' })}`);
    assert.deepEqual(history.publication, { topic: 'h:t', payload: '"x"', exclude: 'c-1', offset: 4, epoch: 'e' });
    assert.equal(withMetadata({ topic: 't', payload: '1' }), '1', 'none: the text alone');
    assert.equal(exclusionProblem('ok-1'), null);
    for (const bad of ['', 'a\x1fb', 'x'.repeat(129)]) assert.notEqual(exclusionProblem(bad), null, JSON.stringify(bad));
  });

  it('tags and an event travel in a metadata header with the exclusion, in both envelopes; an old exclusion still reads', () => {
    const publication: Publication = { topic: 'news', payload: '{"a":1}', exclude: 'n1-3f', tags: { region: 'eu', level: '3', note: 'a\\b "q" ü' }, event: 'order.created' };
    const text = withMetadata(publication);
    assert.ok(text.startsWith('\x1c{'), 'a metadata header');
    assert.ok(text.endsWith('\x1f{"a":1}'), 'then the text');
    assert.deepEqual(decodeEnvelope('news', encodeEnvelope('node-1', publication)), { node: 'node-1', publication });
    const eventOnly: Publication = { topic: 'news', payload: '"x"', event: 'ping' };
    assert.deepEqual(decodeEnvelope('news', encodeEnvelope('n', eventOnly)).publication, eventOnly);
    const history = decodeEnvelope('h:t', `${HISTORY_MARK}9\x1fe\x1f${withMetadata({ topic: 'h:t', payload: '"x"', tags: { k: 'v' } })}`);
    assert.deepEqual(history.publication, { topic: 'h:t', payload: '"x"', tags: { k: 'v' }, offset: 9, epoch: 'e' });
    assert.deepEqual(decodeEnvelope('t', `\x1eherald\x1fold\x1f\x1dc-9\x1f[1]`).publication, { topic: 't', payload: '[1]', exclude: 'c-9' }, 'the older exclusion form');
    const lhttp: Publication = { topic: 'room', payload: '"hello \\u003cb\\u003e"', lhttp: { text: lhttpText, command: 'publish', headers: [['publish', 'room'], ['x-id', '7']] }, event: 'e' };
    assert.deepEqual(decodeEnvelope('room', encodeEnvelope('n', lhttp)).publication, lhttp);
  });

  it('a forged envelope\'s tags and event are checked as a publish checks them: invalid ones are dropped together, the payload and exclusion kept', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ t: { r: 'eu', n: { nested: [1, 2] } } }, /^tags: tag "n" must be a string/],
      [{ t: { r: 'eu' }, e: `${'E'.repeat(300)}\u0000` }, /^event: event must be 1 to 200 characters/],
      [{ t: { r: 'eu' }, e: 'a\u0000b' }, /^event: event holds a control or format character/],
      [{ t: { r: 'eu' }, e: 'pusher:error' }, /^event: event names starting with pusher:/],
      [{ t: ['eu'] }, /^tags: tags must be an object/],
      [{ x: 'c-1', t: JSON.parse('{"__proto__":"eu"}') }, /^tags: the tag name "__proto__" is reserved/],
    ];
    for (const [meta, problem] of cases) {
      for (const text of [`\x1eherald\x1ffake\x1f\x1c${JSON.stringify(meta)}\x1f{"m":1}`, `${HISTORY_MARK}3\x1fe\x1f\x1c${JSON.stringify(meta)}\x1f{"m":1}`]) {
        const decoded = decodeEnvelope('t', text);
        assert.equal(decoded.publication.payload, '{"m":1}', 'the payload kept');
        assert.equal(decoded.publication.tags, undefined, JSON.stringify(meta));
        assert.equal(decoded.publication.event, undefined, JSON.stringify(meta));
        assert.equal(decoded.publication.exclude, meta.x);
        assert.match(decoded.refused ?? '', problem);
      }
    }
    const valid = decodeEnvelope('t', `\x1eherald\x1ffake\x1f\x1c{"t":{"r":"eu"},"e":"ok"}\x1f{"m":1}`);
    assert.deepEqual(valid, { node: 'fake', publication: { topic: 't', payload: '{"m":1}', tags: { r: 'eu' }, event: 'ok' } }, 'valid metadata is kept, nothing refused');
    assert.equal(metadataProblem({ r: 'eu' }, 'ok'), null);
  });

  it('a raw payload that starts like a metadata header is a raw payload: only Herald envelopes carry metadata', () => {
    const raw = '\x1c{"t":{"region":"eu"}}\x1f{"a":1}';
    const decoded = decodeEnvelope('t', raw);
    assert.equal(decoded.publication.tags, undefined);
    assert.equal(JSON.parse(decoded.publication.payload), raw, 'the whole text, as a JSON string');
  });

  it('a history publication carries its offset and epoch, and no node: every node delivers it', () => {
    const decoded = decodeEnvelope('h:t', `${HISTORY_MARK}17\x1fep0ch\x1f{"n":17}`);
    assert.deepEqual(decoded, { node: null, publication: { topic: 'h:t', payload: '{"n":17}', offset: 17, epoch: 'ep0ch' } });
    const lhttp = decodeEnvelope('h:t', `${HISTORY_MARK}3\x1fe\x1f${lhttpText}`);
    assert.deepEqual([lhttp.publication.offset, lhttp.publication.epoch, lhttp.publication.lhttp?.command], [3, 'e', 'publish']);
  });

  it('a raw payload that is JSON is the message as it is (HTML-escaped); anything else becomes a JSON string', () => {
    assert.deepEqual(decodeEnvelope('t', '{"from":"php"}'), { node: null, publication: { topic: 't', payload: '{"from":"php"}' } });
    assert.equal(decodeEnvelope('t', 'data from PHP').publication.payload, '"data from PHP"');
    assert.equal(decodeEnvelope('t', '{"html":"<img>"}').publication.payload, '{"html":"\\u003cimg\\u003e"}');
    assert.equal(decodeEnvelope('t', '<img onerror=x>').publication.payload, '"\\u003cimg onerror=x\\u003e"');
    assert.equal(decodeEnvelope('t', '').publication.payload, '""', 'an empty payload is the empty string');
    assert.equal(rawPayload('  [1, 2] '), '  [1, 2] ', 'valid JSON text is kept byte for byte');
    assert.equal(JSON.parse(rawPayload('{"a":')), '{"a":', 'broken JSON is a string');
  });

  it('raw LHTTP text from another publisher is an LHTTP publication; text that only looks like LHTTP is a string', () => {
    const raw = decodeEnvelope('room', lhttpText);
    assert.equal(raw.node, null);
    assert.deepEqual(raw.publication.lhttp, { text: lhttpText, command: 'publish', headers: [['publish', 'room'], ['x-id', '7']] });
    assert.equal(JSON.parse(raw.publication.payload), 'hello <b>');
    const broken = decodeEnvelope('room', 'LHTTP/1.0 no line end');
    assert.deepEqual(broken.publication, { topic: 'room', payload: '"LHTTP/1.0 no line end"' });
  });

  it('malformed marks are raw payloads, never a Herald publication', () => {
    const mark = '\x1eherald\x1f';
    // A mark with no separator after the node id: not an envelope.
    assert.deepEqual(decodeEnvelope('t', `${mark}node-without-end`), { node: null, publication: { topic: 't', payload: JSON.stringify(`${mark}node-without-end`) } });
    // The history mark with one separator only (no epoch end).
    const short = `${HISTORY_MARK}12\x1f{"a":1}`;
    assert.deepEqual(decodeEnvelope('t', short), { node: null, publication: { topic: 't', payload: JSON.stringify(short) } });
    assert.deepEqual(decodeEnvelope('t', HISTORY_MARK).publication, { topic: 't', payload: JSON.stringify(HISTORY_MARK) });
    // An offset that is not a positive integer: not a position (NaN would stop a stream's gap checks for good).
    for (const offset of ['', 'abc', '-1', '0', '1.5', '1e3x']) {
      const text = `${HISTORY_MARK}${offset}\x1fe\x1f{"a":1}`;
      const decoded = decodeEnvelope('t', text);
      assert.deepEqual(decoded, { node: null, publication: { topic: 't', payload: JSON.stringify(text) } }, `offset ${JSON.stringify(offset)}`);
    }
    // Something close to the mark is not the mark.
    assert.equal(decodeEnvelope('t', '\x1eherald-x\x1fn\x1f1').node, null);
  });

  it('publicationFromWire trusts Herald\'s own text and turns a raw one into JSON', () => {
    assert.equal(publicationFromWire('t', '{"a":1}', true).payload, '{"a":1}');
    assert.equal(publicationFromWire('t', 'plain', false).payload, '"plain"');
    assert.equal(publicationFromWire('t', lhttpText, true).lhttp?.text, lhttpText, 'LHTTP text is LHTTP whoever sent it');
  });
});
