import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from 'pino';
import { LifecycleEvents, type EventsHost, type LifecycleEvent } from '../../src/events/events.js';
import { fnv1a, Ownership, rendezvousOwner, transitionOf } from '../../src/events/transitions.js';
import { EVENT_KINDS } from '../../src/config.js';

const NODES = ['node-a', 'node-b', 'node-c'];
const KEYS = Array.from({ length: 3000 }, (_, i) => `u\nuser-${i}`);

describe('rendezvous ownership', () => {
  it('FNV-1a gives the published test vectors', () => {
    assert.equal(fnv1a(''), 0x811c9dc5);
    assert.equal(fnv1a('a'), 0xe40c292c);
    assert.equal(fnv1a('foobar'), 0xbf9cf968);
  });

  it('every node picks the same owner whatever the order it lists the candidates in, and the keys spread over the nodes', () => {
    const counts = new Map<string, number>();
    for (const key of KEYS) {
      const owner = rendezvousOwner(NODES, key)!;
      assert.equal(rendezvousOwner([...NODES].reverse(), key), owner);
      assert.equal(rendezvousOwner([NODES[1]!, NODES[2]!, NODES[0]!], key), owner);
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const node of NODES) assert.ok((counts.get(node) ?? 0) > KEYS.length * 0.25, `${node} owns ${counts.get(node)} of ${KEYS.length} keys`);
    assert.equal(rendezvousOwner([], 'u\nalice'), undefined);
  });

  it("a node's departure moves its own keys only, and its arrival takes keys from every node but moves no other", () => {
    let moved = 0;
    for (const key of KEYS) {
      const before = rendezvousOwner(NODES, key)!;
      const after = rendezvousOwner(NODES.filter((node) => node !== 'node-b'), key)!;
      if (before !== 'node-b') assert.equal(after, before, `${key} stays with ${before}`);
      else moved++;
      const joined = rendezvousOwner([...NODES, 'node-d'], key)!;
      assert.ok(joined === before || joined === 'node-d');
    }
    assert.ok(moved > 0);
  });

  it('transitionOf: 0 → 1 on an add is the first, 1 → 0 on a removal the last, anything else nothing', () => {
    assert.equal(transitionOf('add', 1), 'first');
    assert.equal(transitionOf('add', 2), null);
    assert.equal(transitionOf('remove', 0), 'last');
    assert.equal(transitionOf('remove', 1), null);
  });
});

/** Three nodes' Ownership units over the same candidates, recording what each emits; `clock` drives their time. */
function cluster(handoff = 1000, margin = 100) {
  const clock = { now: 0 };
  const emitted: Array<{ node: string; event: string }> = [];
  const members = new Map(NODES.map((node) => [node, [...NODES]]));
  const units = new Map(
    NODES.map((node) => [
      node,
      new Ownership<string>({ nodeId: node, candidates: () => members.get(node)! }, (event) => emitted.push({ node, event }), handoff, margin, 10_000, () => clock.now),
    ]),
  );
  return { clock, emitted, members, units };
}

