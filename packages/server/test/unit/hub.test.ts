import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { Publication } from '../../src/broker/broker.js';
import { Hub, type TopicListener } from '../../src/hub/hub.js';
import type { Session } from '../../src/hub/session.js';
import { FakeSessionHost, RecordingCodec, fakeSession } from '../helpers/fake-session.js';
import type { FakeTransport } from '../helpers/fake-transport.js';

/** A topic listener that logs every call as `event topic-or-uid[ session]`. */
class RecordingListener implements TopicListener {
  readonly events: string[] = [];
  onTopicOpened(topic: string): void {
    this.events.push(`opened ${topic}`);
  }
  onTopicClosed(topic: string): void {
    this.events.push(`closed ${topic}`);
  }
  onSubscribed(session: Session, topic: string): void {
    this.events.push(`subscribed ${topic} ${session.id}`);
  }
  onUnsubscribed(session: Session, topic: string): void {
    this.events.push(`unsubscribed ${topic} ${session.id}`);
  }
  onUserOnline(uid: string): void {
    this.events.push(`online ${uid}`);
  }
  onUserOffline(uid: string): void {
    this.events.push(`offline ${uid}`);
  }
}

function setup() {
  const listener = new RecordingListener();
  const hub = new Hub(listener);
  const host = new FakeSessionHost();
  /** A session added to the hub, open unless said otherwise. */
  const join = (id: string, codec = new RecordingCodec('c'), open = true): { session: Session; transport: FakeTransport } => {
    const { session, transport } = fakeSession({ id, codec, host, open });
    hub.add(session);
    return { session, transport };
  };
  return { hub, listener, host, join };
}

const pub = (topic: string, payload = '"m"', extra: Partial<Publication> = {}): Publication => ({ topic, payload, ...extra });

describe('Hub: subscriptions', () => {
  it('the first subscriber opens a topic, the last one closes it; each subscription is told', () => {
    const { hub, listener, join } = setup();
    const a = join('a').session;
    const b = join('b').session;
    assert.equal(hub.subscribe(a, 't'), true);
    assert.equal(hub.subscribe(b, 't'), true);
    assert.deepEqual([hub.topicCount, hub.subscriptions, hub.subscriberCount('t')], [1, 2, 2]);
    assert.equal(hub.unsubscribe(a, 't'), true);
    assert.equal(hub.unsubscribe(b, 't'), true);
    assert.deepEqual(listener.events, ['opened t', 'subscribed t a', 'subscribed t b', 'unsubscribed t a', 'unsubscribed t b', 'closed t']);
    assert.deepEqual([hub.topicCount, hub.subscriptions, hub.subscriberCount('t')], [0, 0, 0]);
    assert.deepEqual([...hub.topicNames()], []);
  });

  it('subscribing twice or leaving a topic not subscribed answers false and changes nothing', () => {
    const { hub, listener, join } = setup();
    const a = join('a').session;
    hub.subscribe(a, 't');
    assert.equal(hub.subscribe(a, 't'), false);
    assert.equal(hub.unsubscribe(a, 'other'), false);
    assert.deepEqual([hub.subscriptions, hub.subscriberCount('t')], [1, 1]);
    assert.deepEqual(listener.events, ['opened t', 'subscribed t a']);
    assert.deepEqual([...a.topics], ['t']);
  });

  it('remove drops every subscription and the user index entry, once', () => {
    const { hub, listener, join } = setup();
    const a = join('a').session;
    const b = join('b').session;
    hub.setUser(a, 'ann');
    hub.subscribe(a, 'x');
    hub.subscribe(a, 'y');
    hub.subscribe(b, 'y');
    listener.events.length = 0;
    hub.remove(a);
    assert.deepEqual(listener.events, ['unsubscribed x a', 'closed x', 'unsubscribed y a', 'offline ann']);
    assert.equal(a.topics.size, 0);
    assert.deepEqual([hub.sessions.has('a'), hub.subscriptions, hub.topicCount, hub.userCount], [false, 1, 1, 0]);
    hub.remove(a);
    assert.equal(listener.events.length, 4, 'removing again tells nothing');
  });

  it('a session not in the hub (never added, or removed) is neither subscribed nor indexed by uid', () => {
    const { hub, listener, join } = setup();
    const gone = join('gone').session;
    hub.remove(gone);
    const stranger = fakeSession({ id: 'stranger' }).session;
    for (const session of [gone, stranger]) {
      assert.equal(hub.holds(session), false);
      assert.equal(hub.subscribe(session, 't'), false);
      hub.setUser(session, 'ann');
    }
    assert.deepEqual([hub.topicCount, hub.subscriptions, hub.userCount], [0, 0, 0]);
    assert.deepEqual(listener.events, [], 'no topic opened, no user online');
    assert.equal(gone.topics.size, 0);
    // A new session under a reused id is not the old one.
    const twin = fakeSession({ id: 'gone' }).session;
    hub.add(twin);
    assert.equal(hub.holds(twin), true);
    assert.equal(hub.holds(gone), false);
  });

  it('busiestTopics: most subscribers first, at most limit', () => {
    const { hub, join } = setup();
    const sessions = ['a', 'b', 'c'].map((id) => join(id).session);
    for (const s of sessions) hub.subscribe(s, 'three');
    hub.subscribe(sessions[0]!, 'one');
    hub.subscribe(sessions[0]!, 'two');
    hub.subscribe(sessions[1]!, 'two');
    assert.deepEqual(hub.busiestTopics(2), [
      { topic: 'three', subscribers: 3 },
      { topic: 'two', subscribers: 2 },
    ]);
    assert.deepEqual(hub.busiestTopics(0), []);
  });
});

