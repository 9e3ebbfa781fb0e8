import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { Logger } from 'pino';
import { ClusterRegistry, type NodeStats, type RegistryHost } from '../../src/cluster/registry.js';
import type { PresenceEntry } from '../../src/presence/presence.js';
import { FakeBroker } from '../helpers/fake-broker.js';

const SELF = 'node-self';
const INTERVAL = 1000;

/** A registry host that records what the registry tells it. */
class RecordingHost implements RegistryHost {
  users = new Set<string>();
  presence: Array<[string, PresenceEntry]> = [];
  readonly pushes: Array<{ uids: string[]; payload: string; raw: string | null }> = [];
  readonly changes: Array<[node: string, change: 'join' | 'leave', topic: string, entry: PresenceEntry | string]> = [];
  readonly resets: Array<[node: string, entries: Array<[string, PresenceEntry]> | null]> = [];

  stats(): NodeStats {
    return { connections: 3, users: this.users.size, topics: 2, subscriptions: 4 };
  }
  localUsers(): Iterable<string> {
    return this.users;
  }
  deliverPush(uids: string[], payload: string, raw: string | null): void {
    this.pushes.push({ uids, payload, raw });
  }
  localPresence(): Iterable<[string, PresenceEntry]> {
    return this.presence;
  }
  remotePresence(node: string, change: 'join' | 'leave', topic: string, entry: PresenceEntry | string): void {
    this.changes.push([node, change, topic, entry]);
  }
  remotePresenceReset(node: string, entries: Array<[string, PresenceEntry]> | null): void {
    this.resets.push([node, entries]);
  }
}

/** A logger that keeps its warnings (the registry only warns and debugs). */
function recordingLog(): { log: Logger; warnings: Array<{ detail: unknown; message: string }> } {
  const warnings: Array<{ detail: unknown; message: string }> = [];
  const log = { warn: (detail: unknown, message: string) => warnings.push({ detail, message }), debug: () => undefined } as unknown as Logger;
  return { log, warnings };
}

function setup() {
  const broker = new FakeBroker();
  const host = new RecordingHost();
  const { log, warnings } = recordingLog();
  const registry = new ClusterRegistry(SELF, broker, host, INTERVAL, log);
  /** Another node's control message, as the broker hands it over. */
  const control = (message: object): void => registry.onControl(JSON.stringify(message));
  /** The snapshot requests this node sent to `node`. */
  const wants = (node: string) => broker.broadcastsOf<{ node: string; from: string }>('want').filter((want) => want.from === node && want.node === SELF);
  return { broker, host, registry, control, wants, warnings };
}

