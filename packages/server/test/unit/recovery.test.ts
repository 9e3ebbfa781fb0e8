import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { Publication } from '../../src/broker/broker.js';
import { validateConfig, type HeraldConfigInput } from '../../src/config.js';
import { HeraldError } from '../../src/errors.js';
import { LiveStreams } from '../../src/history/catch-up.js';
import { MemoryHistory, type HistoryRead, type HistoryStore, type Position } from '../../src/history/history.js';
import { LatestValues } from '../../src/history/latest.js';
import { merge, mergeCached, Recovery, type RecoveryResult } from '../../src/history/recovery.js';
import { Hub } from '../../src/hub/hub.js';
import type { Logger } from '../../src/log.js';
import type { StreamPosition } from '../../src/herald.js';
import { FakeBroker } from '../helpers/fake-broker.js';
import { FakeSharedStore } from '../helpers/fake-history.js';
import { fakeSession, FakeSessionHost, RecordingCodec } from '../helpers/fake-session.js';
import { decodeTextFrames } from '../helpers/fake-transport.js';

const T = 'h:room';

describe('merge (pure)', () => {
  const read = (offsets: number[], position: Position, oldest = offsets[0] ?? position.offset + 1): HistoryRead => ({
    entries: offsets.map((offset) => ({ offset, payload: `${offset}`, time: 0 })),
    position,
    oldest,
  });
  const live = (offset: number | undefined, epoch: string | undefined = 'e'): Publication => ({ topic: T, payload: `${offset}`, offset, epoch });
  const offsets = (publications: Publication[]): Array<number | undefined> => publications.map((p) => p.offset);

  it('recovered: the read entries, then the held ones the read did not cover, each once', () => {
    const { result, publications } = merge(T, { offset: 2, epoch: 'e' }, read([3, 4, 5], { offset: 5, epoch: 'e' }), [live(4), live(5), live(6), live(7)]);
    assert.deepEqual(result, { recovered: true, offset: 5, epoch: 'e' });
    assert.deepEqual(offsets(publications), [3, 4, 5, 6, 7]);
    assert.deepEqual(publications[0], { topic: T, payload: '3', offset: 3, epoch: 'e' }, 'replayed entries carry the topic and the read epoch');
  });

  it('held publications without an offset, or of another epoch, are never taken as covered', () => {
    const { publications } = merge(T, { offset: 1, epoch: 'e' }, read([2], { offset: 2, epoch: 'e' }), [{ topic: T, payload: 'raw' }, live(1, 'other'), live(2)]);
    assert.deepEqual(publications.map((p) => [p.offset, p.epoch]), [
      [2, 'e'],
      [undefined, undefined],
      [1, 'other'],
    ]);
  });

  it('LHTTP entries keep their LHTTP message; others have no lhttp field', () => {
    const lhttp = { text: 'LHTTP/1.0 publish\r\n\r\nx', command: 'publish', headers: [] as Array<[string, string]> };
    const withLhttp: HistoryRead = { entries: [{ offset: 1, payload: '"x"', lhttp, time: 0 }, { offset: 2, payload: '"y"', time: 0 }], position: { offset: 2, epoch: 'e' }, oldest: 1 };
    const { publications } = merge(T, { offset: 0, epoch: 'e' }, withLhttp, []);
    assert.equal(publications[0]!.lhttp, lhttp);
    assert.ok(!('lhttp' in publications[1]!));
  });

  it("epoch_changed when the client's epoch is not the topic's: only the held live publications follow", () => {
    const { result, publications } = merge(T, { offset: 2, epoch: 'old' }, read([3, 4], { offset: 4, epoch: 'e' }), [live(4), live(5)]);
    assert.deepEqual(result, { recovered: false, reason: 'epoch_changed', offset: 4, epoch: 'e' });
    assert.deepEqual(offsets(publications), [5]);
  });

  it('epoch_changed when the client is ahead of the topic (an offset this epoch never had)', () => {
    const { result, publications } = merge(T, { offset: 9, epoch: 'e' }, read([], { offset: 4, epoch: 'e' }), []);
    assert.deepEqual(result, { recovered: false, reason: 'epoch_changed', offset: 4, epoch: 'e' });
    assert.deepEqual(publications, []);
  });

  it('offset 0 with no epoch ("seen nothing") continues any epoch from its start', () => {
    const { result, publications } = merge(T, { offset: 0, epoch: '' }, read([1, 2], { offset: 2, epoch: 'e' }), []);
    assert.deepEqual(result, { recovered: true, offset: 2, epoch: 'e' });
    assert.deepEqual(offsets(publications), [1, 2]);
  });

  it('too_far_behind when the oldest kept entry is after the next offset the client needs; exactly the next one recovers', () => {
    const gone = merge(T, { offset: 2, epoch: 'e' }, read([4, 5], { offset: 5, epoch: 'e' }), [live(6)]);
    assert.deepEqual(gone.result, { recovered: false, reason: 'too_far_behind', offset: 5, epoch: 'e' });
    assert.deepEqual(offsets(gone.publications), [6]);
    const edge = merge(T, { offset: 3, epoch: 'e' }, read([4, 5], { offset: 5, epoch: 'e' }), []);
    assert.deepEqual(edge.result, { recovered: true, offset: 5, epoch: 'e' });
    assert.deepEqual(offsets(edge.publications), [4, 5]);
  });

  it('a client already at the latest position recovers nothing, and gets only what is newer', () => {
    const { result, publications } = merge(T, { offset: 5, epoch: 'e' }, read([], { offset: 5, epoch: 'e' }), [live(5), live(6)]);
    assert.deepEqual(result, { recovered: true, offset: 5, epoch: 'e' });
    assert.deepEqual(offsets(publications), [6]);
  });
});