describe('Hub: users', () => {
  it('a uid is online with its first session and offline with its last', () => {
    const { hub, listener, join } = setup();
    const tab1 = join('tab1').session;
    const tab2 = join('tab2').session;
    hub.setUser(tab1, 'ann');
    hub.setUser(tab2, 'ann');
    assert.deepEqual(listener.events, ['online ann']);
    assert.deepEqual([...hub.userSessions('ann')], [tab1, tab2]);
    assert.equal(tab1.uid, 'ann');
    hub.remove(tab1);
    assert.deepEqual([...hub.userSessions('ann')], [tab2], 'closing one tab keeps the other reachable');
    hub.remove(tab2);
    assert.deepEqual(listener.events, ['online ann', 'offline ann']);
    assert.equal(hub.userSessions('ann').size, 0);
  });

  it('a re-login under another uid moves the session; the same uid again changes nothing', () => {
    const { hub, listener, join } = setup();
    const s = join('s').session;
    hub.setUser(s, 'ann');
    hub.setUser(s, 'ann');
    hub.setUser(s, 'bob');
    assert.deepEqual(listener.events, ['online ann', 'offline ann', 'online bob']);
    assert.deepEqual([...hub.userIds()], ['bob']);
    hub.setUser(s, undefined);
    assert.equal(s.uid, undefined);
    assert.equal(hub.userCount, 0);
    assert.deepEqual(listener.events.at(-1), 'offline bob');
  });

  it('userSessions of an unknown uid is empty', () => {
    const { hub } = setup();
    assert.equal(hub.userSessions('nobody').size, 0);
  });
});