/** One turn of the event loop: the registry sends its deltas in the check phase. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const snap = (node: string, seq: number, users: string[], presence: Array<[string, PresenceEntry]> = [], part = 0, last = true) => ({ t: 'snap', node, seq, part, last, users, presence });

describe('ClusterRegistry.onControl: what the other nodes tell this one', () => {
  it('a heartbeat from a node it has no snapshot of makes it ask that node for one', () => {
    const { control, wants, registry } = setup();
    control({ t: 'hb', node: 'b', seq: 7, stats: { connections: 1, users: 1, topics: 0, subscriptions: 0 } });
    assert.equal(wants('b').length, 1);
    assert.deepEqual(
      registry.view().map((node) => [node.id, node.self, node.connections]),
      [['b', false, 1], [SELF, true, 3]],
      'the node is in the view with the stats of its heartbeat, sorted by id',
    );
  });

  it('a snapshot replaces what it knew of the node; a heartbeat at the same sequence asks for nothing', () => {
    const { control, wants, registry, host } = setup();
    control(snap('b', 5, ['u1', 'u2']));
    assert.deepEqual([registry.nodesHolding('u1'), registry.nodesHolding('u2')], [['b'], ['b']]);
    control(snap('b', 6, ['u2', 'u3'], [['room', { conn: 'c1', uid: 'u3' }]]));
    assert.deepEqual(registry.nodesHolding('u1'), [], 'u1 is not in the newer snapshot: gone');
    assert.deepEqual(registry.nodesHolding('u3'), ['b']);
    assert.deepEqual(host.resets, [['b', []], ['b', [['room', { conn: 'c1', uid: 'u3' }]]]], 'each snapshot resets the node\'s presence');
    control({ t: 'hb', node: 'b', seq: 6, stats: { connections: 0, users: 0, topics: 0, subscriptions: 0 } });
    assert.equal(wants('b').length, 0, 'in step: no snapshot asked for');
  });

  it('deltas in sequence are applied, with their presence changes', () => {
    const { control, wants, registry, host } = setup();
    control(snap('b', 1, ['u1']));
    control({ t: 'delta', node: 'b', seq: 2, add: ['u2'], del: ['u1'], pj: [['room', { conn: 'c9', uid: 'u2' }]] });
    control({ t: 'delta', node: 'b', seq: 3, add: [], del: [], pl: [['room', 'c9']] });
    assert.deepEqual(registry.nodesHolding('u1'), []);
    assert.deepEqual(registry.nodesHolding('u2'), ['b']);
    assert.deepEqual(host.changes, [
      ['b', 'join', 'room', { conn: 'c9', uid: 'u2' }],
      ['b', 'leave', 'room', 'c9'],
    ]);
    assert.equal(wants('b').length, 0);
  });

  it('a gap in the sequence is not applied: it asks for a snapshot, which then replaces the state', () => {
    const { control, wants, registry, host } = setup();
    control(snap('b', 1, ['u1']));
    control({ t: 'delta', node: 'b', seq: 3, add: ['u3'], del: [], pj: [['room', { conn: 'c3' }]] });
    assert.equal(wants('b').length, 1, 'delta 2 was lost: a snapshot is asked for');
    assert.deepEqual(registry.nodesHolding('u3'), [], 'the delta after the gap is not applied');
    assert.deepEqual(host.changes, [], 'nor its presence');
    control({ t: 'hb', node: 'b', seq: 3, stats: { connections: 0, users: 0, topics: 0, subscriptions: 0 } });
    assert.equal(wants('b').length, 2, 'a heartbeat ahead of what was applied asks again');
    control(snap('b', 4, ['u1', 'u3']));
    assert.deepEqual(registry.nodesHolding('u3'), ['b']);
    control({ t: 'delta', node: 'b', seq: 5, add: ['u5'], del: [] });
    assert.deepEqual(registry.nodesHolding('u5'), ['b'], 'in step again after the snapshot');
    assert.equal(wants('b').length, 2);
  });

  it('a delta from a node it has no snapshot of is not applied: it asks for one', () => {
    const { control, wants, registry } = setup();
    control({ t: 'delta', node: 'b', seq: 1, add: ['u1'], del: [] });
    assert.deepEqual(registry.nodesHolding('u1'), []);
    assert.equal(wants('b').length, 1);
  });

  it('a snapshot in parts counts once its last part arrived, with every part', () => {
    const { control, registry, host } = setup();
    control(snap('b', 1, ['u1'], [['t', { conn: 'c1' }]], 0, false));
    assert.deepEqual(registry.nodesHolding('u1'), [], 'not before the last part');
    assert.deepEqual(host.resets, []);
    control(snap('b', 1, ['u2'], [['t', { conn: 'c2' }]], 1, true));
    assert.deepEqual([registry.nodesHolding('u1'), registry.nodesHolding('u2')], [['b'], ['b']]);
    assert.deepEqual(host.resets, [['b', [['t', { conn: 'c1' }], ['t', { conn: 'c2' }]]]]);
  });

  it('a snapshot whose first part was lost is not taken as the node\'s whole state: it asks for another', () => {
    const { control, wants, registry, host } = setup();
    control(snap('b', 1, ['u1']));
    // Snapshot 2 came in two parts; part 0 (u2) was lost while the broker was down.
    control(snap('b', 2, ['u3'], [], 1, true));
    assert.deepEqual(registry.nodesHolding('u1'), ['b'], 'the last complete snapshot still holds');
    assert.deepEqual(registry.nodesHolding('u3'), [], 'half a snapshot is not applied');
    assert.equal(host.resets.length, 1, 'presence is not reset from half a snapshot');
    assert.equal(wants('b').length, 1, 'a new snapshot is asked for');
    control(snap('b', 3, ['u2'], [], 0, false));
    control(snap('b', 3, ['u3'], [], 1, true));
    assert.deepEqual([registry.nodesHolding('u1'), registry.nodesHolding('u2'), registry.nodesHolding('u3')], [[], ['b'], ['b']]);
  });

  it('a snapshot with a part missing in the middle is not applied either', () => {
    const { control, wants, registry } = setup();
    control(snap('b', 1, ['u1'], [], 0, false));
    control(snap('b', 1, ['u3'], [], 2, true));
    assert.deepEqual([registry.nodesHolding('u1'), registry.nodesHolding('u3')], [[], []]);
    assert.equal(wants('b').length, 1);
  });

  it('a newer snapshot that starts while another is arriving replaces it', () => {
    const { control, registry } = setup();
    control(snap('b', 1, ['old'], [], 0, false));
    control(snap('b', 2, ['new'], [], 0, true));
    assert.deepEqual([registry.nodesHolding('old'), registry.nodesHolding('new')], [[], ['b']]);
  });

  it('"bye" forgets the node, its users and its presence', () => {
    const { control, registry, host } = setup();
    control(snap('b', 1, ['u1']));
    control({ t: 'bye', node: 'b' });
    assert.deepEqual(registry.nodesHolding('u1'), []);
    assert.deepEqual(host.resets.at(-1), ['b', null]);
    assert.deepEqual(registry.view().map((node) => node.id), [SELF]);
    control({ t: 'bye', node: 'unknown' });
    assert.equal(host.resets.length, 2, 'a node it never knew is not reset');
  });

  it('ignores its own messages, text that is not JSON and JSON that is not a message', () => {
    const { control, registry, broker } = setup();
    control({ t: 'hb', node: SELF, seq: 99, stats: {} });
    control(snap(SELF, 1, ['me']));
    for (const text of ['not json', 'null', '42', '"text"', '{"t":"unknown","node":"b"}']) registry.onControl(text);
    assert.deepEqual(registry.nodesHolding('me'), []);
    assert.deepEqual(broker.broadcasts, [], 'nothing asked for, nothing answered');
    assert.deepEqual(registry.view().map((node) => node.id), [SELF], 'no node learnt');
  });

  it('a push forwarded by another node is delivered here', () => {
    const { control, host } = setup();
    control({ t: 'push', node: 'b', uids: ['u1', 'u2'], payload: '{"a":1}', raw: null });
    assert.deepEqual(host.pushes, [{ uids: ['u1', 'u2'], payload: '{"a":1}', raw: null }]);
  });

  it('"want" addressed to this node sends a snapshot of its users and presence, with a new sequence', () => {
    const { control, broker, host, registry } = setup();
    host.users = new Set(['u1', 'u2']);
    host.presence = [['room', { conn: 'c1', uid: 'u1' }]];
    control({ t: 'want', node: 'b', from: 'c' });
    assert.deepEqual(broker.broadcastsOf('snap'), [], 'a request to another node is not answered here');
    control({ t: 'want', node: 'b', from: SELF });
    assert.deepEqual(broker.broadcastsOf('snap'), [{ t: 'snap', node: SELF, inc: registry.incarnation, seq: 1, part: 0, last: true, users: ['u1', 'u2'], presence: [['room', { conn: 'c1', uid: 'u1' }]] }]);
    control({ t: 'want', node: 'c', from: SELF });
    assert.equal(broker.broadcastsOf<{ seq: number }>('snap')[1]!.seq, 2);
  });
});

describe('ClusterRegistry: what this node tells the others', () => {
  it('users coming and going in one turn are one delta; one that comes and goes at once is none', async () => {
    const { registry, broker } = setup();
    registry.userOnline('u1');
    registry.userOnline('u2');
    registry.userOffline('u2');
    registry.presenceJoin('room', { conn: 'c1', uid: 'u1' });
    assert.deepEqual(broker.broadcastsOf('delta'), [], 'nothing before the turn ends');
    await turn();
    assert.deepEqual(broker.broadcastsOf('delta'), [{ t: 'delta', node: SELF, inc: registry.incarnation, seq: 1, add: ['u1'], del: [], pj: [['room', { conn: 'c1', uid: 'u1' }]] }]);
    registry.userOffline('u1');
    registry.presenceLeave('room', 'c1');
    await turn();
    assert.deepEqual(broker.broadcastsOf('delta')[1], { t: 'delta', node: SELF, inc: registry.incarnation, seq: 2, add: [], del: ['u1'], pl: [['room', 'c1']] });
    registry.userOnline('u3');
    registry.userOffline('u3');
    await turn();
    assert.equal(broker.broadcastsOf('delta').length, 2, 'u3 came and went within the turn: no delta, no sequence number used');
  });

  it('a snapshot takes in the pending deltas: they are not sent after it', async () => {
    const { registry, broker, host } = setup();
    host.users = new Set(['u1']);
    registry.userOnline('u1');
    registry.announce();
    await turn();
    assert.deepEqual(broker.broadcastsOf('delta'), []);
    assert.equal(broker.broadcastsOf('snap').length, 1);
    assert.deepEqual(broker.broadcastsOf('hb'), [{ t: 'hb', node: SELF, inc: registry.incarnation, seq: 1, stats: host.stats(), ready: false }], 'the heartbeat carries the snapshot\'s sequence');
  });

  it('a large snapshot goes in parts of at most 5000 users, the last one marked', () => {
    const { registry, broker, host } = setup();
    host.users = new Set(Array.from({ length: 12_001 }, (_, i) => `u${i}`));
    registry.announce();
    const parts = broker.broadcastsOf<{ part: number; last: boolean; seq: number; users: string[] }>('snap');
    assert.deepEqual(parts.map((part) => [part.part, part.last, part.users.length]), [[0, false, 5000], [1, false, 5000], [2, true, 2001]]);
    assert.equal(new Set(parts.map((part) => part.seq)).size, 1, 'one sequence number for every part');
    assert.equal(new Set(parts.flatMap((part) => part.users)).size, 12_001);
  });

  it('another registry rebuilds this node\'s users from its snapshot and deltas', async () => {
    const a = setup();
    const b = setup();
    const other = new ClusterRegistry('node-a', a.broker, a.host, INTERVAL, recordingLog().log);
    a.host.users = new Set(['x', 'y']);
    other.announce();
    other.userOnline('z');
    other.userOffline('x');
    await turn();
    for (const message of a.broker.broadcasts) b.registry.onControl(JSON.stringify(message));
    assert.deepEqual(['x', 'y', 'z'].map((uid) => b.registry.nodesHolding(uid).length), [0, 1, 1]);
    assert.equal(b.wants('node-a').length, 0, 'in step: nothing asked for');
  });

  it('forwards a push only to the nodes holding its users, one message per node', async () => {
    const { registry, control, broker } = setup();
    control(snap('b', 1, ['u1', 'u2']));
    control(snap('c', 1, ['u2']));
    assert.equal(await registry.forwardPush(['u1', 'u2', 'nobody'], '"hi"', null), 2);
    assert.deepEqual(
      broker.sent.sort((x, y) => x.node.localeCompare(y.node)),
      [
        { node: 'b', message: { t: 'push', node: SELF, uids: ['u1', 'u2'], payload: '"hi"', raw: null } },
        { node: 'c', message: { t: 'push', node: SELF, uids: ['u2'], payload: '"hi"', raw: null } },
      ],
    );
    assert.equal(await registry.forwardPush(['nobody'], '"hi"', null), 0);
    assert.equal(broker.sent.length, 2);
  });

  it('a broker that cannot send loses the control message without throwing', async () => {
    const { registry, broker } = setup();
    broker.failWith = new Error('down');
    registry.announce();
    registry.userOnline('u1');
    await turn();
    await registry.stop();
    assert.deepEqual(broker.broadcasts, []);
  });
});

describe('ClusterRegistry heartbeats (mock timers)', () => {
  afterEach(() => mock.timers.reset());

  it('sends a heartbeat every interval, and forgets a node silent for three of them', () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const { registry, control, broker, host, warnings } = setup();
    registry.start();
    control(snap('quiet', 1, ['q1']));
    control(snap('alive', 1, ['a1']));
    for (let i = 1; i <= 2; i++) {
      mock.timers.tick(INTERVAL);
      control({ t: 'hb', node: 'alive', seq: 1, stats: { connections: 0, users: 1, topics: 0, subscriptions: 0 } });
    }
    assert.equal(broker.broadcastsOf('hb').length, 2, 'one heartbeat per interval');
    assert.deepEqual(registry.nodesHolding('q1'), ['quiet'], 'two intervals of silence: still known');
    for (let i = 3; i <= 4; i++) {
      mock.timers.tick(INTERVAL);
      control({ t: 'hb', node: 'alive', seq: 1, stats: { connections: 0, users: 1, topics: 0, subscriptions: 0 } });
    }
    assert.deepEqual(registry.nodesHolding('q1'), [], 'four intervals of silence: forgotten with its users');
    assert.deepEqual(host.resets.at(-1), ['quiet', null], 'and its presence');
    assert.deepEqual(warnings.map((w) => w.detail), [{ node: 'quiet' }]);
    assert.deepEqual(registry.nodesHolding('a1'), ['alive'], 'a node that keeps beating is kept');
    void registry.stop();
    mock.timers.tick(10 * INTERVAL);
    assert.equal(broker.broadcastsOf('hb').length, 4, 'no heartbeat after stop');
    assert.deepEqual(broker.broadcastsOf('bye'), [{ t: 'bye', node: SELF, inc: registry.incarnation }]);
  });
});

/** A host that also records what lifecycle events are told of the other nodes (remoteUsers, remoteTopics, remoteGone). */
class EventsHost extends RecordingHost {
  topics: string[] = [];
  readonly told: unknown[] = [];
  localTopics(): Iterable<string> {
    return this.topics;
  }
  remoteUsers(node: string, added: readonly string[], removed: readonly string[]): void {
    this.told.push(['users', node, [...added], [...removed]]);
  }
  remoteTopics(node: string, opened: readonly string[], closed: readonly string[]): void {
    this.told.push(['topics', node, [...opened], [...closed]]);
  }
  remoteGone(node: string, crashed: boolean): void {
    this.told.push(['gone', node, crashed]);
  }
  readyAlone(): void {
    this.told.push(['readyAlone']);
  }
}