describe('Ownership', () => {
  it('of the nodes that all see a transition, exactly one emits it', () => {
    const { emitted, units } = cluster();
    for (const key of KEYS.slice(0, 200)) for (const unit of units.values()) unit.decide(key, key);
    assert.equal(emitted.length, 200);
    assert.deepEqual(new Set(emitted.map((e) => e.event)).size, 200);
    for (const { node, event } of emitted) assert.equal(node, rendezvousOwner(NODES, event));
  });

  it("when the owner crashes before anyone heard it alive after the change, the survivors' new owner emits it, once", () => {
    const { emitted, members, units, clock } = cluster();
    const key = KEYS.find((k) => rendezvousOwner(NODES, k) === 'node-b')!;
    // node-b died before it saw the change: only a and c compute it.
    units.get('node-a')!.decide(key, 'offline');
    units.get('node-c')!.decide(key, 'offline');
    assert.equal(emitted.length, 0, 'the owner is node-b');
    clock.now += 500; // forgotten within the hand-off time
    for (const node of ['node-a', 'node-c']) {
      members.set(node, ['node-a', 'node-c']);
      units.get(node)!.ownerGone('node-b');
    }
    assert.deepEqual(emitted, [{ node: rendezvousOwner(['node-a', 'node-c'], key)!, event: 'offline' }]);
  });

  it('a heartbeat of the owner after the change releases it (no second copy), and the hand-off time bounds what is held', () => {
    const { emitted, units, clock } = cluster(1000, 100);
    const keyOfB = KEYS.find((k) => rendezvousOwner(NODES, k) === 'node-b')!;
    const a = units.get('node-a')!;
    a.decide(keyOfB, 'online');
    assert.equal(a.heldCount, 1);
    clock.now += 50;
    a.ownerAlive('node-b');
    assert.equal(a.heldCount, 1, 'a heartbeat within the margin may have left before node-b saw the change');
    clock.now += 100;
    a.ownerAlive('node-b');
    assert.equal(a.heldCount, 0);
    a.decide(keyOfB, 'offline');
    clock.now += 1001;
    assert.equal(a.heldCount, 0, 'past the hand-off time');
    a.ownerGone('node-b');
    assert.equal(emitted.length, 0);
  });
});

/** A host over plain maps: what this node and the others hold. */
function host(nodeId: string, candidates: string[]) {
  const state = { topics: new Set<string>(), remoteTopics: new Map<string, number>(), users: new Set<string>(), remoteUsers: new Map<string, number>(), members: new Map<string, number>(), shared: [] as Array<[string, boolean]> };
  const h: EventsHost = {
    nodeId,
    candidates: () => candidates,
    localTopic: (topic) => state.topics.has(topic),
    topicHolders: (topic) => state.remoteTopics.get(topic) ?? 0,
    localUser: (uid) => state.users.has(uid),
    userHolders: (uid) => state.remoteUsers.get(uid) ?? 0,
    memberConnections: (topic, uid) => state.members.get(`${topic}|${uid}`) ?? 0,
    localTopics: () => state.topics,
    presentUsers: () => [...state.users, ...state.remoteUsers.keys()],
    presentTopics: () => [...state.topics, ...state.remoteTopics.keys()],
    presentMembers: () => [...state.members.keys()].map((key): [string, string, unknown] => [key.split('|')[0]!, key.split('|')[1]!, { name: key.split('|')[1] }]),
    shareTopic: (topic, open) => state.shared.push([topic, open]),
  };
  return { h, state };
}

const silent = { error: () => undefined } as unknown as Logger;