describe('Hub: deliver', () => {
  it('encodes once per codec and writes the same buffer to every subscriber of that codec', () => {
    const { hub, host, join } = setup();
    const json = new RecordingCodec('json');
    const lhttp = new RecordingCodec('lhttp');
    // Interleaved codecs: the per-codec cache must still encode each once.
    const members = [join('a', json), join('b', lhttp), join('c', json), join('d', lhttp), join('e', json)];
    for (const { session } of members) hub.subscribe(session, 't');
    assert.equal(hub.deliver(pub('t', '"hello"')), 5);
    assert.deepEqual([json.count('publication'), lhttp.count('publication')], [1, 1]);
    host.flush();
    const [a, b, c, d, e] = members.map(({ transport }) => transport);
    assert.deepEqual(a!.texts(), ['json:pub t "hello"']);
    assert.deepEqual(b!.texts(), ['lhttp:pub t "hello"']);
    assert.equal(a!.writes[0], c!.writes[0], 'the very same buffer');
    assert.equal(a!.writes[0], e!.writes[0]);
    assert.equal(b!.writes[0], d!.writes[0]);
    assert.deepEqual([hub.publications, hub.deliveries], [1, 5]);
  });

  it('skips the connection a publication excludes (its sender), and only that one', () => {
    const { hub, host, join } = setup();
    const members = [join('sender'), join('other'), join('third')];
    for (const { session } of members) hub.subscribe(session, 't');
    assert.equal(hub.deliver(pub('t', '"m"', { exclude: 'sender' })), 2);
    assert.equal(hub.deliver(pub('t', '"n"', { exclude: 'not-here' })), 3, 'an id of another node excludes nobody here');
    host.flush();
    assert.deepEqual(members.map(({ transport }) => transport.texts()), [['c:pub t "n"'], ['c:pub t "m"', 'c:pub t "n"'], ['c:pub t "m"', 'c:pub t "n"']]);
  });

  it('a topic with no subscriber encodes nothing and delivers to none, but counts the publication', () => {
    const { hub, join } = setup();
    const codec = new RecordingCodec('c');
    hub.subscribe(join('a', codec).session, 'other');
    assert.equal(hub.deliver(pub('t')), 0);
    assert.equal(codec.count('publication'), 0);
    assert.deepEqual([hub.publications, hub.deliveries], [1, 0]);
  });

  it('counts only the subscribers that took the frame (not those connecting, closing or over their queue)', () => {
    const { hub, host, join } = setup();
    const open = join('open').session;
    const connecting = join('connecting', undefined, false).session;
    const closing = join('closing').session;
    const slow = join('slow');
    for (const s of [open, connecting, closing, slow.session]) hub.subscribe(s, 't');
    closing.close(1000, 'bye');
    slow.transport.queuedBytes = host.maxQueueBytes;
    assert.equal(hub.deliver(pub('t')), 1);
    assert.equal(hub.deliveries, 1);
    assert.deepEqual(host.slowConsumers.map(({ session }) => session.id), ['slow']);
  });

  it("a recovering connection's copy waits in its hold, the others are written", () => {
    const { hub, host, join } = setup();
    const codec = new RecordingCodec('c');
    const recovering = join('r', codec);
    const live = join('l', codec);
    hub.subscribe(recovering.session, 't');
    hub.subscribe(live.session, 't');
    const held = recovering.session.holdLive('t');
    const publication = pub('t', '1', { offset: 1, epoch: 'e' });
    assert.equal(hub.deliver(publication), 1);
    assert.deepEqual(held, [publication], 'the publication itself, not a frame');
    host.flush();
    assert.deepEqual(recovering.transport.writes, []);
    assert.deepEqual(live.transport.texts(), ['c:pub t 1 @1/e']);
    recovering.session.releaseLive('t', held);
    hub.deliver(pub('t', '2', { offset: 2, epoch: 'e' }));
    host.flush();
    assert.deepEqual(recovering.transport.texts(), ['c:pub t 2 @2/e']);
  });

  it('filters: a filtered subscriber gets what its filter passes; the frame is still encoded once per codec, and not at all when no filter passes', () => {
    const { hub, host, join } = setup();
    const codec = new RecordingCodec('c');
    const eu = join('eu', codec);
    const us = join('us', codec);
    const all = join('all', codec);
    const seen: Array<unknown> = [];
    hub.subscribe(eu.session, 't', (tags) => (seen.push(tags), tags?.region === 'eu'));
    hub.subscribe(us.session, 't', (tags) => tags?.region === 'us');
    hub.subscribe(all.session, 't');
    assert.equal(hub.deliver(pub('t', '1', { tags: { region: 'eu' } })), 2);
    assert.equal(hub.lastFiltered, 1);
    assert.equal(codec.count('publication'), 1, 'once, for the two that take it');
    assert.equal(hub.deliver(pub('t', '2')), 1, 'no tags: only the unfiltered subscriber');
    assert.deepEqual(seen, [{ region: 'eu' }, undefined], 'the filter gets the tags as they are');
    // Only filtered subscribers, none passing: nothing encoded.
    hub.unsubscribe(all.session, 't');
    const before = codec.count('publication');
    assert.equal(hub.deliver(pub('t', '3', { tags: { region: 'apac' } })), 0);
    assert.equal(codec.count('publication'), before);
    assert.deepEqual([hub.lastFiltered, hub.filtered], [2, 5], '1 + 2 + 2 left out in all');
    host.flush();
    assert.deepEqual([eu.transport.texts(), us.transport.texts(), all.transport.texts()], [['c:pub t 1'], [], ['c:pub t 1', 'c:pub t 2']]);
    // A filter goes with its subscription: after unsubscribing and subscribing again without one, everything arrives.
    hub.unsubscribe(us.session, 't');
    assert.equal(hub.filterOf(us.session, 't'), undefined);
    hub.subscribe(us.session, 't');
    assert.equal(hub.deliver(pub('t', '4', { tags: { region: 'apac' } })), 1);
    assert.equal(hub.lastFiltered, 1, 'eu only');
  });

  it('a publication every subscriber holds is not encoded', () => {
    const { hub, join } = setup();
    const codec = new RecordingCodec('c');
    const { session } = join('r', codec);
    hub.subscribe(session, 't');
    session.holdLive('t');
    assert.equal(hub.deliver(pub('t')), 0);
    assert.equal(codec.count('publication'), 0);
  });
});

