import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { Publication } from '../../src/broker/broker.js';
import { LiveStreams, type GapReason, type LiveStreamsHost } from '../../src/history/catch-up.js';
import type { HistoryRead } from '../../src/history/history.js';

const TOPIC = 'h:t';

/**
 * A host for LiveStreams with a history store in memory: `store` holds what
 * the shared history has (what was published, from offset `oldest` on), and
 * `caughtUp` resolves at once unless a test holds it.
 */
class FakeHost implements LiveStreamsHost {
  epoch = 'e1';
  /** Offsets published (and kept) in the store, per the current epoch. */
  kept: number[] = [];
  /** The latest offset published (may be past what is kept). */
  latest = 0;
  readonly delivered: Array<[offset: number | undefined, epoch: string | undefined]> = [];
  readonly gaps: GapReason[] = [];
  readonly reads: Array<number | undefined> = [];
  readonly warnings: string[] = [];
  /** Reads that fail before one succeeds. */
  failReads = 0;
  /** When set, caughtUp waits for `release()`. */
  private held: Array<() => void> | null = null;

  /** Publishes offsets `from..to` to the store (what Redis would hold). */
  publish(from: number, to: number): void {
    for (let offset = from; offset <= to; offset++) this.kept.push(offset);
    this.latest = Math.max(this.latest, to);
  }

  publication(offset: number, epoch = this.epoch): Publication {
    return { topic: TOPIC, payload: `"${epoch}:${offset}"`, offset, epoch };
  }

  deliver(publication: Publication): void {
    assert.equal(publication.payload, publication.offset === undefined ? publication.payload : `"${publication.epoch}:${publication.offset}"`, 'the payload of its offset');
    this.delivered.push([publication.offset, publication.epoch]);
  }

  async read(_topic: string, after: number | undefined): Promise<HistoryRead> {
    this.reads.push(after);
    if (this.failReads > 0) {
      this.failReads--;
      throw new Error('store unreachable');
    }
    const entries = this.kept.filter((offset) => offset > (after ?? 0)).map((offset) => ({ offset, payload: `"${this.epoch}:${offset}"`, time: 0 }));
    return { entries, position: { offset: this.latest, epoch: this.epoch }, oldest: this.kept[0] ?? this.latest + 1 };
  }

  caughtUp(): Promise<void> | undefined {
    if (!this.held) return Promise.resolve();
    return new Promise((resolve) => this.held!.push(resolve));
  }

  holdCaughtUp(): void {
    this.held = [];
  }

  release(): void {
    const waiting = this.held ?? [];
    this.held = null;
    for (const resolve of waiting) resolve();
  }

  gap(_topic: string, reason: GapReason): void {
    this.gaps.push(reason);
  }

  warn(_detail: object, message: string): void {
    this.warnings.push(message);
  }

  offsets(): Array<number | undefined> {
    return this.delivered.map(([offset]) => offset);
  }
}

/** Lets every pending promise callback and I/O turn run. */
const settle = async (turns = 5): Promise<void> => {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
};

function setup() {
  const host = new FakeHost();
  const streams = new LiveStreams(host);
  streams.open(TOPIC);
  return { host, streams };
}