describe('mergeCached (pure): cache mode', () => {
  const at = { offset: 9, epoch: 'e' };
  const latest: Publication = { topic: T, payload: '9', offset: 9, epoch: 'e' };
  const live = (offset: number): Publication => ({ topic: T, payload: `${offset}`, offset, epoch: 'e' });
  const offsets = (publications: Publication[]): Array<number | undefined> => publications.map((p) => p.offset);

  it('without since: the position, then the latest value; nothing when nothing was published', () => {
    assert.deepEqual(mergeCached(undefined, latest, at, []), { result: { offset: 9, epoch: 'e' }, publications: [latest] });
    assert.deepEqual(mergeCached(undefined, undefined, { offset: 0, epoch: '' }, []), { result: { offset: 0, epoch: '' }, publications: [] });
  });

  it('with since behind: only the latest, however many were missed, and recovered', () => {
    const { result, publications } = mergeCached({ offset: 2, epoch: 'e' }, latest, at, []);
    assert.deepEqual(result, { recovered: true, offset: 9, epoch: 'e' });
    assert.deepEqual(offsets(publications), [9]);
  });

  it('with since at the latest: nothing to send, recovered', () => {
    assert.deepEqual(mergeCached({ offset: 9, epoch: 'e' }, latest, at, []), { result: { recovered: true, offset: 9, epoch: 'e' }, publications: [] });
  });

  it('with a lost epoch: the latest value all the same, recovered; epoch_changed only when there is no value to give', () => {
    assert.deepEqual(offsets(mergeCached({ offset: 4, epoch: 'old' }, latest, at, []).publications), [9]);
    assert.equal((mergeCached({ offset: 4, epoch: 'old' }, latest, at, []).result as { recovered: boolean }).recovered, true);
    assert.deepEqual(mergeCached({ offset: 4, epoch: 'old' }, undefined, at, []).result, { recovered: false, reason: 'epoch_changed', offset: 9, epoch: 'e' });
  });

  it('live publications held meanwhile follow, newer than the read; then the stored latest is not sent (the newest is among them)', () => {
    const { publications } = mergeCached(undefined, latest, at, [live(9), live(10), live(11)]);
    assert.deepEqual(offsets(publications), [10, 11]);
    assert.deepEqual(offsets(mergeCached(undefined, latest, at, [live(8), live(9)]).publications), [9], 'held ones the read covers are dropped');
  });
});

/** A logger that keeps its warnings. */
function recordingLog(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log = { warn: (_detail: unknown, message: string) => warnings.push(message), debug: () => undefined } as unknown as Logger;
  return { log, warnings };
}