describe('Hub: announce', () => {
  it('encodes once per codec, skips `except`, and does not tell connections whose codec has no frame (null)', () => {
    const { hub, host, join } = setup();
    const json = new RecordingCodec('json');
    const raw = new RecordingCodec('raw', ['presence']);
    const joiner = join('joiner', json);
    const others = [join('a', json), join('b', raw), join('c', json), join('d', raw)];
    for (const { session } of [joiner, ...others]) hub.subscribe(session, 'room');
    let encodes = 0;
    hub.announce('room', (codec) => {
      encodes++;
      return codec.presence('join', 'room', { conn: 'joiner', uid: 'ann' });
    }, joiner.session);
    assert.equal(encodes, 2, 'once per codec');
    host.flush();
    assert.deepEqual(joiner.transport.writes, [], 'not the one excepted');
    assert.deepEqual(others[0]!.transport.texts(), ['json:join room joiner ann']);
    assert.deepEqual(others[2]!.transport.texts(), ['json:join room joiner ann']);
    assert.deepEqual(others[1]!.transport.writes, [], 'its protocol has no presence frame');
    assert.deepEqual(others[3]!.transport.writes, []);
  });

  it('a topic nobody here subscribes to encodes nothing', () => {
    const { hub } = setup();
    let encodes = 0;
    hub.announce('empty', () => {
      encodes++;
      return Buffer.from('x');
    }, null);
    assert.equal(encodes, 0);
  });
});

describe('Hub: push', () => {
  it("reaches every session of the uids, framed once per codec as a push; others and unknown uids get nothing", () => {
    const { hub, host, join } = setup();
    const json = new RecordingCodec('json');
    const lhttp = new RecordingCodec('lhttp');
    const ann1 = join('ann1', json);
    const ann2 = join('ann2', lhttp);
    const bob = join('bob', json);
    const eve = join('eve', json);
    hub.setUser(ann1.session, 'ann');
    hub.setUser(ann2.session, 'ann');
    hub.setUser(bob.session, 'bob');
    hub.setUser(eve.session, 'eve');
    assert.equal(hub.push(['ann', 'bob', 'ghost'], '{"n":1}'), 3);
    assert.deepEqual([json.count('push'), lhttp.count('push')], [1, 1]);
    host.flush();
    assert.deepEqual(ann1.transport.texts(), ['json:push {"n":1}']);
    assert.deepEqual(ann2.transport.texts(), ['lhttp:push {"n":1}']);
    assert.equal(ann1.transport.writes[0], bob.transport.writes[0], 'the same buffer');
    assert.deepEqual(eve.transport.writes, []);
  });

  it('with raw text, sessions of the seed login get the raw text as a frame; the others the push envelope', () => {
    const { hub, host, join } = setup();
    const codec = new RecordingCodec('json');
    const seed1 = join('seed1', codec);
    const seed2 = join('seed2', codec);
    const modern = join('modern', codec);
    for (const { session } of [seed1, seed2, modern]) hub.setUser(session, 'u1');
    for (const { session } of [seed1, seed2]) session.setIdentity({ ...session.identity, rawPush: true });
    assert.equal(hub.push(['u1'], '"hi there"', 'hi there'), 3);
    host.flush();
    assert.deepEqual(seed1.transport.texts(), ['hi there']);
    assert.equal(seed1.transport.writes[0], seed2.transport.writes[0], 'the raw frame is built once');
    assert.deepEqual(modern.transport.texts(), ['json:push "hi there"']);
    assert.equal(codec.count('push'), 1);
  });

  it('without raw text, seed logins get the push envelope like everyone else', () => {
    const { hub, host, join } = setup();
    const seed = join('seed');
    hub.setUser(seed.session, 'u1');
    seed.session.setIdentity({ ...seed.session.identity, rawPush: true });
    hub.push(['u1'], '"x"');
    host.flush();
    assert.deepEqual(seed.transport.texts(), ['c:push "x"']);
  });

  it('counts only sessions that took the frame', () => {
    const { hub, join } = setup();
    const closing = join('closing').session;
    hub.setUser(closing, 'u');
    closing.close(1000, 'bye');
    assert.equal(hub.push(['u'], '1'), 0);
  });
});

