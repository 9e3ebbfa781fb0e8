import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Flusher, type Batched } from '../../src/hub/flusher.js';
import { encodeTextFrame } from '../../src/hub/frame.js';
import { Writer } from '../../src/hub/writer.js';
import { FakeTransport } from '../helpers/fake-transport.js';

/** A flusher that records what is scheduled; `flush()` ends the turn at once. */
class CountingFlusher extends Flusher {
  readonly targets: Batched[] = [];
  override schedule(target: Batched): void {
    this.targets.push(target);
    super.schedule(target);
  }
}

function setup(maxBytes = 1000) {
  const transport = new FakeTransport();
  const flusher = new CountingFlusher();
  const overflows: number[] = [];
  const writer = new Writer(transport, flusher, maxBytes, (queued) => overflows.push(queued));
  return { transport, flusher, overflows, writer };
}

const bytes = (n: number, fill = 0x61): Buffer => Buffer.alloc(n, fill);

describe('Writer', () => {
  it('gathers the frames of a turn and hands them over as one buffer when flushed, in order', () => {
    const { transport, flusher, writer } = setup();
    for (const text of ['one', 'two', 'three']) assert.equal(writer.write(encodeTextFrame(text)), true);
    assert.equal(transport.writes.length, 0, 'nothing written during the turn');
    assert.equal(writer.frames, 3);
    flusher.flush();
    assert.equal(transport.writes.length, 1, 'one write for the turn');
    assert.deepEqual(transport.texts(), ['one', 'two', 'three']);
    flusher.flush();
    assert.equal(transport.writes.length, 1, 'a second flush writes nothing more');
  });

  it('a single frame is handed over as the same buffer (no copy)', () => {
    const { transport, flusher, writer } = setup();
    const frame = encodeTextFrame('alone');
    writer.write(frame);
    flusher.flush();
    assert.equal(transport.writes[0], frame);
  });

  it('schedules itself once per turn, with the first frame', () => {
    const { flusher, writer } = setup();
    writer.write(bytes(10));
    writer.write(bytes(10));
    writer.write(bytes(10));
    assert.deepEqual(flusher.targets, [writer]);
    flusher.flush();
    writer.write(bytes(10));
    assert.equal(flusher.targets.length, 2, 'the next turn schedules again');
  });

  it('the next turn starts empty: nothing of the previous one is written again', () => {
    const { transport, flusher, writer } = setup();
    writer.write(encodeTextFrame('a'));
    writer.write(encodeTextFrame('b'));
    flusher.flush();
    writer.write(encodeTextFrame('c'));
    flusher.flush();
    assert.equal(transport.writes.length, 2);
    assert.deepEqual(transport.texts(), ['a', 'b', 'c']);
  });

  it('a write that takes the queue exactly to maxBytes is accepted; one byte more is refused and reported with the total', () => {
    const { transport, overflows, writer } = setup(100);
    transport.queuedBytes = 40;
    assert.equal(writer.write(bytes(30)), true);
    assert.equal(writer.write(bytes(30)), true, '40 + 30 + 30 = 100: at the limit');
    assert.equal(writer.write(bytes(1)), false);
    assert.deepEqual(overflows, [101]);
    assert.equal(writer.frames, 2, 'the refused frame is not counted');
    assert.equal(writer.queuedBytes, 100, 'nor queued');
  });

  it('every refused write is reported once; a smaller one that fits is still accepted', () => {
    const { overflows, writer, transport, flusher } = setup(100);
    writer.write(bytes(90));
    assert.equal(writer.write(bytes(20)), false);
    assert.equal(writer.write(bytes(50)), false);
    assert.deepEqual(overflows, [110, 140]);
    assert.equal(writer.write(bytes(10)), true, '90 + 10 fits');
    flusher.flush();
    assert.equal(transport.bytes().length, 100);
  });

  it('a refused first write of a turn schedules nothing', () => {
    const { transport, flusher, writer } = setup(100);
    transport.queuedBytes = 100;
    assert.equal(writer.write(bytes(1)), false);
    assert.deepEqual(flusher.targets, []);
  });

  it("reads the transport's queue once per turn, at the first write", () => {
    const { transport, flusher, writer } = setup(100);
    for (let i = 0; i < 5; i++) writer.write(bytes(1));
    assert.equal(transport.queuedReads, 1);
    flusher.flush();
    writer.write(bytes(1));
    assert.equal(transport.queuedReads, 2, 'read again in the next turn');
  });

  it("counts the transport's queue as read at the first write of the turn", () => {
    const { transport, overflows, writer, flusher } = setup(100);
    transport.queuedBytes = 50;
    writer.write(bytes(10));
    // The transport's queue cannot grow while frames are only gathered; the writer does not look again this turn.
    transport.queuedBytes = 0;
    assert.equal(writer.write(bytes(45)), false, '50 + 10 + 45 > 100');
    assert.deepEqual(overflows, [105]);
    flusher.flush();
    assert.equal(writer.write(bytes(90)), true, 'the next turn reads the drained queue: 0 + 90');
  });

  it('hands a batch over at once when it reaches 64 KiB, and reads the transport again after', () => {
    const { transport, flusher, overflows, writer } = setup(100 * 1024);
    transport.growQueue = true;
    writer.write(bytes(64 * 1024 - 1));
    assert.equal(transport.writes.length, 0, 'below 64 KiB: waits for the turn to end');
    writer.write(bytes(1));
    assert.equal(transport.writes.length, 1, 'at 64 KiB: written at once');
    assert.equal(transport.writes[0]!.length, 64 * 1024);
    // The transport now holds the 64 KiB: 64 KiB + 40 KiB is over 100 KiB.
    assert.equal(writer.write(bytes(40 * 1024)), false);
    assert.deepEqual(overflows, [104 * 1024]);
    assert.equal(writer.write(bytes(30 * 1024)), true);
    flusher.flush();
    assert.equal(transport.writes.length, 2);
    assert.equal(transport.bytes().length, 94 * 1024);
  });

  it('queuedBytes is what the transport holds plus the frames of this turn', () => {
    const { transport, flusher, writer } = setup();
    transport.queuedBytes = 7;
    writer.write(bytes(5));
    writer.write(bytes(3));
    assert.equal(writer.queuedBytes, 15);
    flusher.flush();
    assert.equal(writer.queuedBytes, 7, 'the fake transport does not grow: only its own 7 remain');
  });

  it('flushing with nothing pending writes nothing (no empty buffer)', () => {
    const { transport, writer } = setup();
    writer.flushPending();
    assert.deepEqual(transport.ops(), []);
  });

  it('once closed (open = false), flushed frames are dropped, not written', () => {
    const { transport, flusher, writer } = setup();
    writer.write(bytes(10));
    writer.open = false;
    flusher.flush();
    assert.deepEqual(transport.ops(), []);
    assert.equal(writer.queuedBytes, 0, 'and no longer counted');
  });
});