/** A broker whose caughtUp is recorded (the round trip on the subscriber link). */
class CatchingUpBroker extends FakeBroker {
  readonly caughtUpTopics: string[] = [];
  /** Runs during the round trip (publications that arrive meanwhile). */
  during: (() => void) | undefined;
  caughtUp(topic: string): Promise<void> {
    this.caughtUpTopics.push(topic);
    this.during?.();
    return Promise.resolve();
  }
}

interface Answer {
  result: RecoveryResult | StreamPosition | undefined;
  frames: string[];
}

function setup(options: { history: HistoryStore; config?: HeraldConfigInput; whenCarried?: (topics: readonly string[]) => Promise<void> | undefined }) {
  const config = validateConfig(options.config ?? { history: [{ pattern: 'h:*', size: 10 }] });
  const broker = new CatchingUpBroker();
  const hub = new Hub({ onTopicOpened: () => undefined, onTopicClosed: () => undefined });
  const { log, warnings } = recordingLog();
  const live = new LiveStreams({ deliver: (p) => hub.deliver(p), read: async () => ({ entries: [], position: { offset: 0, epoch: '' }, oldest: 1 }), caughtUp: () => undefined, gap: () => undefined, warn: () => undefined });
  const recovery = new Recovery({
    config,
    history: options.history,
    broker,
    live,
    latest: new LatestValues(config.historyMaxBytes),
    log,
    whenCarried: options.whenCarried ?? (() => undefined),
    topicProblem: (topic) => (topic.includes(' ') ? 'a topic has no spaces' : null),
  });
  const host = new FakeSessionHost();
  const codec = new RecordingCodec('c');
  const { session, transport } = fakeSession({ codec, host });
  hub.add(session);
  hub.subscribe(session, T);
  const answers: Answer[] = [];
  const subscribe = (since?: Position, topic = T): void | Promise<void> =>
    recovery.subscribe(session, topic, since, (result, frames) => answers.push({ result, frames: frames.flatMap((frame) => decodeTextFrames(frame)) }));
  return { recovery, broker, hub, session, transport, host, codec, answers, subscribe, warnings, config };
}