describe('Hub: closeAll', () => {
  afterEach(() => mock.timers.reset());

  /** Sessions in the hub, and the order in which `closeAll` closed them, with the mocked time of each. */
  function draining(count: number) {
    const { hub, join } = setup();
    const sessions = Array.from({ length: count }, (_, i) => join(`s${i}`).session);
    const closed: Array<[id: string, at: number]> = [];
    const close = (session: Session): void => {
      closed.push([session.id, Date.now()]);
      session.close(1001, 'shutting down');
    };
    return { hub, sessions, closed, close };
  }

  /** Advances the mocked clock in 1 ms steps (each step runs the due timers, then lets the loop's awaits continue). */
  async function advance(ms: number): Promise<void> {
    for (let i = 0; i < ms; i++) {
      mock.timers.tick(1);
      await Promise.resolve();
      await Promise.resolve();
    }
  }

  it('20 connections over 3 s: one every 150 ms, the first at once', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { hub, sessions, closed, close } = draining(20);
    const done = hub.closeAll(sessions, 3000, close);
    assert.deepEqual(closed, [['s0', 0]], 'the first batch at once');
    await advance(3000);
    await done;
    assert.deepEqual(closed.map(([id]) => id), sessions.map((s) => s.id), 'in order');
    assert.deepEqual(closed.map(([, at]) => at), Array.from({ length: 20 }, (_, i) => i * 150));
  });

  it('more connections than 50 ms batches: batches of several, one per 50 ms', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { hub, sessions, closed, close } = draining(100);
    const done = hub.closeAll(sessions, 1000, close);
    await advance(1000);
    await done;
    assert.equal(closed.length, 100);
    const times = [...new Set(closed.map(([, at]) => at))];
    assert.deepEqual(times, Array.from({ length: 20 }, (_, i) => i * 50), '20 batches');
    assert.ok(closed.filter(([, at]) => at === 0).length === 5, '5 a batch');
  });

  it('batches rounded up still spread over the whole window (21 over 1 s: 11 batches, not 11 in the first half)', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { hub, sessions, closed, close } = draining(21);
    const done = hub.closeAll(sessions, 1000, close);
    await advance(1000);
    await done;
    assert.equal(closed.length, 21);
    const times = [...new Set(closed.map(([, at]) => at))];
    assert.equal(times.length, 11, 'batches of 2, the last of 1');
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 50, `at most one batch per 50 ms: ${times.join(', ')}`);
    assert.ok(times.at(-1)! >= 900, `the last batch near the end of the window, not at ${times.at(-1)} ms`);
  });

  it('no window closes everything at once; no sessions resolves at once', async () => {
    const { hub, sessions, closed, close } = draining(5);
    const done = hub.closeAll(sessions, 0, close);
    assert.equal(closed.length, 5, 'before the first await');
    await done;
    await hub.closeAll([], 3000, close);
  });

  it('skips sessions that closed on their own meanwhile', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { hub, sessions, closed, close } = draining(3);
    const done = hub.closeAll(sessions, 300, close);
    (sessions[1]!.transport as FakeTransport).closeEvent(1000, 'peer');
    await advance(300);
    await done;
    assert.deepEqual(closed.map(([id]) => id), ['s0', 's2']);
  });
});