describe('ClusterRegistry: what lifecycle events need (tracked topics, changes told, readiness)', () => {
  afterEach(() => mock.timers.reset());

  function eventsSetup() {
    const broker = new FakeBroker();
    const host = new EventsHost();
    const registry = new ClusterRegistry(SELF, broker, host, INTERVAL, recordingLog().log);
    return { broker, host, registry, control: (message: object) => registry.onControl(JSON.stringify(message)) };
  }

  it('tracked topics travel in deltas and snapshots; every change is told once the view has it, snapshot differences and a forgotten node included', () => {
    const { host, registry, control } = eventsSetup();
    control({ ...snap('b', 1, ['u1']), topics: ['room:1'] });
    assert.deepEqual(registry.topicHolders('room:1'), 1);
    control({ t: 'delta', node: 'b', seq: 2, add: ['u2', 'u1'], del: [], to: ['room:2'], tc: ['room:1'] });
    assert.deepEqual([registry.topicHolders('room:1'), registry.topicHolders('room:2')], [0, 1]);
    control({ ...snap('b', 3, ['u2', 'u3']), topics: ['room:2', 'room:3'] });
    control({ t: 'bye', node: 'b' });
    assert.deepEqual(host.told, [
      ['users', 'b', ['u1'], []],
      ['topics', 'b', ['room:1'], []],
      ['users', 'b', ['u2'], []], // u1 was already there: no change
      ['topics', 'b', ['room:2'], ['room:1']],
      ['users', 'b', ['u3'], ['u1']],
      ['topics', 'b', ['room:3'], []],
      ['gone', 'b', false],
      ['users', 'b', [], ['u2', 'u3']],
      ['topics', 'b', [], ['room:2', 'room:3']],
    ]);
    assert.equal(registry.topicHolders('room:2'), 0);
  });

  it("this node's tracked topics go out in its deltas (an open and close in the same turn cancel) and in its snapshot", async () => {
    const { broker, host, registry, control } = eventsSetup();
    registry.topicOpened('room:1');
    registry.topicOpened('room:2');
    registry.topicClosed('room:2');
    await turn();
    assert.deepEqual(broker.broadcastsOf('delta'), [{ t: 'delta', node: SELF, inc: registry.incarnation, seq: 1, add: [], del: [], to: ['room:1'] }]);
    host.topics = ['room:1'];
    control({ t: 'want', node: 'b', from: SELF });
    assert.deepEqual(broker.broadcastsOf<{ topics?: string[] }>('snap')[0]!.topics, ['room:1']);
  });

  it('ready: one interval and a margin after its announce (not at one interval), with every known node synced', () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const { registry } = eventsSetup();
    registry.announce();
    registry.start();
    assert.equal(registry.readinessDelay, INTERVAL + 100);
    mock.timers.tick(INTERVAL);
    assert.equal(registry.ready, false, 'one interval: not yet');
    mock.timers.tick(100);
    assert.equal(registry.ready, true, 'one interval and the margin');
  });

  it('becoming a candidate while no other node is one tells the host (readyAlone: the catch-up); not when another ready node is known', () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const alone = eventsSetup();
    alone.registry.announce();
    alone.registry.start();
    alone.control({ t: 'hb', node: 'b', inc: 'b1', seq: 1, stats: {}, ready: false });
    alone.control({ ...snap('b', 1, []), inc: 'b1' });
    for (let i = 0; i < 4; i++) {
      mock.timers.tick(INTERVAL);
      alone.control({ t: 'hb', node: 'b', inc: 'b1', seq: 1, stats: {}, ready: false });
    }
    assert.deepEqual(alone.host.told.filter((t) => (t as unknown[])[0] === 'readyAlone'), [['readyAlone']], 'once, when it became ready, node b not ready');
    mock.timers.reset();
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const joining = eventsSetup();
    joining.registry.announce();
    joining.registry.start();
    joining.control({ t: 'hb', node: 'b', inc: 'b1', seq: 1, stats: {}, ready: true });
    joining.control({ ...snap('b', 1, []), inc: 'b1' });
    for (let i = 0; i < 4; i++) {
      mock.timers.tick(INTERVAL);
      joining.control({ t: 'hb', node: 'b', inc: 'b1', seq: 1, stats: {}, ready: true });
    }
    assert.deepEqual(joining.registry.candidates().sort(), ['b', SELF]);
    assert.deepEqual(joining.host.told.filter((t) => (t as unknown[])[0] === 'readyAlone'), [], 'node b was emitting already');
  });

  it('a message under a known node id from another incarnation (a quick restart): the previous one is forgotten as crashed, what it held leaves, then the new one is taken', () => {
    const { host, registry, control, broker } = eventsSetup();
    control({ ...snap('c', 4, ['u1']), inc: 'old', topics: ['room:1'] });
    control({ t: 'hb', node: 'c', inc: 'old', seq: 4, stats: {}, ready: true });
    assert.deepEqual(registry.nodesHolding('u1'), ['c']);
    host.told.length = 0;
    control({ t: 'hb', node: 'c', inc: 'new', seq: 1, stats: {}, ready: false });
    assert.deepEqual(host.told, [
      ['gone', 'c', true],
      ['users', 'c', [], ['u1']],
      ['topics', 'c', [], ['room:1']],
    ]);
    assert.deepEqual(registry.nodesHolding('u1'), []);
    assert.deepEqual(registry.candidates(), [], 'the new incarnation is not ready');
    assert.ok(broker.broadcastsOf<{ from: string }>('want').some((want) => want.from === 'c'), 'and its snapshot is asked for');
    control({ ...snap('c', 1, ['u2']), inc: 'new' });
    host.told.length = 0;
    control({ t: 'hb', node: 'c', inc: 'new', seq: 1, stats: {}, ready: true });
    assert.deepEqual(host.told, [], 'the same incarnation again: nothing forgotten');
    assert.deepEqual(registry.nodesHolding('u2'), ['c']);
    control({ t: 'bye', node: 'c', inc: 'newer' });
    assert.deepEqual(host.told, [['gone', 'c', true], ['users', 'c', [], ['u2']]], 'a goodbye from yet another incarnation: the one known crashed');
  });

  it('ready: past its delay after its announce, with every known node synced, and said in a heartbeat before it counts itself; a node silent three heartbeats is gone as crashed', () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const { broker, host, registry, control } = eventsSetup();
    registry.announce();
    registry.start();
    assert.equal(registry.ready, false);
    control({ t: 'hb', node: 'b', seq: 1, stats: {}, ready: true });
    for (let i = 0; i < 3; i++) {
      mock.timers.tick(INTERVAL);
      control({ t: 'hb', node: 'b', seq: 1, stats: {}, ready: true });
    }
    assert.equal(registry.ready, false, 'node b has not sent its snapshot yet');
    assert.deepEqual(registry.candidates(), [], 'nor is it a candidate before it is synced');
    control(snap('b', 1, []));
    assert.equal(registry.ready, true);
    assert.deepEqual(registry.candidates(), ['b'], 'not itself before its heartbeat said so');
    mock.timers.tick(INTERVAL);
    assert.equal(broker.broadcastsOf<{ ready?: boolean }>('hb').at(-1)!.ready, true);
    assert.deepEqual(registry.candidates().sort(), ['b', SELF]);
    broker.state = 'down';
    assert.equal(registry.ready, false, 'a node whose broker is down is never ready');
    assert.deepEqual(registry.candidates(), ['b']);
    broker.state = 'ready';
    for (let i = 0; i < 4; i++) mock.timers.tick(INTERVAL);
    assert.deepEqual(host.told.filter((t) => (t as unknown[])[0] === 'gone'), [['gone', 'b', true]]);
  });
});