describe('Recovery.subscribe with a store that does not publish (memory)', () => {
  it('a topic without history: no position, or history_off when a position was given; answered in the same turn', () => {
    const { subscribe, answers } = setup({ history: new MemoryHistory(1 << 20) });
    assert.equal(subscribe(undefined, 'plain'), undefined, 'not a promise: nothing to wait for');
    assert.deepEqual(answers, [], 'not subscribed to plain: nothing is answered');
  });

  it('answers history_off with since, nothing without, for a subscribed topic without a rule', () => {
    const { subscribe, answers, hub, session } = setup({ history: new MemoryHistory(1 << 20) });
    hub.subscribe(session, 'plain');
    subscribe(undefined, 'plain');
    subscribe({ offset: 1, epoch: 'x' }, 'plain');
    assert.deepEqual(answers, [
      { result: undefined, frames: [] },
      { result: { recovered: false, reason: 'history_off' }, frames: [] },
    ]);
  });

  it("without since: the topic's position, nothing follows", () => {
    const history = new MemoryHistory(1 << 20);
    const { subscribe, answers, config } = setup({ history });
    const rule = config.history[0]!;
    history.append(T, rule, '"a"', undefined);
    const at = history.append(T, rule, '"b"', undefined);
    subscribe();
    assert.deepEqual(answers, [{ result: { offset: 2, epoch: at.epoch }, frames: [] }]);
  });

  it('with since: the recovery, and the missed publications encoded by the connection\'s codec, in order', () => {
    const history = new MemoryHistory(1 << 20);
    const { subscribe, answers, config, codec } = setup({ history });
    const rule = config.history[0]!;
    let epoch = '';
    for (const text of ['"a"', '"b"', '"c"']) epoch = history.append(T, rule, text, undefined).epoch;
    subscribe({ offset: 1, epoch });
    assert.deepEqual(answers, [{ result: { recovered: true, offset: 3, epoch }, frames: [`c:pub ${T} "b" @2/${epoch}`, `c:pub ${T} "c" @3/${epoch}`] }]);
    assert.equal(codec.count('publication'), 2);
  });

  it('waits until the broker carries the topic, and answers nothing if the connection left it meanwhile', async () => {
    const history = new MemoryHistory(1 << 20);
    let carry!: () => void;
    const carried = new Promise<void>((resolve) => (carry = resolve));
    const { subscribe, answers, hub, session } = setup({ history, whenCarried: () => carried });
    const first = subscribe();
    assert.ok(first instanceof Promise);
    assert.deepEqual(answers, []);
    carry();
    await first;
    assert.equal(answers.length, 1);
    hub.unsubscribe(session, T);
    await subscribe();
    assert.equal(answers.length, 1, 'left the topic: no answer');
  });

  it('holds the publications that reach the connection while the broker confirms the subscription: each arrives once, after the reply', async () => {
    const history = new MemoryHistory(1 << 20);
    let carry!: () => void;
    const carried = new Promise<void>((resolve) => (carry = resolve));
    const { subscribe, answers, hub, host, transport, config } = setup({ history, whenCarried: () => carried });
    const rule = config.history[0]!;
    const publish = (payload: string): number => {
      const at = history.append(T, rule, payload, undefined);
      return hub.deliver({ topic: T, payload, offset: at.offset, epoch: at.epoch });
    };
    assert.equal(publish('"a"'), 1);
    host.flush();
    transport.writes.length = 0;
    const epoch = history.read(T, rule, { limit: 0 }).position.epoch;
    const recovering = subscribe({ offset: 1, epoch });
    // Published on this node while the broker (NATS) confirms the subscription.
    assert.equal(publish('"b"'), 0, 'held, not written');
    const plain = subscribe();
    assert.equal(publish('"c"'), 0, 'held, not written');
    carry();
    await Promise.all([recovering, plain]);
    host.flush();
    assert.deepEqual(transport.writes, [], 'nothing was written around the replies');
    assert.deepEqual(answers, [
      { result: { recovered: true, offset: 3, epoch }, frames: [`c:pub ${T} "b" @2/${epoch}`, `c:pub ${T} "c" @3/${epoch}`] },
      { result: { offset: 3, epoch }, frames: [] },
    ]);
    assert.equal(publish('"d"'), 1, 'released: written directly');
  });

  it('answers nothing to a connection that closed', () => {
    const { subscribe, answers, session } = setup({ history: new MemoryHistory(1 << 20) });
    session.close(1000, 'bye');
    subscribe();
    assert.deepEqual(answers, []);
  });

  it('refuses a store that is not shared but reads asynchronously (its contract is synchronous)', () => {
    const asyncLocal: HistoryStore = {
      appendPublishes: false,
      append: () => ({ offset: 1, epoch: 'e' }),
      read: async () => ({ entries: [], position: { offset: 0, epoch: 'e' }, oldest: 1 }),
    };
    const { subscribe } = setup({ history: asyncLocal });
    assert.throws(() => subscribe(), /must read synchronously/);
  });
});