describe('LifecycleEvents', () => {
  it('a lone ready node: occupancy of tracked topics only, users, members and per-connection events, each with a unique id', () => {
    const { h, state } = host('solo', ['solo']);
    const events = new LifecycleEvents({ nodeId: 'solo', host: h, kinds: EVENT_KINDS, topics: ['room:*'], handoff: 1000, margin: 100, log: silent });
    const seen: LifecycleEvent[] = [];
    events.on((event) => seen.push(event));
    events.topicOpened('lobby');
    state.topics.add('room:1');
    events.topicOpened('room:1');
    assert.deepEqual(state.shared, [['room:1', true]], 'only tracked topics are told to the other nodes');
    state.users.add('alice');
    events.userOnline('alice');
    state.members.set('room:1|alice', 1);
    events.presence(null, 'join', 'room:1', { conn: 'c1', uid: 'alice', info: { name: 'Alice' } });
    state.members.set('room:1|alice', 2);
    events.presence(null, 'join', 'room:1', { conn: 'c2', uid: 'alice' });
    state.members.set('room:1|alice', 0);
    events.presence('other', 'leave', 'room:1', { conn: 'c9', uid: 'alice' });
    events.connectionClosed('c1', 'alice', 1000, 'bye');
    assert.deepEqual(
      seen.map((e) => [e.kind, e.topic ?? e.uid]),
      [['topic_occupied', 'room:1'], ['user_online', 'alice'], ['join', 'room:1'], ['member_added', 'room:1'], ['join', 'room:1'], ['member_removed', 'room:1'], ['connection_closed', 'alice']],
    );
    assert.deepEqual(seen[3], { ...seen[3], topic: 'room:1', uid: 'alice', info: { name: 'Alice' }, node: 'solo' });
    assert.deepEqual([seen[6]!.code, seen[6]!.reason, seen[6]!.conn], [1000, 'bye', 'c1']);
    assert.equal(new Set(seen.map((e) => e.id)).size, seen.length);
  });

  it('catch-up: the present state, cluster-wide and tracked only, each once and marked catchUp; the later departures pair with it', () => {
    const { h, state } = host('solo', ['solo']);
    const events = new LifecycleEvents({ nodeId: 'solo', host: h, kinds: EVENT_KINDS, topics: ['room:*'], handoff: 1000, margin: 100, log: silent });
    const seen: LifecycleEvent[] = [];
    events.on((event) => seen.push(event));
    state.topics.add('room:1').add('lobby');
    state.remoteTopics.set('room:1', 1).set('room:2', 1);
    state.users.add('alice');
    state.remoteUsers.set('alice', 1).set('bob', 1);
    state.members.set('room:1|alice', 2).set('lobby|alice', 1);
    events.catchUp();
    assert.deepEqual(
      seen.map((e) => [e.kind, e.topic ?? null, e.uid ?? null, e.catchUp]),
      [
        ['topic_occupied', 'room:1', null, true],
        ['topic_occupied', 'room:2', null, true],
        ['user_online', null, 'alice', true],
        ['user_online', null, 'bob', true],
        ['member_added', 'room:1', 'alice', true],
      ],
    );
    assert.deepEqual(seen[4]!.info, { name: 'alice' });
    seen.length = 0;
    state.remoteUsers.delete('bob');
    events.remoteUsers([], ['bob']);
    state.topics.add('room:3');
    events.topicOpened('room:3');
    assert.deepEqual(seen.map((e) => [e.kind, e.catchUp]), [['user_offline', undefined], ['topic_occupied', undefined]], 'what follows is as usual, not marked');
  });

  it('a transition another node already accounts for is none: a topic or a user held elsewhere', () => {
    const { h, state } = host('solo', ['solo']);
    const events = new LifecycleEvents({ nodeId: 'solo', host: h, kinds: ['topic_occupied', 'topic_vacated', 'user_online', 'user_offline'], topics: ['room:*'], handoff: 1000, margin: 100, log: silent });
    const seen: string[] = [];
    events.on((event) => seen.push(event.kind));
    state.remoteTopics.set('room:1', 1);
    events.topicOpened('room:1');
    events.topicClosed('room:1');
    state.remoteUsers.set('bob', 1);
    events.userOnline('bob');
    events.userOffline('bob');
    assert.deepEqual(seen, []);
    state.remoteTopics.delete('room:1');
    state.remoteUsers.delete('bob');
    events.remoteTopics([], ['room:1']);
    events.remoteUsers([], ['bob']);
    assert.deepEqual(seen, ['topic_vacated', 'user_offline'], 'the last holder gone elsewhere: the owner (here) emits');
  });

  it('kinds not configured are not emitted, a node that is no candidate emits nothing cluster-wide, a throwing listener does not stop the others', () => {
    const { h, state } = host('late', []);
    const errors: unknown[] = [];
    const events = new LifecycleEvents({ nodeId: 'late', host: h, kinds: ['user_online', 'connection_closed'], topics: [], handoff: 1000, margin: 100, log: { error: (e: unknown) => errors.push(e) } as unknown as Logger });
    const seen: string[] = [];
    events.on(() => {
      throw new Error('listener bug');
    });
    events.on((event) => seen.push(event.kind));
    state.users.add('alice');
    events.userOnline('alice');
    events.userOffline('alice');
    events.connectionClosed('c1', undefined, 1006, '');
    assert.deepEqual(seen, ['connection_closed']);
    assert.equal(errors.length, 1);
  });
});
