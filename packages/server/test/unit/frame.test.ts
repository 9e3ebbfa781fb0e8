import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventEmitter } from 'node:events';
import * as ws from 'ws';
import { encodeTextFrame } from '../../src/hub/frame.js';

// ws exports its frame parser, but @types/ws does not declare it.
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean }) => EventEmitter & { write(chunk: Buffer): void };
};

/** Decodes frames with ws's own parser, as a client would. */
function decode(frames: Buffer[]): string[] {
  const receiver = new Receiver({ isServer: false });
  const out: string[] = [];
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false);
    out.push(data.toString('utf8'));
  });
  receiver.on('error', (err: Error) => assert.fail(err));
  for (const frame of frames) receiver.write(frame);
  return out;
}

describe('encodeTextFrame', () => {
  it('frames every payload length class so that a real parser reads it back', () => {
    const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000];
    const texts = lengths.map((n) => 'a'.repeat(n));
    assert.deepEqual(decode(texts.map(encodeTextFrame)), texts);
  });

  it('uses the 2, 4 and 10 byte headers at the RFC 6455 boundaries', () => {
    assert.equal(encodeTextFrame('a'.repeat(125)).length, 125 + 2);
    assert.equal(encodeTextFrame('a'.repeat(126)).length, 126 + 4);
    assert.equal(encodeTextFrame('a'.repeat(65_535)).length, 65_535 + 4);
    assert.equal(encodeTextFrame('a'.repeat(65_536)).length, 65_536 + 10);
    const frame = encodeTextFrame('hi');
    assert.equal(frame[0], 0x81, 'FIN + text opcode');
    assert.equal(frame[1], 2, 'unmasked, length 2');
  });

  it('counts the length in UTF-8 bytes, not characters', () => {
    const text = 'ünïcode ✓ 𝄞'.repeat(20);
    assert.deepEqual(decode([encodeTextFrame(text)]), [text]);
  });

  it('frames concatenated in one buffer are read as separate messages (coalesced writes)', () => {
    const joined = Buffer.concat(['one', 'two', 'three'].map(encodeTextFrame));
    assert.deepEqual(decode([joined]), ['one', 'two', 'three']);
  });
});
