import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config.js';
import { HeraldError } from '../../src/errors.js';
import { Hub } from '../../src/hub/hub.js';
import type { Session } from '../../src/hub/session.js';
import type { PresenceEntry } from '../../src/presence/presence.js';
import { PresenceTracker, type PresenceShare } from '../../src/presence/tracker.js';
import { FakeSessionHost, RecordingCodec, fakeSession } from '../helpers/fake-session.js';
import type { FakeTransport } from '../helpers/fake-transport.js';

/** Where the tracker shares this node's changes: recorded as `join topic conn` / `leave topic conn`. */
class RecordingShare implements PresenceShare {
  readonly shared: string[] = [];
  presenceJoin(topic: string, entry: PresenceEntry): void {
    this.shared.push(`join ${topic} ${entry.conn}`);
  }
  presenceLeave(topic: string, conn: string): void {
    this.shared.push(`leave ${topic} ${conn}`);
  }
}

function setup() {
  const { presence: rules } = validateConfig({
    presence: [
      { pattern: 'room:quiet', joinLeave: false },
      { pattern: 'room:big', joinLeave: true, maxList: 2 },
      { pattern: 'room:*', joinLeave: true },
    ],
  });
  const share = new RecordingShare();
  const host = new FakeSessionHost();
  // The tracker is told by the gateway's hub listener; here, by hand after each hub change.
  const hub = new Hub({ onTopicOpened: () => undefined, onTopicClosed: () => undefined });
  const tracker = new PresenceTracker({ rules, hub, share, topicProblem: (topic) => (topic.length > 20 ? 'too long' : null) });
  const json = new RecordingCodec('json');
  const raw = new RecordingCodec('raw', ['presence']);
  const join = (id: string, topic: string, options: { codec?: RecordingCodec; uid?: string; info?: unknown } = {}): { session: Session; transport: FakeTransport } => {
    const made = fakeSession({ id, codec: options.codec ?? json, host });
    hub.add(made.session);
    if (options.uid !== undefined) hub.setUser(made.session, options.uid);
    if (options.info !== undefined) made.session.setIdentity({ ...made.session.identity, info: options.info });
    hub.subscribe(made.session, topic);
    tracker.changed('join', made.session, topic);
    return made;
  };
  const leave = (session: Session, topic: string): void => {
    hub.unsubscribe(session, topic);
    tracker.changed('leave', session, topic);
  };
  const told = (transport: FakeTransport): string[] => {
    host.flush();
    return transport.texts();
  };
  return { tracker, share, hub, host, json, raw, join, leave, told };
}

describe('PresenceTracker: this node', () => {
  it('a join is kept, shared, and told to the other subscribers, not to the one who joined', () => {
    const { tracker, share, join, told } = setup();
    const ann = join('c1', 'room:a', { uid: 'ann', info: { name: 'Ann' } });
    const bob = join('c2', 'room:a', { uid: 'bob' });
    assert.deepEqual(share.shared, ['join room:a c1', 'join room:a c2']);
    assert.deepEqual(told(ann.transport), ['json:join room:a c2 bob']);
    assert.deepEqual(told(bob.transport), [], 'the joiner is not told of itself');
    const view = tracker.view('room:a');
    assert.deepEqual([view.connections, view.users], [2, 2]);
    assert.deepEqual(view.list[0], { conn: 'c1', uid: 'ann', info: { name: 'Ann' } });
  });

  it('an anonymous entry has no uid or info fields at all', () => {
    const { tracker, join } = setup();
    join('c1', 'room:a');
    assert.deepEqual(tracker.view('room:a').list, [{ conn: 'c1' }]);
  });

  it('a leave is kept, shared and told to those who remain', () => {
    const { tracker, share, join, leave, told } = setup();
    const ann = join('c1', 'room:a', { uid: 'ann' });
    const bob = join('c2', 'room:a', { uid: 'bob' });
    told(ann.transport);
    leave(bob.session, 'room:a');
    assert.deepEqual(share.shared.at(-1), 'leave room:a c2');
    assert.deepEqual(told(ann.transport), ['json:join room:a c2 bob', 'json:leave room:a c2 bob']);
    assert.equal(tracker.view('room:a').connections, 1);
  });

  it('leaving where the connection was not present shares and tells nothing', () => {
    const { share, join, told, tracker, hub } = setup();
    const ann = join('c1', 'room:a');
    const stranger = fakeSession({ id: 'c9' }).session;
    hub.add(stranger);
    tracker.changed('leave', stranger, 'room:a');
    assert.deepEqual(share.shared, ['join room:a c1']);
    assert.deepEqual(told(ann.transport), []);
  });

  it('only connections whose protocol has a presence frame are told, and each protocol encodes once', () => {
    const { join, told, json, raw } = setup();
    const watchers = [join('j1', 'room:a'), join('r1', 'room:a', { codec: raw }), join('j2', 'room:a'), join('r2', 'room:a', { codec: raw })];
    json.calls.length = 0;
    raw.calls.length = 0;
    join('new', 'room:a', { uid: 'zed' });
    assert.deepEqual([json.count('presence'), raw.count('presence')], [1, 1]);
    assert.deepEqual(told(watchers[0]!.transport).at(-1), 'json:join room:a new zed');
    assert.deepEqual(told(watchers[2]!.transport).at(-1), 'json:join room:a new zed');
    assert.deepEqual(told(watchers[1]!.transport), [], 'raw has no presence frame');
    assert.deepEqual(told(watchers[3]!.transport), []);
  });

  it('without joinLeave, presence is kept and shared but nobody is told', () => {
    const { tracker, share, join, told } = setup();
    const first = join('c1', 'room:quiet');
    join('c2', 'room:quiet');
    assert.deepEqual(share.shared, ['join room:quiet c1', 'join room:quiet c2']);
    assert.deepEqual(told(first.transport), []);
    assert.equal(tracker.view('room:quiet').connections, 2, 'the first matching rule (room:quiet) wins over room:*');
  });

  it('a topic without presence keeps, shares and tells nothing', () => {
    const { share, join, told, tracker } = setup();
    const first = join('c1', 'lobby');
    join('c2', 'lobby');
    assert.deepEqual(share.shared, []);
    assert.deepEqual(told(first.transport), []);
    assert.throws(() => tracker.view('lobby'), (err: HeraldError) => err.code === 'not_found' && /no presence is kept for topic lobby/.test(err.message));
  });

  it('view refuses a topic the topic rule refuses (invalid_topic) and lists at most maxList', () => {
    const { tracker, join } = setup();
    for (const id of ['a', 'b', 'c']) join(id, 'room:big');
    assert.throws(() => tracker.view('room:' + 'x'.repeat(30)), (err: HeraldError) => err.code === 'invalid_topic' && err.message === 'too long');
    const view = tracker.view('room:big');
    assert.deepEqual([view.connections, view.list.length], [3, 2]);
  });
});