describe('LiveStreams', () => {
  afterEach(() => mock.timers.reset());

  it('hands on publications of topics it does not follow, and those without an offset, as they come', () => {
    const { host, streams } = setup();
    streams.live({ topic: 'other', payload: '"x:9"', offset: 9, epoch: 'x' });
    streams.live({ topic: TOPIC, payload: '"no history"' });
    assert.deepEqual(host.delivered, [[9, 'x'], [undefined, undefined]]);
    assert.equal(streams.follows(TOPIC), true);
    assert.equal(streams.follows('other'), false);
  });

  it('a gap-free live stream is handed on in order; what it already handed on is dropped', () => {
    const { host, streams } = setup();
    for (const offset of [1, 2, 3, 2, 3, 4]) streams.live(host.publication(offset));
    assert.deepEqual(host.offsets(), [1, 2, 3, 4]);
    assert.deepEqual(host.reads, [], 'no read without a hole');
  });

  it('a hole in the live stream is filled from history, then the held publications follow, each once, in order', async () => {
    const { host, streams } = setup();
    host.publish(1, 8);
    streams.live(host.publication(1));
    streams.live(host.publication(2));
    streams.live(host.publication(5)); // 3 and 4 were lost on the subscriber link
    streams.live(host.publication(6));
    assert.deepEqual(host.offsets(), [1, 2], 'held while the catch-up runs');
    host.publish(9, 9);
    streams.live(host.publication(9));
    await settle();
    assert.deepEqual(host.reads, [2], 'read after the last offset handed on');
    assert.deepEqual(host.offsets(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(host.gaps, [], 'nothing was missed');
  });

  it('the catch-up waits for the subscriber link to deliver what was published before the read', async () => {
    const { host, streams } = setup();
    host.publish(1, 5);
    streams.live(host.publication(1));
    host.holdCaughtUp();
    streams.live(host.publication(3));
    await settle();
    assert.deepEqual(host.offsets(), [1], 'nothing from history before the link is caught up');
    streams.live(host.publication(4));
    host.release();
    await settle();
    assert.deepEqual(host.offsets(), [1, 2, 3, 4, 5]);
  });

  it('a new epoch starting at offset 1 is taken as it comes; one whose first offsets are missing is caught up', async () => {
    const { host, streams } = setup();
    host.publish(1, 2);
    streams.live(host.publication(1));
    streams.live(host.publication(2));
    host.epoch = 'e2';
    host.kept = [];
    host.latest = 0;
    host.publish(1, 1);
    streams.live(host.publication(1));
    assert.deepEqual(host.delivered.at(-1), [1, 'e2']);
    host.epoch = 'e3';
    host.kept = [];
    host.latest = 0;
    host.publish(1, 3);
    streams.live(host.publication(3)); // the new epoch's 1 and 2 never arrived here
    await settle();
    assert.deepEqual(host.delivered.slice(3), [[1, 'e3'], [2, 'e3'], [3, 'e3']]);
    assert.deepEqual(host.gaps, ['epoch_changed'], 'the old epoch\'s tail is gone: subscribers are told');
    assert.deepEqual(host.reads, [1, undefined], 'read after the old position, then the new epoch from its start');
  });

  it('more missed than the store keeps: a too_far_behind gap, then what is kept', async () => {
    const { host, streams } = setup();
    host.publish(1, 2);
    streams.live(host.publication(1));
    host.kept = [6, 7, 8]; // 2..5 trimmed by the rule's size
    host.latest = 8;
    streams.live(host.publication(8));
    await settle();
    assert.deepEqual(host.gaps, ['too_far_behind']);
    assert.deepEqual(host.offsets(), [1, 6, 7, 8]);
  });

  it('a store that fails for a while is retried; no gap when it answers in time', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { host, streams } = setup();
    host.publish(1, 4);
    streams.live(host.publication(1));
    host.failReads = 3;
    streams.live(host.publication(4));
    for (let i = 0; i < 5; i++) {
      await settle();
      mock.timers.tick(200);
    }
    await settle();
    assert.deepEqual(host.reads, [1, 1, 1, 1], 'three failures, then the read that answers');
    assert.deepEqual(host.offsets(), [1, 2, 3, 4]);
    assert.deepEqual(host.gaps, []);
  });

  it('a store that does not answer for 10 s: an unavailable gap, then the stream starts afresh from what arrives', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { host, streams } = setup();
    host.publish(1, 1);
    streams.live(host.publication(1));
    host.failReads = Infinity;
    streams.live(host.publication(3));
    streams.live(host.publication(4));
    for (let i = 0; i < 60 && host.gaps.length === 0; i++) {
      await settle();
      mock.timers.tick(200);
    }
    await settle();
    assert.deepEqual(host.gaps, ['unavailable']);
    assert.ok(host.reads.length >= 40 && host.reads.length <= 51, `retried every 200 ms for 10 s (${host.reads.length} reads)`);
    assert.deepEqual(host.warnings, ['catch-up from history failed: subscribers told of a gap']);
    assert.deepEqual(host.offsets(), [1, 3, 4], 'the held publications go on, from a fresh start');
    streams.live(host.publication(5));
    assert.deepEqual(host.offsets(), [1, 3, 4, 5]);
  });

  it('after an interruption of the subscriber link, every carried topic is caught up', async () => {
    const host = new FakeHost();
    const streams = new LiveStreams(host);
    streams.open(TOPIC);
    streams.open('h:not-carried');
    streams.open('h:fresh'); // followed, but nothing arrived yet: no position to catch up from
    host.publish(1, 6);
    streams.live(host.publication(1));
    streams.live(host.publication(2));
    streams.resumed((topic) => topic !== 'h:not-carried');
    await settle();
    assert.deepEqual(host.reads, [2], 'one read: the carried topic with a position');
    assert.deepEqual(host.offsets(), [1, 2, 3, 4, 5, 6]);
    streams.live(host.publication(5));
    streams.live(host.publication(7));
    assert.deepEqual(host.offsets(), [1, 2, 3, 4, 5, 6, 7], 'the stream stands at 6 afterwards');
  });

  it('an interruption during a catch-up runs another round once it ends', async () => {
    const { host, streams } = setup();
    host.publish(1, 3);
    streams.live(host.publication(1));
    host.holdCaughtUp();
    streams.live(host.publication(3));
    await settle();
    host.publish(4, 6); // published while the link was down again
    streams.resumed(null);
    host.release();
    await settle();
    assert.deepEqual(host.offsets(), [1, 2, 3, 4, 5, 6]);
    assert.equal(host.reads.length, 2, 'a second round read what the second interruption hid');
  });

  it('settle: a stream that saw nothing takes the subscriber\'s position, so that the next hole is caught up', async () => {
    const { host, streams } = setup();
    host.publish(1, 12);
    assert.equal(streams.settle(TOPIC, { offset: 10, epoch: 'e1' }), undefined, 'nothing to wait for');
    streams.live(host.publication(12)); // 11 was published before the link resubscribed: it never arrives live
    await settle();
    assert.deepEqual(host.reads, [10]);
    assert.deepEqual(host.offsets(), [11, 12]);
  });

  it('settle at {0, ""} (the topic had no publication when read): its first epoch, caught up from its start, is no epoch change', async () => {
    const { host, streams } = setup();
    assert.equal(streams.settle(TOPIC, { offset: 0, epoch: '' }), undefined, 'nothing to wait for');
    host.publish(1, 3);
    streams.live(host.publication(3)); // 1 and 2 were published before the link carried the topic here
    await settle();
    assert.deepEqual(host.reads, [0], 'read from the start, once');
    assert.deepEqual(host.delivered, [[1, 'e1'], [2, 'e1'], [3, 'e1']]);
    assert.deepEqual(host.gaps, [], 'nothing was lost: no epoch_changed gap');
  });

  it('settle: a stream at or past the position resolves at once; one behind it is caught up first', async () => {
    const { host, streams } = setup();
    host.publish(1, 8);
    streams.live(host.publication(1));
    streams.live(host.publication(2));
    assert.equal(streams.settle(TOPIC, { offset: 2, epoch: 'e1' }), undefined);
    assert.equal(streams.settle(TOPIC, { offset: 1, epoch: 'e1' }), undefined);
    const waiting = streams.settle(TOPIC, { offset: 5, epoch: 'e1' });
    assert.ok(waiting, 'behind: wait');
    await waiting;
    assert.deepEqual(host.offsets(), [1, 2, 3, 4, 5, 6, 7, 8], 'resolved once the stream stands past the position');
    assert.equal(streams.settle('h:unknown', { offset: 1, epoch: 'e1' }), undefined, 'a topic not followed: nothing to wait for');
  });

  it('settle during a catch-up waits for it to end', async () => {
    const { host, streams } = setup();
    host.publish(1, 4);
    streams.live(host.publication(1));
    host.holdCaughtUp();
    streams.live(host.publication(4));
    let settled = false;
    const waiting = streams.settle(TOPIC, { offset: 1, epoch: 'e1' })!.then(() => (settled = true));
    await settle();
    assert.equal(settled, false);
    host.release();
    await waiting;
    assert.deepEqual(host.offsets(), [1, 2, 3, 4]);
  });

  it('the last subscriber leaving during a catch-up wakes the waiters and drops the held publications', async () => {
    const { host, streams } = setup();
    host.publish(1, 4);
    streams.live(host.publication(1));
    host.holdCaughtUp();
    streams.live(host.publication(4));
    const waiting = streams.settle(TOPIC, { offset: 1, epoch: 'e1' });
    await settle();
    streams.close(TOPIC);
    await waiting;
    host.release();
    await settle();
    assert.deepEqual(host.offsets(), [1], 'nothing handed on for a topic nobody follows here');
    assert.equal(streams.follows(TOPIC), false);
    streams.close(TOPIC); // twice is nothing
  });
});
