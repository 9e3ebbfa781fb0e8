import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { continuationProblem, MemoryHistory, type HistoryRule } from '../../src/history/history.js';
import { ruleFor } from '../../src/topics.js';

const rule = (size = 100, ttl = 300_000): HistoryRule => ({ pattern: '*', size, ttl, cache: false });
/** What one entry counts against maxBytes: its text plus a fixed 64 (history.ts). */
const cost = (payload: string, lhttp = ''): number => payload.length + lhttp.length + 64;

/** Appends `count` publications `"<prefix><n>"` to `topic`. */
function fill(history: MemoryHistory, topic: string, count: number, r = rule(), prefix = 'm'): void {
  for (let n = 1; n <= count; n++) history.append(topic, r, JSON.stringify(`${prefix}${n}`), undefined);
}

const payloads = (read: { entries: Array<{ payload: string }> }): string[] => read.entries.map((entry) => JSON.parse(entry.payload) as string);

describe('MemoryHistory', () => {
  afterEach(() => mock.timers.reset());

  it('gives each publication of a topic the next offset from 1, per topic, in one epoch', () => {
    const history = new MemoryHistory(1 << 20);
    const a = [1, 2, 3].map(() => history.append('a', rule(), '1', undefined));
    const b = history.append('b', rule(), '1', undefined);
    assert.deepEqual(a.map((p) => p.offset), [1, 2, 3]);
    assert.equal(b.offset, 1, 'offsets are per topic');
    assert.equal(new Set(a.map((p) => p.epoch)).size, 1, 'one epoch per topic');
    assert.notEqual(a[0]!.epoch, b.epoch, 'topics have their own epochs');
    assert.match(a[0]!.epoch, /^[0-9a-f]{12}$/);
  });

  it('a topic reads with the same epoch before and after its first publication, and reading keeps nothing', () => {
    const history = new MemoryHistory(1 << 20);
    const before = history.read('t', rule(), { limit: 10 });
    assert.deepEqual(before.entries, []);
    assert.equal(before.position.offset, 0);
    assert.equal(before.oldest, 1, 'nothing kept: oldest is position + 1');
    assert.equal((history as unknown as { topics: Map<string, unknown> }).topics.size, 0, 'a read creates no topic');
    const first = history.append('t', rule(), '"x"', undefined);
    assert.equal(first.epoch, before.position.epoch, 'a reader told offset 0 can recover from there');
  });

  it('another process (another store) gives the same topic another epoch', () => {
    const one = new MemoryHistory(1 << 20).append('t', rule(), '1', undefined);
    const two = new MemoryHistory(1 << 20).append('t', rule(), '1', undefined);
    assert.equal(one.offset, two.offset);
    assert.notEqual(one.epoch, two.epoch, 'a restart is a new epoch: old positions are never mistaken for current ones');
  });

  it('reads oldest first after an offset, at most limit; reverse reads the newest limit, newest first', () => {
    const history = new MemoryHistory(1 << 20);
    fill(history, 't', 10);
    assert.deepEqual(payloads(history.read('t', rule(), { limit: 3 })), ['m1', 'm2', 'm3']);
    assert.deepEqual(payloads(history.read('t', rule(), { after: 7, limit: 10 })), ['m8', 'm9', 'm10']);
    assert.deepEqual(payloads(history.read('t', rule(), { after: 4, limit: 2 })), ['m5', 'm6']);
    assert.deepEqual(payloads(history.read('t', rule(), { after: 10, limit: 5 })), [], 'nothing after the latest');
    assert.deepEqual(payloads(history.read('t', rule(), { after: 0, limit: 2 })), ['m1', 'm2']);
    assert.deepEqual(payloads(history.read('t', rule(), { limit: 3, reverse: true })), ['m10', 'm9', 'm8']);
    assert.deepEqual(payloads(history.read('t', rule(), { after: 8, limit: 5, reverse: true })), ['m10', 'm9'], 'reverse after an offset: the newest of those after it');
    const read = history.read('t', rule(), { limit: 1 });
    assert.deepEqual([read.position.offset, read.oldest], [10, 1]);
    assert.deepEqual(
      history.read('t', rule(), { after: 2, limit: 3 }).entries.map((entry) => entry.offset),
      [3, 4, 5],
      'entries carry their offsets',
    );
  });

  it('keeps the rule\'s size per topic: the oldest go first, offsets go on', () => {
    const history = new MemoryHistory(1 << 20);
    const small = rule(3);
    fill(history, 't', 5, small);
    const read = history.read('t', small, { limit: 10 });
    assert.deepEqual(payloads(read), ['m3', 'm4', 'm5']);
    assert.deepEqual([read.oldest, read.position.offset], [3, 5], 'oldest tells a reader what was trimmed');
    assert.equal(history.append('t', small, '"m6"', undefined).offset, 6);
  });

  it('a smaller rule at read time trims too (a rule changed by a reload)', () => {
    const history = new MemoryHistory(1 << 20);
    fill(history, 't', 5);
    assert.deepEqual(payloads(history.read('t', rule(2), { limit: 10 })), ['m4', 'm5']);
  });

  it('drops entries older than the rule\'s ttl, on append and on read', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const history = new MemoryHistory(1 << 20);
    const short = rule(100, 1000);
    fill(history, 't', 2, short, 'old');
    mock.timers.tick(600);
    fill(history, 't', 1, short, 'mid');
    mock.timers.tick(500);
    const read = history.read('t', short, { limit: 10 });
    assert.deepEqual(payloads(read), ['mid1'], 'the first two are 1100 ms old: gone');
    assert.deepEqual([read.oldest, read.position.offset], [3, 3]);
    mock.timers.tick(1000);
    const empty = history.read('t', short, { limit: 10 });
    assert.deepEqual(empty.entries, []);
    assert.deepEqual([empty.oldest, empty.position.offset], [4, 3], 'everything expired: oldest is past the latest offset');
    assert.equal(history.append('t', short, '"new"', undefined).offset, 4, 'the topic\'s offsets survive its entries');
  });

  it('keeps all topics under maxBytes, dropping the oldest entries of the least recently published topics first', () => {
    const payload = JSON.stringify('x'.repeat(36)); // 38 characters: 102 "bytes" an entry
    const history = new MemoryHistory(cost(payload) * 5);
    for (const topic of ['a', 'b', 'a', 'c', 'a']) history.append(topic, rule(), payload, undefined);
    // Five entries fit. 'b' is now the least recently published, then 'c', then 'a'.
    history.append('d', rule(), payload, undefined);
    assert.deepEqual(history.read('b', rule(), { limit: 10 }).entries, [], 'b went first');
    assert.equal(history.read('a', rule(), { limit: 10 }).entries.length, 3);
    history.append('d', rule(), payload, undefined);
    assert.deepEqual(history.read('c', rule(), { limit: 10 }).entries, [], 'then c');
    history.append('d', rule(), payload, undefined);
    assert.deepEqual(history.read('a', rule(), { limit: 10 }).entries.map((entry) => entry.offset), [2, 3], 'then the oldest of a');
    assert.equal(history.read('b', rule(), { limit: 1 }).position.offset, 1, 'an emptied topic keeps its position');
  });

  it('counts the LHTTP text of a publication against maxBytes', () => {
    const lhttp = { text: 'LHTTP/1.0 publish\r\n\r\n' + 'y'.repeat(100), command: 'publish', headers: [] };
    const history = new MemoryHistory(cost('"b"', lhttp.text) + cost('"c"') - 1);
    history.append('t', rule(), '"a"', undefined);
    history.append('t', rule(), '"b"', lhttp);
    assert.deepEqual(history.read('t', rule(), { limit: 10 }).entries.map((entry) => entry.offset), [2], 'with its LHTTP text, b leaves room for no other');
    assert.deepEqual(history.read('t', rule(), { limit: 10 }).entries[0]!.lhttp, lhttp, 'the LHTTP publication is kept as given');
  });

  it('a publication bigger than maxBytes is not kept, but still gets its offset', () => {
    const history = new MemoryHistory(100);
    const position = history.append('t', rule(), JSON.stringify('z'.repeat(200)), undefined);
    assert.equal(position.offset, 1);
    const read = history.read('t', rule(), { limit: 10 });
    assert.deepEqual(read.entries, []);
    assert.equal(read.oldest, 2);
  });

  it('entries trimmed by size or ttl give their bytes back', () => {
    const payload = '"p"';
    const history = new MemoryHistory(cost(payload) * 4);
    const one = rule(1);
    for (let i = 0; i < 10; i++) history.append('a', one, payload, undefined); // only the latest kept: one entry's bytes
    for (const topic of ['b', 'c', 'd']) history.append(topic, rule(), payload, undefined);
    assert.equal(history.read('a', one, { limit: 10 }).entries.length, 1, 'a trimmed itself to one entry: the four fit');
  });
});