describe('PresenceTracker: other nodes', () => {
  it("another node's join is kept and told to every local subscriber; a repeat is not told again", () => {
    const { tracker, share, join, told } = setup();
    const local = join('c1', 'room:a');
    tracker.remote('n2', 'join', 'room:a', { conn: 'far', uid: 'kim' });
    tracker.remote('n2', 'join', 'room:a', { conn: 'far', uid: 'kim' });
    assert.deepEqual(told(local.transport), ['json:join room:a far kim']);
    assert.equal(tracker.view('room:a').connections, 2);
    assert.deepEqual(share.shared, ['join room:a c1'], 'not shared back');
  });

  it("another node's leave of what it never reported changes nothing", () => {
    const { tracker, join, told } = setup();
    const local = join('c1', 'room:a');
    tracker.remote('n2', 'leave', 'room:a', 'ghost');
    tracker.remote('n2', 'leave', 'room:a', 'c1');
    assert.deepEqual(told(local.transport), []);
    assert.equal(tracker.view('room:a').connections, 1, "another node cannot remove this node's entry");
  });

  it('remote changes on a topic without presence are ignored', () => {
    const { tracker } = setup();
    tracker.remote('n2', 'join', 'lobby', { conn: 'far' });
    assert.throws(() => tracker.view('lobby'));
  });

  it("a snapshot becomes joins for what is new and leaves for what is gone; what is unchanged is not told", () => {
    const { tracker, join, told } = setup();
    const local = join('c1', 'room:a');
    tracker.remote('n2', 'join', 'room:a', { conn: 'stays', uid: 's' });
    tracker.remote('n2', 'join', 'room:a', { conn: 'goes', uid: 'g' });
    const before = told(local.transport).length;
    tracker.reset('n2', [
      ['room:a', { conn: 'stays', uid: 's' }],
      ['room:a', { conn: 'new', uid: 'n' }],
    ]);
    assert.deepEqual(told(local.transport).slice(before), ['json:join room:a new n', 'json:leave room:a goes g']);
    assert.deepEqual(tracker.view('room:a').list.map((entry) => entry.conn).sort(), ['c1', 'new', 'stays']);
  });

  it('a node that is gone (no snapshot) leaves everywhere', () => {
    const { tracker, join, told } = setup();
    const a = join('c1', 'room:a');
    const b = join('c2', 'room:b');
    tracker.remote('n2', 'join', 'room:a', { conn: 'x' });
    tracker.remote('n2', 'join', 'room:b', { conn: 'y' });
    tracker.remote('n3', 'join', 'room:b', { conn: 'z' });
    tracker.reset('n2', null);
    assert.deepEqual(told(a.transport), ['json:join room:a x', 'json:leave room:a x']);
    assert.deepEqual(told(b.transport), ['json:join room:b y', 'json:join room:b z', 'json:leave room:b y']);
    assert.deepEqual([tracker.view('room:a').connections, tracker.view('room:b').connections], [1, 2], "n3's entry stays");
  });
});