describe('Recovery.subscribe with a shared store that publishes (appendPublishes)', () => {
  afterEach(() => mock.timers.reset());

  it('holds the live publications while it reads, drops those the read covers, and sends the newer ones after the reply', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 5);
    const { subscribe, answers, hub, host, transport, broker } = setup({ history: store });
    store.holdReads();
    const done = subscribe();
    // Publications arrive live while the read is under way: 4 and 5 are also in the read, 6 and 7 are not.
    for (const offset of [4, 5, 6, 7]) assert.equal(hub.deliver(store.publication(T, offset)), 0, 'held, not written');
    store.releaseReads();
    await done;
    host.flush();
    assert.deepEqual(transport.writes, [], 'nothing was written around the reply');
    assert.deepEqual(answers, [{ result: { offset: 5, epoch: 'E1' }, frames: [`c:pub ${T} "${T}#6" @6/E1`, `c:pub ${T} "${T}#7" @7/E1`] }]);
    assert.deepEqual(broker.caughtUpTopics, [T], 'the subscriber link was caught up before answering');
    assert.equal(hub.deliver(store.publication(T, 8)), 1, 'released: written directly');
  });

  it('with since: the missed entries from the store, then the held ones, each once', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 5);
    const { subscribe, answers, hub } = setup({ history: store });
    store.holdReads();
    const done = subscribe({ offset: 3, epoch: 'E1' });
    hub.deliver(store.publication(T, 5));
    hub.deliver(store.publication(T, 6));
    store.releaseReads();
    await done;
    assert.deepEqual(answers[0]!.result, { recovered: true, offset: 5, epoch: 'E1' });
    assert.deepEqual(answers[0]!.frames.map((text) => text.split(' ').at(-1)), ['@4/E1', '@5/E1', '@6/E1']);
    assert.deepEqual(store.reads.map(({ after, limit }) => [after, limit]), [[3, 10]], 'reads after since, up to the rule size');
  });

  it('reads only the position without since (limit 0)', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 2);
    const { subscribe } = setup({ history: store });
    await subscribe();
    assert.deepEqual(store.reads.map(({ after, limit }) => [after, limit]), [[undefined, 0]]);
  });

  it("fills the hole between the read position and the first held publication (the node's stream started late)", async () => {
    const store = new FakeSharedStore();
    store.seed(T, 5);
    const { subscribe, answers, hub, broker } = setup({ history: store });
    broker.during = () => {
      // 6 and 7 were published after the read, before this node's live stream began; 8 arrived live.
      store.seed(T, 3);
      hub.deliver(store.publication(T, 8));
    };
    await subscribe();
    assert.deepEqual(answers[0]!.result, { offset: 5, epoch: 'E1' });
    assert.deepEqual(answers[0]!.frames.map((text) => text.split(' ').at(-1)), ['@6/E1', '@7/E1', '@8/E1']);
    assert.deepEqual(store.reads.map(({ after, limit }) => [after, limit]), [[undefined, 0], [5, 2]]);
  });

  it('from {0, ""} (nothing was published when it read): the first epoch from its start, though the node\'s stream began later in it', async () => {
    const store = new FakeSharedStore();
    store.epoch = ''; // how the Redis store reads a topic nobody published to: {0, ""}
    const { subscribe, answers, hub, broker } = setup({ history: store });
    broker.during = () => {
      // 1 and 2 were published after the read, before this node's live stream began; 3 arrived live.
      store.epoch = 'E1';
      store.seed(T, 3);
      hub.deliver(store.publication(T, 3));
    };
    await subscribe();
    assert.deepEqual(answers[0]!.result, { offset: 0, epoch: '' });
    assert.deepEqual(answers[0]!.frames.map((text) => text.split(' ').at(-1)), ['@1/E1', '@2/E1', '@3/E1']);
    assert.deepEqual(store.reads.map(({ after, limit }) => [after, limit]), [[undefined, 0], [0, 2]]);
  });

  it('retries a store that does not answer, every 200 ms for 5 s, then answers unavailable with the held publications', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const store = new FakeSharedStore();
    store.seed(T, 3);
    store.failReads = 1000;
    const { subscribe, answers, hub, warnings, session } = setup({ history: store });
    const done = subscribe({ offset: 1, epoch: 'E1' });
    hub.deliver(store.publication(T, 4));
    for (let t = 0; t < 4800; t += 200) {
      await new Promise((resolve) => setImmediate(resolve));
      mock.timers.tick(200);
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(answers, [], 'still retrying before 5 s');
    mock.timers.tick(200);
    await done;
    assert.equal(store.reads.length, 26, 'at 0, 200, ..., 5000 ms');
    assert.deepEqual(answers, [{ result: { recovered: false, reason: 'unavailable' }, frames: [`c:pub ${T} "${T}#4" @4/E1`] }]);
    assert.deepEqual(warnings, ['history read for a subscribe failed']);
    assert.equal(session.hold(store.publication(T, 5)), false, 'the hold is released');
  });

  it('without since, an unreachable store answers no position at all', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const store = new FakeSharedStore();
    store.failReads = 1000;
    const { subscribe, answers } = setup({ history: store });
    const done = subscribe();
    for (let t = 0; t <= 5000; t += 200) {
      await new Promise((resolve) => setImmediate(resolve));
      mock.timers.tick(200);
    }
    await done;
    assert.deepEqual(answers, [{ result: undefined, frames: [] }]);
  });

  it('a read that fails once is retried after 200 ms and recovers', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const store = new FakeSharedStore();
    store.seed(T, 2);
    store.failReads = 1;
    const { subscribe, answers } = setup({ history: store });
    const done = subscribe({ offset: 1, epoch: 'E1' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(store.reads.length, 1);
    mock.timers.tick(199);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(store.reads.length, 1, 'not before 200 ms');
    mock.timers.tick(1);
    await done;
    assert.equal(store.reads.length, 2);
    assert.deepEqual(answers[0]!.result, { recovered: true, offset: 2, epoch: 'E1' });
  });

  it('a connection that left the topic during the read gets no answer, and its hold ends', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 1);
    const { subscribe, answers, hub, session } = setup({ history: store });
    store.holdReads();
    const done = subscribe();
    hub.unsubscribe(session, T);
    store.releaseReads();
    await done;
    assert.deepEqual(answers, []);
    assert.equal(session.hold(store.publication(T, 2)), false);
  });

  it('epoch_changed after a shared-store recovery: only the held live publications follow', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 3);
    const { subscribe, answers, hub } = setup({ history: store });
    store.holdReads();
    const done = subscribe({ offset: 2, epoch: 'OLD' });
    hub.deliver(store.publication(T, 3));
    hub.deliver(store.publication(T, 4));
    store.releaseReads();
    await done;
    assert.deepEqual(answers[0]!.result, { recovered: false, reason: 'epoch_changed', offset: 3, epoch: 'E1' });
    assert.deepEqual(answers[0]!.frames.map((text) => text.split(' ').at(-1)), ['@4/E1']);
  });
});