describe('continuationProblem', () => {
  const current = { offset: 5, epoch: 'e1' };

  it('reading on from any offset of the current epoch up to the latest continues it', () => {
    for (const offset of [0, 1, 4, 5]) assert.equal(continuationProblem({ offset, epoch: 'e1' }, current), null, `offset ${offset}`);
  });

  it('offset 0 with no epoch ("seen nothing") continues any epoch', () => {
    assert.equal(continuationProblem({ offset: 0, epoch: '' }, current), null);
    assert.equal(continuationProblem({ offset: 0, epoch: '' }, { offset: 0, epoch: 'other' }), null);
  });

  it('another epoch is lost history', () => {
    assert.match(continuationProblem({ offset: 3, epoch: 'e0' }, current) ?? '', /epoch e0 is not the topic's current epoch \(e1\)/);
    assert.match(continuationProblem({ offset: 0, epoch: 'e0' }, current) ?? '', /not the topic's current epoch/, 'offset 0 of a named epoch is still that epoch');
    assert.notEqual(continuationProblem({ offset: 1, epoch: '' }, current), null, 'no epoch but an offset is not "seen nothing"');
  });

  it('an offset ahead of the latest is refused, never answered with an empty page', () => {
    assert.match(continuationProblem({ offset: 6, epoch: 'e1' }, current) ?? '', /offset 6 is ahead of the topic's latest offset \(5\) in epoch e1/);
  });
});

describe('ruleFor', () => {
  const rules = [
    { pattern: 'chat:vip', size: 1 },
    { pattern: 'chat:*', size: 2 },
    { pattern: '*', size: 3 },
  ];

  it('the first rule whose pattern matches: exact names, prefixes ending in *, * for all', () => {
    assert.equal(ruleFor(rules, 'chat:vip')?.size, 1);
    assert.equal(ruleFor(rules, 'chat:room')?.size, 2);
    assert.equal(ruleFor(rules, 'chat:')?.size, 2, 'the prefix alone matches');
    assert.equal(ruleFor(rules, 'news')?.size, 3);
    assert.equal(ruleFor(rules.slice(0, 2), 'chat'), undefined, 'chat does not start with chat:');
    assert.equal(ruleFor([], 'x'), undefined);
  });
});
