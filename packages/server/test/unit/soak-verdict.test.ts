import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DELIVERY_MARGIN_MS, judgePeriod, judgeStream, RESUME_ALLOWANCE_MS, type Ack, type Emission, type Fault, type Period } from '../helpers/soak-verdict.js';

/** The soak's judgements catch what the review found them blind to (issue #13 review: soak blind spots). */
const ack = (seq: number, answered: number, node = 'a', offset?: number): Ack => ({ topic: 't', seq, sent: answered - 5, answered, node, ...(offset === undefined ? {} : { offset, epoch: 'e' }) });
const period = (from: number, to: number, received: number[], gaps: number[] = []): Period => {
  const copies = new Map<number, number>();
  for (const seq of received) copies.set(seq, (copies.get(seq) ?? 0) + 1);
  return { from, to, gaps, received: copies };
};
const fault = (from: number, to: number): Fault => ({ scope: 'redis', label: 'cut', from, to });
const emit = (offsets: number[], seqs = offsets): Emission[] => offsets.map((offset, i) => ({ offset, epoch: 'e', seq: seqs[i]!, at: i, connection: 0 }));

describe('soak verdict: topics without shared history', () => {
  it('counts a copy received twice', () => {
    assert.equal(judgePeriod(period(0, 100_000, [1, 2, 2, 3]), [ack(1, 10), ack(2, 20), ack(3, 30)], [], 'redis').duplicates, 1);
  });

  it('a loss just before the subscription ended counts, once it was acknowledged DELIVERY_MARGIN_MS before the end', () => {
    const acks = [ack(1, 10), ack(2, 20), ack(3, 5000)];
    const owed = judgePeriod(period(0, 5000 + DELIVERY_MARGIN_MS, [1, 2]), acks, [], 'redis');
    assert.deepEqual([owed.unsignalled.map((a) => a.seq), owed.beforeEnd], [[3], 1]);
    const tooLate = judgePeriod(period(0, 5000 + DELIVERY_MARGIN_MS - 1, [1, 2]), acks, [], 'redis');
    assert.deepEqual(tooLate.unsignalled, [], 'acknowledged too close to the end: not owed');
  });

  it('a gap excuses only the losses of the fault it reports, not an earlier one', () => {
    const acks = [ack(1, 1000), ack(2, 30_000), ack(3, 31_000), ack(4, 60_000)];
    const faults = [fault(29_500, 30_500)];
    // 1 and 2 lost; a gap at 32 s reports the fault of 29.5 s: it covers 2, not 1 (lost 28 s before the fault).
    const verdict = judgePeriod(period(0, 100_000, [3, 4], [32_000]), acks, faults, 'redis');
    assert.deepEqual([verdict.unsignalled.map((a) => a.seq), verdict.signalled], [[1], 1]);
  });

  it('a gap long after the fault, or a fault of another broker, reports nothing', () => {
    const acks = [ack(1, 30_000), ack(2, 60_000)];
    assert.equal(judgePeriod(period(0, 100_000, [2], [30_500 + RESUME_ALLOWANCE_MS + 1]), acks, [fault(29_500, 30_500)], 'redis').unsignalled.length, 1);
    assert.equal(judgePeriod(period(0, 100_000, [2], [31_000]), acks, [{ ...fault(29_500, 30_500), scope: 'nats' }], 'redis').unsignalled.length, 1);
  });

  it('a publication sent before the subscription began is not owed', () => {
    assert.deepEqual(judgePeriod(period(1000, 100_000, [2]), [ack(1, 900), ack(2, 2000)], [], 'redis').unsignalled, []);
  });
});

describe('soak verdict: topics with history', () => {
  const acks = [1, 2, 3, 4, 5].map((offset) => ack(offset, offset * 1000, 'a', offset));

  it('a stream must start right after the position its subscribe reply reported', () => {
    const verdict = judgeStream(emit([3, 4, 5]), acks, { offset: 1, epoch: 'e' }, Infinity);
    assert.deepEqual(verdict.disorder, [{ index: 0, kind: 'late start' }]);
    assert.deepEqual(verdict.missing, [2]);
  });

  it('the same message at two offsets is a duplicate (published twice)', () => {
    assert.deepEqual(judgeStream(emit([1, 2, 3], [1, 2, 2]), acks, { offset: 0, epoch: 'e' }, Infinity).duplicates, [3]);
  });

  it('a fresh subscription that ended owes what was acknowledged DELIVERY_MARGIN_MS before its end', () => {
    assert.deepEqual(judgeStream(emit([1, 2]), acks, { offset: 0, epoch: 'e' }, 3000 + DELIVERY_MARGIN_MS).missing, [3]);
    assert.deepEqual(judgeStream(emit([1, 2]), acks, { offset: 0, epoch: 'e' }, 3000 + DELIVERY_MARGIN_MS - 1).missing, []);
  });
});