describe('Recovery.page', () => {
  it('refuses a bad topic (invalid_topic) and a topic without history (not_found)', async () => {
    const { recovery } = setup({ history: new MemoryHistory(1 << 20) });
    await assert.rejects(recovery.page('a b'), (err: HeraldError) => err.code === 'invalid_topic' && /no spaces/.test(err.message));
    await assert.rejects(recovery.page('plain'), (err: HeraldError) => err.code === 'not_found' && /no history is kept for topic plain/.test(err.message));
  });

  it('reads at most the rule size, passes reverse and since on, and maps the entries', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 15);
    const { recovery } = setup({ history: store });
    const page = await recovery.page(T, { limit: 50, reverse: true });
    assert.deepEqual(store.reads.at(-1), { topic: T, after: undefined, limit: 10, reverse: true });
    assert.deepEqual([page.topic, page.offset, page.epoch, page.publications.length], [T, 15, 'E1', 10]);
    assert.deepEqual(page.publications[0], { offset: 15, time: 1015, message: `${T}#15` }, 'the message parsed from its JSON text');
    await recovery.page(T, { since: { offset: 12, epoch: 'E1' } });
    assert.deepEqual(store.reads.at(-1), { topic: T, after: 12, limit: 10, reverse: undefined }, 'no limit: the rule size');
  });

  it('an LHTTP entry carries its command and headers as an object', async () => {
    const history = new MemoryHistory(1 << 20);
    const { recovery, config } = setup({ history });
    history.append(T, config.history[0]!, '"body"', { text: 'x', command: 'publish', headers: [['content-type', 'text/plain']] });
    const page = await recovery.page(T);
    assert.deepEqual(page.publications[0]!.lhttp, { command: 'publish', headers: { 'content-type': 'text/plain' } });
  });

  it('a since of another epoch is refused (bad_request), not answered with an empty page', async () => {
    const store = new FakeSharedStore();
    store.seed(T, 3);
    const { recovery } = setup({ history: store });
    await assert.rejects(recovery.page(T, { since: { offset: 1, epoch: 'OLD' } }), (err: HeraldError) => err.code === 'bad_request' && /epoch OLD/.test(err.message));
    await assert.rejects(recovery.page(T, { since: { offset: 9, epoch: 'E1' } }), (err: HeraldError) => err.code === 'bad_request' && /ahead/.test(err.message));
  });
});
